// Package launcher makes the container itself: it clones a child into new pid, mount,
// uts, ipc, net and cgroup namespaces, and that child — thinbox re-executed as
// "thinbox-init" — makes the mount tree private, mounts the copy-on-write root, /proc,
// /sys, /dev and volumes, pivot_roots, drops into the payload's user and execs it, or
// stays as a minimal PID 1 that reaps zombies and forwards signals. The parent side
// forwards signals, drives the pty and turns the payload's end into an exit status.
//
// The payload is confined as Docker and podman confine theirs (security.go): the
// default capability set in every set that matters, no_new_privs, a seccomp filter
// (package seccomp), masked and read-only /proc and /sys paths, only the standard
// device nodes usable (everything else is mounted nodev). The init itself is not
// dumpable and runs from a sealed handle on the thinbox binary (exeseal_linux.go), so
// a container cannot overwrite the host's binary. --privileged drops all but the
// namespaces, no_new_privs and the standard /dev: its root is the host's root.
//
// The init half runs before the CLI parses anything and reports each failed step to the
// parent over a sync socket, so the user sees which step failed and why.
//
// launcher never talks to systemd and knows nothing of images or container records: it
// gets a Config and a hook to run once the child exists (where the caller puts it in a
// cgroup).
package launcher
