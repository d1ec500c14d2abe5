#!/usr/bin/env bash
# benchmarks/bench.sh — `make bench`: thinbox against crun, runc, bubblewrap,
# systemd-nspawn, podman and lxc, side by side, from Debian's packages.
#
#   benchmarks/bench.sh            (as root; Debian 12 or a derivative with apt)
#
# Phases (BENCH_PHASES, comma-separated, default all of them):
#   host    start-up on this machine, namespaces only, no limits: thinbox vs bwrap, crun,
#           runc, lxc-execute, systemd-nspawn, podman and `unshare … chroot`
#   import  image import of a Debian minbase rootfs tarball vs `tar -xzf` of the same file
#   size    stripped thinbox binary for amd64 and arm64, and what it is made of
#   guest   in the qemu guest (systemd + cgroup v2): thinbox with its scope and limits vs
#           crun/runc --systemd-cgroup, podman, nspawn --property, systemd-run --scope;
#           limits verified; resident memory per running service
# then report.sh writes benchmarks/RESULTS.md's generated part and benchmarks/results.png.
#
# Environment:
#   BENCH_RUNS=20         measured rounds per interleaved run (host and guest)
#   BENCH_GUEST_RUNS      rounds in the guest (default BENCH_RUNS)
#   BENCH_WARMUP=3        unrecorded rounds first
#   BENCH_IMPORT_RUNS=5   rounds of the import comparison
#   BENCH_RSS_RUNS=7      GNU time runs for the launcher's peak RSS
#   BENCH_TIMEOUT=60s     in the guest, a command that runs longer is killed, counted failed
#   BENCH_SETTLE=8s       in the guest, how long after a service's start its memory is read
#   BENCH_OUT=out/bench   raw results (CSV, logs) per phase
#   THINBOX_BENCH_CACHE   cached minbase tarball (default /var/cache/thinbox-bench)
#   THINBOX_BENCH_MIRROR  apt sources file for mmdebstrap (default: the host's Debian entries)
#   BENCH_MAX_LOAD        wait (at most BENCH_QUIET_WAIT=900 s) before each timed phase until
#                         the 1-minute load average is below this, on a shared machine
#   GO=go                 the Go toolchain
#   VM_*, THINBOX_VM_*    passed to integration/vm/vm.sh
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=$(dirname "$HERE")
# shellcheck source=lib.sh
. "$HERE/lib.sh"

RUNS=${BENCH_RUNS:-20}
GUEST_RUNS=${BENCH_GUEST_RUNS:-$RUNS}
WARMUP=${BENCH_WARMUP:-3}
IMPORT_RUNS=${BENCH_IMPORT_RUNS:-5}
RSS_RUNS=${BENCH_RSS_RUNS:-7}
PHASES=${BENCH_PHASES:-host,import,size,guest}
GO=${GO:-go}
CACHE=${THINBOX_BENCH_CACHE:-/var/cache/thinbox-bench}
VM=$TOP/integration/vm/vm.sh
for v in RUNS GUEST_RUNS IMPORT_RUNS RSS_RUNS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive number, not '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, not '$WARMUP'"
[[ $(id -u) == 0 ]] || die "bench.sh must run as root (namespaces, mounts, apt-get, the VM)"
command -v apt-get >/dev/null || die "bench.sh installs its peers with apt-get (Debian or a derivative)"
has_phase() { [[ ,$PHASES, == *,$1,* ]]; }

# On a shared machine other people's work is noise that interleaving spreads evenly but
# does not remove: optionally wait for a quiet moment.
wait_quiet() {
	[[ -n ${BENCH_MAX_LOAD:-} ]] || return 0
	local deadline=$((SECONDS + ${BENCH_QUIET_WAIT:-900})) l
	while l=$(cut -d' ' -f1 /proc/loadavg) && awk -v l="$l" -v m="$BENCH_MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
		if ((SECONDS >= deadline)); then
			say "load average still $l (BENCH_MAX_LOAD=$BENCH_MAX_LOAD); measuring anyway"
			return 0
		fi
		say "load average $l ≥ $BENCH_MAX_LOAD: waiting for a quieter machine"
		sleep 20
	done
}

cd "$TOP"
OUT=$(mkdir -p "${BENCH_OUT:-out/bench}" && readlink -f "${BENCH_OUT:-out/bench}")
ARCH=$(dpkg --print-architecture)
T0=$EPOCHREALTIME

# ---- packages ---------------------------------------------------------------------------
# One apt-get for all; --no-install-recommends everywhere (lxc would otherwise pull lxcfs
# and libpam-cgfs, podman buildah and slirp4netns; the guest image has no recommends
# either, so both sides run the same package sets).
PKGS=(crun runc bubblewrap systemd-container podman lxc hyperfine time jq
	mmdebstrap gnuplot-nox strace util-linux)
missing=()
for p in "${PKGS[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null
	apt-get -qq -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- build ------------------------------------------------------------------------------
export CGO_ENABLED=0
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS="-s -w -X main.version=$VERSION"
# The tags of the shipped binary (Makefile, debian/rules).
TAGS=urfave_cli_no_docs
BIN=$OUT/bin
mkdir -p "$BIN"
say "building thinbox $VERSION and tbbench"
$GO build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$BIN/thinbox" ./cmd/thinbox
$GO build -trimpath -ldflags "-s -w" -o "$BIN/tbbench" ./benchmarks/tbbench
IMAGE=$TOP/out/busybox-$ARCH.tar.gz
integration/busybox-image.sh "$IMAGE" "$ARCH"
TBBENCH=$BIN/tbbench
THINBOX=$BIN/thinbox

# ---- scratch space and cleanup ------------------------------------------------------------
# On the root file system, which overlayfs accepts as an upper layer (tmpfs would too;
# overlayfs itself would not).
W=$(mktemp -d /var/tmp/thinbox-bench.XXXXXX)
VMSTATE="" CG_BEFORE=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $VMSTATE ]]; then
		say "stopping the guest"
		timeout 120 "$VM" down "$VMSTATE" || say "vm.sh down $VMSTATE failed"
	fi
	if [[ -d $W/podman/root ]]; then
		"${HIDE[@]}" podman --root "$W/podman/root" --runroot "$W/podman/run" system reset -f >/dev/null 2>&1 || true
	fi
	# Empty cgroups lxc-execute leaves behind (lxc.pivot, lxc.payload.*), never others.
	if [[ -n $CG_BEFORE ]]; then
		comm -13 "$CG_BEFORE" <(cgroup_dirs) | sort -r | while read -r d; do rmdir "$d" 2>/dev/null || true; done
	fi
	# Nothing may stay mounted under the scratch dir before it goes.
	awk -v d="$W/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$W"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cgroup_dirs() { find /sys/fs/cgroup -mindepth 2 -type d \( -name 'lxc.*' -o -path '*lxc.payload.*' \) 2>/dev/null | sort; }

# crun refuses hybrid cgroups whose cgroup2 mount holds any controller, even with
# --cgroup-manager=disabled ("cgroups in hybrid mode not supported, drop all controllers
# from cgroupv2"). The workaround of research/peers-baseline.md: a private mount
# namespace in which the cgroup2 mount is gone. It is timed on its own ("hide" rows).
HIDE=()
if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == tmpfs ]] &&
	[[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] &&
	[[ -n $(tr -d ' \n' </sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
	HIDE=(unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' hide-cgroup2)
fi

# ---- host: start-up, namespaces only ---------------------------------------------------------
phase_host() {
	local d=$OUT/host
	rm -rf "$d" && mkdir -p "$d"
	local R=$W/rootfs
	mkdir -p "$R" && tar -xzf "$IMAGE" -C "$R"
	cp -a "$R" "$W/rootfs-nspawn"
	# Records on a tmpfs, as /run is on a real system (it is not on every test host);
	# layers on the root file system, as /var/lib/thinbox.
	mkdir -p "$W/tb/run" && mount -t tmpfs -o size=64m,mode=0700 tmpfs "$W/tb/run"
	local TB=("$THINBOX" --root "$W/tb/lib" --runroot "$W/tb/run")
	"${TB[@]}" image import busybox "$IMAGE" >/dev/null
	local PODMAN=(podman --root "$W/podman/root" --runroot "$W/podman/run")
	"${HIDE[@]}" "${PODMAN[@]}" import -q "$IMAGE" localhost/tbbench-busybox >/dev/null
	mkdir -p "$W/lxcpath"
	cat >"$W/lxc.conf" <<-EOF
		lxc.rootfs.path = dir:$R
		lxc.uts.name = bench
		lxc.net.0.type = empty
		lxc.cgroup.relative = 1
	EOF
	CG_BEFORE=$W/cgroups.before
	cgroup_dirs >"$CG_BEFORE"

	local g C
	for g in true echo; do
		if [[ $g == true ]]; then C=(/bin/true); else C=(sh -c 'echo hi'); fi
		oci_bundle "$W/oci-$g" "$R" -- "${C[@]}"
		row "$g" ref "ref: unshare + chroot" -- unshare --pid --mount --uts --net --ipc --fork chroot "$R" "${C[@]}"
		if ((${#HIDE[@]})); then
			row "$g" bare "the command alone, no namespaces" -- "${C[@]}"
			row "$g" hide "hide-cgroup2 wrapper alone (+ the command)" -- "${HIDE[@]}" "${C[@]}"
		fi
		row "$g" thinbox "thinbox run --rm (default --init)" -- "${TB[@]}" run --rm busybox "${C[@]}"
		row "$g" thinbox-noinit "thinbox run --rm --no-init" -- "${TB[@]}" run --rm --no-init busybox "${C[@]}"
		row "$g" bwrap "bwrap" -- bwrap --unshare-pid --unshare-uts --unshare-net --unshare-ipc --ro-bind "$R" / --proc /proc --dev /dev "${C[@]}"
		row "$g" crun "crun${HIDE:+ via hide-cgroup2} (--cgroup-manager=disabled)" -- "${HIDE[@]}" crun --cgroup-manager=disabled run --bundle "$W/oci-$g" tbb-crun-{n}
		row "$g" runc "runc (cgroupfs)" -- runc run --bundle "$W/oci-$g" tbb-runc-{n}
		row "$g" lxc "lxc-execute" -- lxc-execute -P "$W/lxcpath" -n tbbench -f "$W/lxc.conf" -- "${C[@]}"
		row "$g" nspawn "systemd-nspawn --register=no --keep-unit --private-network" -- systemd-nspawn -D "$W/rootfs-nspawn" --register=no --keep-unit --private-network -q "${C[@]}"
		row "$g" podman "podman run --rm --cgroups=disabled${HIDE:+ via hide-cgroup2}" -- "${HIDE[@]}" "${PODMAN[@]}" run --rm --cgroups=disabled --network=none \
			--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/tbbench-busybox "${C[@]}"
	done
	spec_write "$d/spec.json"
	say "host: $RUNS rounds (+$WARMUP warm-up) of $(jq '.rows | length' "$d/spec.json") commands"
	local t0=$EPOCHREALTIME load0
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	"$TBBENCH" run -spec "$d/spec.json" -rounds "$RUNS" -warmup "$WARMUP" -timeout 60s -out "$d/runs.csv" -errlog "$d/stderr.log"
	say "host: timing done in $(since "$t0") s"
	echo "load average (1, 5, 15 min) before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)" >"$d/load.txt"

	# Peak RSS: GNU time's %M, interleaved too, in a run of its own (time's fork adds
	# to the wall clock, and the harness's own ru_maxrss has a floor of its size).
	"$TBBENCH" run -spec "$d/spec.json" -rounds "$RSS_RUNS" -warmup 0 -timeout 60s -gnutime /usr/bin/time -out "$d/rss.csv" -errlog "$d/rss-stderr.log"
	{
		machine_line
		echo "cgroups: $(stat -f -c %T /sys/fs/cgroup), cgroup2 at /sys/fs/cgroup/unified holds: $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || echo -)"
		echo "thinbox $VERSION, $($GO version | cut -d' ' -f3)"
		pkg_versions crun runc bubblewrap systemd-container podman conmon lxc util-linux busybox-static hyperfine time
	} >"$d/versions.txt"
}

# ---- import: a Debian minbase rootfs tarball --------------------------------------------------
minbase_tarball() {
	local tarball=$CACHE/minbase-bookworm.tar.gz
	if [[ -s $tarball ]]; then
		echo "$tarball"
		return
	fi
	mkdir -p "$CACHE"
	local src=${THINBOX_BENCH_MIRROR:-}
	if [[ -z $src ]]; then
		# The host's own Debian bookworm entries, never a hard-coded mirror.
		local f
		for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
			[[ -f $f ]] && grep -qE '^[^#]*bookworm' "$f" && grep -q 'debian' "$f" && src=$f && break
		done
	fi
	say "making $tarball with mmdebstrap --variant=minbase bookworm (once; cached)"
	local tmp=$tarball.tmp.$$.tar.gz
	mmdebstrap --variant=minbase bookworm "$tmp" ${src:+"$src"} >"$CACHE/mmdebstrap.log" 2>&1 ||
		{
			tail -n 20 "$CACHE/mmdebstrap.log" >&2
			die "mmdebstrap failed"
		}
	mv "$tmp" "$tarball"
	echo "$tarball"
}

phase_import() {
	local d=$OUT/import tarball
	rm -rf "$d" && mkdir -p "$d"
	tarball=$(minbase_tarball)
	# Uncompressed size and entries, for throughput.
	tar -tvzf "$tarball" | awk '{ s += $3 } END { printf "raw_bytes=%d\nentries=%d\n", s, NR }' >"$d/tarball.env"
	echo "compressed_bytes=$(stat -c %s "$tarball")" >>"$d/tarball.env"
	# Fresh, empty destinations every run (untimed), the previous run's data written back
	# first so that it does not slow the next one.
	local I=$W/imp fresh="rm -rf $W/imp && mkdir -p $W/imp/x && sync" gone="rm -rf $W/imp && sync"
	row --pre "$fresh" --post "$gone" import thinbox "thinbox image import (syncfs before publishing)" -- \
		"$THINBOX" --root "$I/lib" --runroot "$I/run" image import minbase "$tarball"
	row --pre "$fresh" --post "$gone" import tar "tar -xzf" -- tar -xzf "$tarball" -C "$I/x"
	# shellcheck disable=SC2016 # for that sh
	row --pre "$fresh" --post "$gone" import tar-sync "tar -xzf, then sync -f (the same durability)" -- \
		sh -c 'tar -xzf "$1" -C "$2" && sync -f "$2"' sh "$tarball" "$I/x"
	spec_write "$d/spec.json"
	say "import: $IMPORT_RUNS rounds of thinbox image import vs tar -xzf ($(stat -c %s "$tarball") bytes)"
	local load0
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	"$TBBENCH" run -spec "$d/spec.json" -rounds "$IMPORT_RUNS" -warmup 1 -timeout 300s -out "$d/runs.csv" -errlog "$d/stderr.log"
	echo "load average (1, 5, 15 min) before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)" >"$d/load.txt"
	echo "tar $(tar --version | head -n1 | awk '{print $NF}'), gzip $(gzip --version | head -n1 | awk '{print $NF}')" >"$d/versions.txt"
}

# ---- size -----------------------------------------------------------------------------------
phase_size() {
	local d=$OUT/size a
	rm -rf "$d" && mkdir -p "$d"
	for a in amd64 arm64; do
		GOARCH=$a $GO build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$d/thinbox-$a" ./cmd/thinbox
		echo "$a $(stat -c %s "$d/thinbox-$a")" >>"$d/sizes.txt"
	done
	# What the amd64 binary is made of: symbol sizes summed by module (unstripped build).
	$GO build -trimpath -tags "$TAGS" -ldflags "-X main.version=$VERSION" -o "$d/thinbox-syms" ./cmd/thinbox
	$GO tool nm -size "$d/thinbox-syms" | "$TBBENCH" nmsum >"$d/modules.txt"
	$GO version -m "$d/thinbox-syms" | awk '$1 == "dep" { print $2, $3 }' >"$d/deps.txt"
	rm -f "$d/thinbox-syms"
}

# ---- guest: systemd + cgroup v2 ---------------------------------------------------------------
phase_guest() {
	local d=$OUT/guest share
	rm -rf "$d" && mkdir -p "$d"
	share=$W/share
	mkdir -p "$share/results"
	cp "$THINBOX" "$TBBENCH" "$HERE/guest.sh" "$HERE/lib.sh" "$share/"
	cp "$IMAGE" "$share/busybox.tar.gz"
	VMSTATE=$W/vm
	local load0
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	"$VM" up "$VMSTATE" --flavour bench --share "$share" --mem 2048
	"$VM" ssh "$VMSTATE" --timeout 2400 -- env BENCH_RUNS="$GUEST_RUNS" BENCH_WARMUP="$WARMUP" \
		${BENCH_TIMEOUT:+BENCH_TIMEOUT="$BENCH_TIMEOUT"} ${BENCH_SETTLE:+BENCH_SETTLE="$BENCH_SETTLE"} \
		bash /mnt/host/guest.sh /mnt/host /mnt/host/results
	cp -r "$share/results/." "$d/"
	echo "host load average (1, 5, 15 min) before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)" >"$d/load.txt"
	timeout 120 "$VM" down "$VMSTATE" || true
	VMSTATE=""
}

if has_phase host; then wait_quiet && phase_host; fi
if has_phase import; then wait_quiet && phase_import; fi
if has_phase size; then phase_size; fi
if has_phase guest; then wait_quiet && phase_guest; fi
"$HERE/report.sh" "$OUT"
say "done in $(since "$T0") s; results in $HERE/RESULTS.md, raw data in $OUT"
