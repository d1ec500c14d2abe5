#!/usr/bin/env bash
# benchmarks/profile.sh — where the time of `thinbox run --rm busybox /bin/true` goes on
# this host, for the analysis in RESULTS.md. Not part of `make bench` (perf adds load).
#
#   benchmarks/profile.sh [OUT]     (root; OUT defaults to out/bench; writes OUT/profile/)
#
#   phases*.txt     median time of each phase of a start (kernel tracepoints, phases.awk),
#                   with the default --init, with --no-init, and for the `unshare` reference
#   inittrace.txt   Go package initialisation (GODEBUG=inittrace=1), paid twice per start:
#                   by the launcher and by the re-executed init (the same binary)
#   strace-c.txt    system calls of one start, all processes (strace -f -c)
#   cpu-*.txt       CPU profile (perf, 10 kHz) over PROFILE_RUNS starts: CPU per process and
#                   the heaviest functions, user and kernel
# Environment: PROFILE_RUNS=50, GO=go.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=$(dirname "$HERE")
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[[ $(id -u) == 0 ]] || die "profile.sh must run as root"
RUNS=${PROFILE_RUNS:-50}
GO=${GO:-go}
cd "$TOP"
OUT=$(mkdir -p "${1:-out/bench}" && readlink -f "${1:-out/bench}")
P=$OUT/profile
rm -rf "$P" && mkdir -p "$P"
for p in linux-perf strace; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] ||
		DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "$p" >/dev/null
done

W=$(mktemp -d /var/tmp/thinbox-profile.XXXXXX)
cleanup() {
	umount "$W/run" 2>/dev/null || true
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
# Symbols for perf: the same build as bench.sh's but not stripped.
CGO_ENABLED=0 $GO build -trimpath -tags urfave_cli_no_docs -o "$W/thinbox" ./cmd/thinbox
IMAGE=$TOP/out/busybox-$(dpkg --print-architecture).tar.gz
integration/busybox-image.sh "$IMAGE"
# State under a tmpfs, as /run is on a real system; layers on the root file system.
mkdir -p "$W/run" "$W/rootfs" && mount -t tmpfs -o size=64m tmpfs "$W/run"
TB=("$W/thinbox" --root "$W/lib" --runroot "$W/run")
"${TB[@]}" image import busybox "$IMAGE" >/dev/null
tar -xzf "$IMAGE" -C "$W/rootfs"
uptime >"$P/load.txt"

# ---- phases from tracepoints -------------------------------------------------------------
EVENTS=sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork,syscalls:sys_enter_exit_group,syscalls:sys_exit_waitid,syscalls:sys_exit_wait4,syscalls:sys_enter_mount
phases() { # NAME CMD... (CMD is run RUNS times)
	local name=$1
	shift
	# shellcheck disable=SC2016 # for that bash
	perf record -q -a -e "$EVENTS" -o "$W/$name.data" -- bash -c 'for ((i = 0; i < $1; i++)); do "${@:2}" >/dev/null; done' loop "$RUNS" "$@" 2>/dev/null
	perf script -i "$W/$name.data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$W/$name.txt"
}
phases init "${TB[@]}" run --rm busybox /bin/true
awk -v LAUNCHER="$W/thinbox" -f "$HERE/phases.awk" "$W/init.txt" >"$P/phases-init.txt"
phases noinit "${TB[@]}" run --rm --no-init busybox /bin/true
awk -v LAUNCHER="$W/thinbox" -f "$HERE/phases.awk" "$W/noinit.txt" >"$P/phases-noinit.txt"

# ---- package initialisation ----------------------------------------------------------------
for ((i = 0; i < 20; i++)); do
	GODEBUG=inittrace=1 "$W/thinbox" --version 2>&1 >/dev/null
done | awk '$1 == "init" { t[$2] += $5; a[$2] += $8; n[$2]++ }
	END { for (p in t) { printf "%.3f ms\t%d B\t%s\n", t[p] / n[p], a[p] / n[p], p; tot += t[p] / n[p]; atot += a[p] / n[p] }
	      printf "%.3f ms\t%d B\ttotal, per process (mean of 20)\n", tot, atot }' | sort -rn >"$P/inittrace.txt"

# ---- system calls of one start -----------------------------------------------------------------
strace -f -c -o "$P/strace-c.txt" "${TB[@]}" run --rm busybox /bin/true >/dev/null

# ---- CPU profile ---------------------------------------------------------------------------
# shellcheck disable=SC2016 # for that bash
perf record -q -F 10000 -g -o "$W/cpu.data" -- bash -c 'for ((i = 0; i < $1; i++)); do "${@:2}" >/dev/null; done' loop "$RUNS" "${TB[@]}" run --rm busybox /bin/true 2>/dev/null
{
	echo "CPU per start by process name (perf samples at 10 kHz / $RUNS starts; 'exe' is the init before it renames itself):"
	perf script -i "$W/cpu.data" -F comm 2>/dev/null | sort | uniq -c | sort -rn |
		awk -v runs="$RUNS" '{ printf "%8.2f ms  %s\n", $1 / 10 / runs, $2 }'
} >"$P/cpu-by-process.txt"
perf report -i "$W/cpu.data" --comm thinbox,exe,thinbox-init --children --sort sym -g none -q 2>/dev/null |
	grep -v '\[k\]' | head -60 >"$P/cpu-user.txt"
perf report -i "$W/cpu.data" --comm thinbox,exe,thinbox-init --children --sort sym -g none -q 2>/dev/null |
	grep '\[k\]' | head -60 >"$P/cpu-kernel.txt"
uptime >>"$P/load.txt"
say "profile: $P"
