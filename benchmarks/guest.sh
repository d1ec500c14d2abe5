#!/usr/bin/env bash
# benchmarks/guest.sh — the part of the benchmarks that needs systemd as PID 1 with
# cgroup v2 controllers. bench.sh runs it inside the qemu guest (integration/vm/vm.sh,
# flavour "bench") with everything it needs on the 9p share:
#
#   guest.sh SHARE RESULTS    (SHARE holds thinbox, tbbench, busybox.tar.gz, lib.sh)
#
# It measures, interleaved, thinbox with its transient scope and --memory/--pids/--cpu
# against crun and runc --systemd-cgroup, podman (systemd cgroup manager), systemd-nspawn
# --property and `systemd-run --scope … unshare … chroot`; checks from outside that each
# one's limits really bind its payload; and measures what stays resident per running
# container in service mode. Environment: BENCH_RUNS, BENCH_WARMUP, BENCH_TIMEOUT (60s: a
# command running longer is killed and counted as failed), BENCH_SETTLE (8s).
set -euo pipefail

SHARE=${1:?usage: guest.sh SHARE RESULTS}
RES=${2:?usage: guest.sh SHARE RESULTS}
# shellcheck source=lib.sh
. "$SHARE/lib.sh"
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}

[[ -d /run/systemd/system && -f /sys/fs/cgroup/cgroup.controllers ]] ||
	die "guest.sh needs systemd as PID 1 and a unified cgroup hierarchy"
mkdir -p "$RES"

# Binaries run from the guest's own disk, not the 9p share: thinbox re-executes itself
# (/proc/self/exe) on every start, and units name its path.
install -m 0755 "$SHARE/thinbox" /usr/local/bin/thinbox
install -m 0755 "$SHARE/tbbench" /usr/local/bin/tbbench

B=/bench
rm -rf "$B" && mkdir -p "$B/rootfs"
tar -xzf "$SHARE/busybox.tar.gz" -C "$B/rootfs"
# nspawn writes into its tree and names the machine after the directory.
cp -a "$B/rootfs" "$B/rootfs-nspawn"
TB=(thinbox --root /var/lib/tbbench --runroot /run/tbbench)
"${TB[@]}" image rm busybox >/dev/null 2>&1 || true
"${TB[@]}" image import busybox "$SHARE/busybox.tar.gz" >/dev/null

# The same three limits everywhere: 64 MiB memory, 20 tasks, half a CPU.
LIM=(-p MemoryMax=64M -p TasksMax=20 -p CPUQuota=50%)
NSPAWN_LIM=(--property=MemoryMax=64M --property=TasksMax=20 --property=CPUQuota=50%)
TB_LIM=(--memory 64m --pids 20 --cpu 0.5)
PODMAN_LIM=(--memory 64m --pids-limit 20 --cpus 0.5)
UNSHARE=(unshare --pid --mount --uts --net --ipc --fork)
oci_bundle "$B/oci-crun" "$B/rootfs" system.slice:tbbench:crun 67108864 20 50000 -- /bin/true
oci_bundle "$B/oci-runc" "$B/rootfs" system.slice:tbbench:runc 67108864 20 50000 -- /bin/true
podman rmi -f localhost/tbbench-busybox >/dev/null 2>&1 || true
podman import -q "$SHARE/busybox.tar.gz" localhost/tbbench-busybox >/dev/null

# ---- start-up with limits, interleaved ------------------------------------------------
G=limits
row $G ref "ref: systemd-run --scope (3 limits) + unshare + chroot" -- systemd-run --scope -q "${LIM[@]}" "${UNSHARE[@]}" chroot "$B/rootfs" /bin/true
row $G scope "systemd-run --scope (3 limits), no namespaces" -- systemd-run --scope -q "${LIM[@]}" /bin/true
row $G unshare "unshare + chroot, no systemd" -- "${UNSHARE[@]}" chroot "$B/rootfs" /bin/true
row $G thinbox "thinbox run --rm (scope, 3 limits; system bus)" -- "${TB[@]}" run --rm "${TB_LIM[@]}" busybox /bin/true
row -e THINBOX_SYSTEMD_PRIVATE=1 $G thinbox-private "thinbox, THINBOX_SYSTEMD_PRIVATE=1 (systemd's private socket)" -- "${TB[@]}" run --rm "${TB_LIM[@]}" busybox /bin/true
row $G thinbox-noinit "thinbox run --rm --no-init (scope, 3 limits)" -- "${TB[@]}" run --rm --no-init "${TB_LIM[@]}" busybox /bin/true
row -e THINBOX_SYSTEMD_PRIVATE=1 $G thinbox-noinit-private "thinbox --no-init, THINBOX_SYSTEMD_PRIVATE=1" -- "${TB[@]}" run --rm --no-init "${TB_LIM[@]}" busybox /bin/true
row $G crun "crun --systemd-cgroup" -- crun --systemd-cgroup run --bundle "$B/oci-crun" tbb-crun-{n}
row $G runc "runc --systemd-cgroup" -- runc --systemd-cgroup run --bundle "$B/oci-runc" tbb-runc-{n}
row $G podman "podman run --rm (crun, systemd cgroup manager)" -- podman run --rm --network=none "${PODMAN_LIM[@]}" localhost/tbbench-busybox /bin/true
row $G nspawn "systemd-nspawn --property (machined)" -- systemd-nspawn -D "$B/rootfs-nspawn" --private-network -q "${NSPAWN_LIM[@]}" /bin/true
spec_write "$RES/spec.json"
say "guest: $RUNS rounds (+$WARMUP warm-up) of $(jq '.rows | length' "$RES/spec.json") commands"
t0=$EPOCHREALTIME
# A command that hangs is killed and counted as failed (exit 124), so one hang cannot
# stall the whole run; report.sh lists them.
tbbench run -spec "$RES/spec.json" -rounds "$RUNS" -warmup "$WARMUP" -timeout "${BENCH_TIMEOUT:-60s}" -out "$RES/runs.csv" -errlog "$RES/stderr.log"
say "guest: timing done in $(since "$t0") s"

# ---- limits really applied: read from cgroupfs, outside the container -------------------
# Each tool runs `sleep 30N` with the three limits; tbbench limits finds it and prints the
# tightest memory.max / pids.max / cpu.max on its cgroup's path to the root.
oci_bundle "$B/oci-crun-sleep" "$B/rootfs" system.slice:tbbench:crun-sleep 67108864 20 50000 -- sleep 302
oci_bundle "$B/oci-runc-sleep" "$B/rootfs" system.slice:tbbench:runc-sleep 67108864 20 50000 -- sleep 303
wait_for() { # CMDLINE: until a process has exactly this command line (60 s)
	local i
	for ((i = 0; i < 120; i++)); do
		pgrep -x -f "$1" >/dev/null && return 0
		sleep 0.5
	done
	return 1
}
verify() { # LABEL MATCH START STOP
	local label=$1 match=$2 start=$3 stop=$4
	echo "## $label"
	bash -c "$start" </dev/null >/dev/null 2>&1 &
	if wait_for "$match"; then
		sleep 1
		tbbench limits -match "$match" || true
	else
		echo "did not start"
	fi
	bash -c "$stop" </dev/null >/dev/null 2>&1 || true
	wait || true
}
{
	verify "thinbox run --rm ${TB_LIM[*]}" "sleep 301" \
		"${TB[*]} run --rm --name tbv ${TB_LIM[*]} busybox sleep 301" "${TB[*]} stop -t 2 tbv"
	verify "crun --systemd-cgroup" "sleep 302" \
		"crun --systemd-cgroup run -d --bundle $B/oci-crun-sleep tbv-crun" "crun kill tbv-crun KILL; sleep 1; crun delete -f tbv-crun"
	verify "runc --systemd-cgroup" "sleep 303" \
		"runc --systemd-cgroup run -d --bundle $B/oci-runc-sleep tbv-runc" "runc kill tbv-runc KILL; sleep 1; runc delete -f tbv-runc"
	verify "podman ${PODMAN_LIM[*]}" "sleep 304" \
		"podman run -d --name tbv --network=none ${PODMAN_LIM[*]} localhost/tbbench-busybox sleep 304" "podman rm -f -t 0 tbv"
	verify "systemd-nspawn ${NSPAWN_LIM[*]}" "sleep 305" \
		"systemd-nspawn -D $B/rootfs-nspawn --private-network -q ${NSPAWN_LIM[*]} sleep 305" "machinectl terminate rootfs-nspawn"
	verify "ref: systemd-run --scope ${LIM[*]}" "sleep 306" \
		"systemd-run --scope -q ${LIM[*]} ${UNSHARE[*]} chroot $B/rootfs sleep 306" "pkill -x -f 'sleep 306'"
} >"$RES/limits.txt" 2>&1
say "guest: limits checked"

# ---- resident memory per running container (service mode) -------------------------------
# Every process that exists after the start and did not before, minus the payload
# (busybox sleep): that is what the tool keeps resident per container.
SETTLE=${BENCH_SETTLE:-8s}
procdiff() { # NAME PAYLOAD CMD...
	local name=$1 payload=$2
	shift 2
	tbbench procdiff -settle "$SETTLE" -payload "$payload" -shared systemd-machined -log "$RES/procdiff-$name.log" -- "$@" >"$RES/procdiff-$name.txt" || echo "failed" >>"$RES/procdiff-$name.txt"
}
procdiff thinbox-init "sleep 1001" "${TB[@]}" run --unit tbsvc1 busybox sleep 1001
procdiff thinbox-noinit "sleep 1002" "${TB[@]}" run --unit tbsvc2 --no-init busybox sleep 1002
procdiff podman "sleep 1003" podman run -d --name tbsvc3 --network=none localhost/tbbench-busybox sleep 1003
procdiff nspawn "sleep 1004" systemd-nspawn -D "$B/rootfs-nspawn" --private-network -q sleep 1004
oci_bundle "$B/oci-crun-svc" "$B/rootfs" system.slice:tbbench:crun-svc -- sleep 1005
oci_bundle "$B/oci-runc-svc" "$B/rootfs" system.slice:tbbench:runc-svc -- sleep 1006
procdiff crun "sleep 1005" crun --systemd-cgroup run -d --bundle "$B/oci-crun-svc" tbsvc5
procdiff runc "sleep 1006" runc --systemd-cgroup run -d --bundle "$B/oci-runc-svc" tbsvc6
pid=$(pgrep -x systemd-machine || true)
{ [[ -n $pid ]] && tbbench rss "$pid"; } >"$RES/machined.txt" || true
# The units thinbox wrote, for the record.
systemctl cat thinbox-tbsvc1.service >"$RES/unit-tbsvc1.txt" 2>&1 || true
systemctl show -p MainPID,ControlGroup,MemoryCurrent thinbox-tbsvc1.service thinbox-tbsvc2.service >"$RES/units-show.txt" 2>&1 || true

# Clean up: nothing of the benchmark stays running in the guest.
"${TB[@]}" rm -f tbsvc1 >/dev/null 2>&1 || true
"${TB[@]}" rm -f tbsvc2 >/dev/null 2>&1 || true
podman rm -f -t 0 tbsvc3 >/dev/null 2>&1 || true
machinectl terminate rootfs-nspawn >/dev/null 2>&1 || true
crun kill tbsvc5 KILL >/dev/null 2>&1 || true
runc kill tbsvc6 KILL >/dev/null 2>&1 || true
sleep 1
crun delete -f tbsvc5 >/dev/null 2>&1 || true
runc delete -f tbsvc6 >/dev/null 2>&1 || true
say "guest: resident memory measured"

# ---- versions ----------------------------------------------------------------------------
{
	machine_line
	echo "systemd $(systemctl --version | head -n1 | cut -d' ' -f2), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
	echo "thinbox $(thinbox --version 2>/dev/null | awk '{print $NF}')"
	pkg_versions crun runc podman conmon systemd systemd-container util-linux golang-github-containers-common hyperfine
} >"$RES/versions.txt"
systemctl is-system-running >>"$RES/versions.txt" 2>&1 || true
