// Package benchmarks measures thinbox against its peers — crun, runc, bubblewrap,
// lxc-execute, systemd-nspawn and podman — side by side, from Debian's packages, on the
// host (namespaces only) and in the systemd guest of integration/vm (transient scopes
// with cgroup v2 limits): start-up latency, resident memory per running service, binary
// size and image import speed. `make bench` runs bench.sh, which drives the measuring
// tool in tbbench/ and writes RESULTS.md and results.png; profile.sh shows where a start
// spends its time.
//
// The goals live here and only here, compared by a reader in RESULTS.md: nothing in
// benchmarks is timed in a test, is part of `make test`, or is imported by thinbox.
package benchmarks
