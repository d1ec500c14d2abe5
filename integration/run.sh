#!/usr/bin/env bash
# integration/run.sh — runs thinbox's compiled integration test binaries where they can run.
#
#   integration/run.sh --bin PATH/thinbox --image PATH/busybox.tar.gz --tests DIR
#                      [--phase host|guest|auto] [--arch amd64|arm64]
#
# DIR holds binaries built with `go test -c -tags integration[,systemd]`:
#   host-*.test   run on this machine, as root (namespaces, mounts, exit codes, tty…)
#   guest-*.test  run where systemd is PID 1 with cgroup v2 memory, cpu and pids
#                 controllers: this machine if it has that, else a qemu guest
#                 (integration/vm/vm.sh) with thinbox, the image and the tests on a 9p share.
# --phase host|guest runs one phase only; auto (the default) runs both.
#
# A guest binary with tests named TestReboot*Before / TestReboot*After is run three times:
# everything else first (those pairs skipped), then -test.run '^TestReboot.*Before$', a
# reboot of the guest (the disk overlay persists), then -test.run '^TestReboot.*After$'.
#
# Output is live on the terminal and in ${OUT:-out}/integration/<binary>[.<step>].log.
# The summary counts `--- PASS/FAIL/SKIP` lines: top-level tests and subtests alike.
# Exits non-zero if a test failed, a binary exited non-zero, no test ran at all, or
# (CI=true) a test was skipped.
#
# Environment: CI and THINBOX_TEST_* are passed to the tests (also in the guest);
# THINBOX_FORCE_VM=1 uses the VM even on a host with systemd; INTEGRATION_TEST_TIMEOUT
# (default 20m) is each binary's -test.timeout; VM_* variables go to vm.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
VM=$HERE/vm/vm.sh
T0=$EPOCHREALTIME

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	printf 'run.sh: error: %s\n' "$*" >&2
	exit 2
}
since() { # seconds since an $EPOCHREALTIME value, one decimal
	local a=${1//[.,]/} b=${EPOCHREALTIME//[.,]/} d
	d=$((b - a))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

bin="" image="" tests="" phase=auto arch=""
while (($#)); do
	case $1 in
	--bin) bin=${2:?--bin needs a path} && shift ;;
	--image) image=${2:?--image needs a path} && shift ;;
	--tests) tests=${2:?--tests needs a directory} && shift ;;
	--phase) phase=${2:?--phase needs host, guest or auto} && shift ;;
	--arch) arch=${2:?--arch needs amd64 or arm64} && shift ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
[[ -n $bin && -n $image && -n $tests ]] || die "usage: run.sh --bin PATH/thinbox --image PATH/image.tar.gz --tests DIR [--phase host|guest|auto] [--arch ARCH]"
[[ -x $bin ]] || die "--bin $bin is not an executable file"
[[ -f $image ]] || die "--image $image does not exist"
[[ -d $tests ]] || die "--tests $tests is not a directory"
case $phase in host | guest | auto) ;; *) die "--phase must be host, guest or auto, not '$phase'" ;; esac
host_arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
arch=${arch:-$host_arch}
[[ $(id -u) == 0 ]] || die "run.sh must run as root (the tests need root; so does building the VM image)"
bin=$(readlink -f "$bin") image=$(readlink -f "$image") tests=$(readlink -f "$tests")

OUTDIR=${OUT:-out}/integration
mkdir -p "$OUTDIR"
OUTDIR=$(readlink -f "$OUTDIR")
TEST_TIMEOUT=${INTEGRATION_TEST_TIMEOUT:-20m}
# Outer bound per binary, a little above -test.timeout so Go's own timeout (which prints
# the stuck goroutines) fires first; `timeout` then kills a binary that hangs anyway.
[[ $TEST_TIMEOUT =~ ^[0-9]+[hms]?$ ]] || die "INTEGRATION_TEST_TIMEOUT must look like 20m, 90s or 1h"
OUTER=$(($(sed -E 's/h$/*3600/;s/m$/*60/;s/s$//' <<<"$TEST_TIMEOUT") + 120))
# The VM's own watchdog: the CI run's whole budget, in case this script is SIGKILLed.
export VM_MAX_LIFETIME=${VM_MAX_LIFETIME:-5400}

shopt -s nullglob
host_bins=()
guest_bins=()
[[ $phase == guest ]] || host_bins=("$tests"/host-*.test)
[[ $phase == host ]] || guest_bins=("$tests"/guest-*.test)
((${#host_bins[@]} + ${#guest_bins[@]})) || say "no host-*.test or guest-*.test in $tests for phase $phase"

# Environment handed to every test: CI and THINBOX_TEST_* from our caller, then the
# binary and image paths as the tests will see them.
pass_env=()
[[ -z ${CI+set} ]] || pass_env+=("CI=$CI")
while IFS= read -r v; do
	[[ $v == THINBOX_TEST_IMAGE ]] || pass_env+=("$v=${!v}")
done < <(compgen -e | grep '^THINBOX_TEST_' || true)

# ---- cleanup: always, on every exit path ------------------------------------------------
CHILD="" STATE="" SHARE=""
# shellcheck disable=SC2317 # called from the trap
stop_child() {
	[[ -n $CHILD ]] || return 0
	# The child is a subshell running `timeout … | tee`, or vm.sh: stop its children
	# (timeout passes the signal to the test's whole process group), then itself.
	pkill -TERM -P "$CHILD" 2>/dev/null || true
	kill -TERM "$CHILD" 2>/dev/null || true
	timeout 90 tail --pid="$CHILD" -f /dev/null 2>/dev/null || kill -KILL "$CHILD" 2>/dev/null || true
	CHILD=""
}
# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_child
	if [[ -n $STATE ]]; then
		[[ -f $STATE/serial.log ]] && cp "$STATE/serial.log" "$OUTDIR/vm-serial.log"
		say "stopping the VM"
		timeout 120 "$VM" down "$STATE" || say "vm.sh down failed; state left in $STATE"
	fi
	[[ -z $SHARE ]] || rm -rf --one-file-system "$SHARE"
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# Long steps run in the background and are waited for, so that INT/TERM reach the trap
# at once (bash runs traps only between foreground commands).
bg_wait() { # CMD... → its exit status
	"$@" &
	CHILD=$!
	local rc=0
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}
# CMD's output live on our stdout and in LOG; returns CMD's status (not tee's).
run_logged() { # LOG CMD...
	local log=$1
	shift
	# shellcheck disable=SC2016 # expanded by that bash
	bg_wait bash -c '"${@:2}" </dev/null 2>&1 | tee "$1"; exit "${PIPESTATUS[0]}"' run_logged "$log" "$@"
}

# One line describing a system (runs under sh, locally or in the guest).
# shellcheck disable=SC2016 # expanded by that sh
DESCRIBE='. /etc/os-release 2>/dev/null
if [ -d /run/systemd/system ]; then sd="systemd $(systemctl --version | head -n1 | cut -d" " -f2)"
else sd="PID 1 $(cat /proc/1/comm) (not systemd)"; fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cg="cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
else cg="cgroup v1/hybrid, cgroup2 controllers: $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)"; fi
echo "${NAME:-Linux} ${VERSION_CODENAME:-} $(cat /etc/debian_version 2>/dev/null), $sd, kernel $(uname -r), $cg"'

# ---- results ------------------------------------------------------------------------------
R_NAME=() R_PHASE=() R_PASS=() R_FAIL=() R_SKIP=() R_RC=() R_TIME=() R_WHERE=()
declare -A WHERE_DESC=()
count() { grep -cE "^[[:space:]]*--- $1: " "$2" || true; }
record() { # NAME PHASE LOG RC SECONDS WHERE
	R_NAME+=("$1") R_PHASE+=("$2") R_RC+=("$4") R_TIME+=("$5") R_WHERE+=("$6")
	R_PASS+=("$(count PASS "$3")") R_FAIL+=("$(count FAIL "$3")") R_SKIP+=("$(count SKIP "$3")")
}

# Lists the reboot pairs' "Before" tests of a binary (CMD... runs it).
reboot_tests() { # CMD...
	timeout 120 "$@" -test.list '^TestReboot.*Before$' 2>/dev/null | grep -E '^TestReboot.*Before$' || true
}
REBOOT_SKIP='^TestReboot.*(Before|After)$'

# Runs one test binary step. RUNNER… is how to start it (locally or through vm.sh ssh);
# STEP_ARGS holds the step's own flags (-test.run/-test.skip).
STEP_ARGS=()
run_step() { # NAME PHASE WHERE LOGNAME RUNNER...
	local name=$1 ph=$2 where=$3 logname=$4 t rc=0
	shift 4
	local log=$OUTDIR/$logname.log
	local args=(-test.v -test.timeout "$TEST_TIMEOUT" "${STEP_ARGS[@]}")
	printf '\n=== run.sh: %s (%s) on %s\n' "$name" "$ph" "$where"
	t=$EPOCHREALTIME
	run_logged "$log" "$@" "${args[@]}" || rc=$?
	((rc != 124)) || echo "run.sh: $name ($ph) killed after ${OUTER}s" | tee -a "$log" >&2
	record "$name" "$ph" "$log" "$rc" "$(since "$t")" "$where"
}

run_binary_local() { # PATH PHASE WHERE
	local b=$1 ph=$2 where=$3 name pairs=""
	name=$(basename "$b")
	local runner=(env -C "$tests" "${pass_env[@]}" "THINBOX_BIN=$bin" "THINBOX_TEST_IMAGE=$image"
		timeout -k 30 "$OUTER" "$b")
	# Reboot pairs belong to guest binaries only.
	[[ $ph != guest ]] || pairs=$(reboot_tests "$b")
	STEP_ARGS=()
	[[ -z $pairs ]] || STEP_ARGS=(-test.skip "$REBOOT_SKIP")
	run_step "$name" "$ph" "$where" "${name%.test}" "${runner[@]}"
	if [[ -n $pairs ]]; then
		# This host cannot be rebooted under the tests; say so, and count them as skipped.
		say "$name: $(wc -l <<<"$pairs") TestReboot*Before/After pair(s) need the VM; not run here"
		R_NAME+=("$name") R_PHASE+=("$ph:reboot") R_PASS+=(0) R_FAIL+=(0) R_RC+=(0) R_TIME+=(0.0) R_WHERE+=("$where")
		R_SKIP+=($(($(wc -l <<<"$pairs") * 2)))
	fi
}

run_binary_vm() { # PATH
	local b=$1 name pairs
	name=$(basename "$b")
	local g=/mnt/host
	# Bounded twice: `timeout` in the guest kills the test's process tree there; the one
	# on the host ends the ssh if the guest stops answering.
	local runner=(timeout -k 30 $((OUTER + 60)) "$VM" ssh "$STATE" --
		env -C "$g/tests" "${pass_env[@]}" "THINBOX_BIN=$g/thinbox" "THINBOX_TEST_IMAGE=$g/$(basename "$image")"
		timeout -k 30 "$OUTER" "$g/tests/$name")
	pairs=$(reboot_tests "$VM" ssh "$STATE" -- "$g/tests/$name")
	STEP_ARGS=()
	[[ -z $pairs ]] || STEP_ARGS=(-test.skip "$REBOOT_SKIP")
	run_step "$name" guest guest "${name%.test}" "${runner[@]}"
	[[ -n $pairs ]] || return 0
	STEP_ARGS=(-test.run '^TestReboot.*Before$')
	run_step "$name" "guest:before-reboot" guest "${name%.test}.before-reboot" "${runner[@]}"
	printf '\n=== run.sh: rebooting the guest for %s\n' "$name"
	if ! bg_wait "$VM" reboot "$STATE"; then
		R_NAME+=("$name") R_PHASE+=("guest:reboot") R_PASS+=(0) R_FAIL+=(1) R_SKIP+=(0) R_RC+=(1) R_TIME+=(0.0) R_WHERE+=(guest)
		say "the guest did not come back from the reboot; skipping the rest"
		return 1
	fi
	STEP_ARGS=(-test.run '^TestReboot.*After$')
	run_step "$name" "guest:after-reboot" guest "${name%.test}.after-reboot" "${runner[@]}"
}

# ---- host phase ---------------------------------------------------------------------------
if ((${#host_bins[@]})); then
	WHERE_DESC[host]="host: $(sh -c "$DESCRIBE")"
	for b in "${host_bins[@]}"; do
		run_binary_local "$b" host host
	done
fi

# ---- guest phase --------------------------------------------------------------------------
host_has_systemd_cgroup2() {
	[[ -d /run/systemd/system && -f /sys/fs/cgroup/cgroup.controllers ]] || return 1
	local c
	for c in memory cpu pids; do
		grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || return 1
	done
}

if ((${#guest_bins[@]})); then
	if [[ $arch == "$host_arch" && ${THINBOX_FORCE_VM:-0} != 1 ]] && host_has_systemd_cgroup2; then
		say "this host has systemd as PID 1 and cgroup v2 memory/cpu/pids: running guest tests here"
		WHERE_DESC[host-systemd]="host-systemd: $(sh -c "$DESCRIBE")"
		for b in "${guest_bins[@]}"; do
			run_binary_local "$b" guest host-systemd
		done
	else
		STATE=$(mktemp -d "${TMPDIR:-/tmp}/thinbox-it-vm.XXXXXX")
		SHARE=$(mktemp -d "${TMPDIR:-/tmp}/thinbox-it-share.XXXXXX")
		# Readable by the guest's unprivileged users too (the share maps host permissions).
		chmod 0755 "$SHARE"
		install -m 0755 "$bin" "$SHARE/thinbox"
		install -m 0644 "$image" "$SHARE/$(basename "$image")"
		install -d -m 0755 "$SHARE/tests"
		install -m 0755 "${guest_bins[@]}" "$SHARE/tests/"
		say "booting the $arch guest (no systemd+cgroup2 on this host)"
		bg_wait "$VM" up "$STATE" --arch "$arch" --share "$SHARE" || die "vm.sh up failed (serial log: $OUTDIR/vm-serial.log)"
		WHERE_DESC[guest]="guest: $(timeout 60 "$VM" ssh "$STATE" -- sh -c "$DESCRIBE" </dev/null)" ||
			die "cannot describe the guest over ssh"
		for b in "${guest_bins[@]}"; do
			run_binary_vm "$b" || break
		done
	fi
fi

# ---- summary ------------------------------------------------------------------------------
summary() {
	local i tp=0 tf=0 ts=0 bad=()
	echo
	echo "== integration summary: counts are '--- PASS/FAIL/SKIP' lines, top-level tests and subtests =="
	printf '%-32s %-20s %5s %5s %5s %5s %8s  %s\n' BINARY PHASE PASS FAIL SKIP EXIT SECONDS WHERE
	for i in "${!R_NAME[@]}"; do
		printf '%-32s %-20s %5s %5s %5s %5s %8s  %s\n' "${R_NAME[i]}" "${R_PHASE[i]}" "${R_PASS[i]}" \
			"${R_FAIL[i]}" "${R_SKIP[i]}" "${R_RC[i]}" "${R_TIME[i]}" "${R_WHERE[i]}"
		tp=$((tp + R_PASS[i])) tf=$((tf + R_FAIL[i])) ts=$((ts + R_SKIP[i]))
		((R_RC[i] == 0)) || bad+=("${R_NAME[i]} (${R_PHASE[i]}) exited ${R_RC[i]}")
	done
	printf '%-32s %-20s %5s %5s %5s\n' TOTAL "" "$tp" "$tf" "$ts"
	local k
	for k in "${!WHERE_DESC[@]}"; do
		echo "  ${WHERE_DESC[$k]}"
	done
	echo "  logs: $OUTDIR (whole run: $(since "$T0") s)"
	local why=()
	((tf == 0)) || why+=("$tf test(s) failed")
	((${#bad[@]} == 0)) || why+=("${bad[@]}")
	((${#R_NAME[@]} > 0 && tp + tf > 0)) || why+=("no test ran")
	[[ ${CI:-} != true || $ts == 0 ]] || why+=("$ts test(s) skipped with CI=true")
	echo "integration: $tp passed, $tf failed, $ts skipped"
	if ((${#why[@]})); then
		local IFS=';'
		echo "integration: FAIL: ${why[*]}"
		return 1
	fi
	echo "integration: OK"
}
rc=0
summary | tee "$OUTDIR/summary.txt" || rc=1
exit "$rc"
