# deb-common.sh — sourced by deb-test.sh and arm64-smoke.sh: step timing, checks, and
# running commands in the guest of integration/vm with the VM always shut down.
#
# The sourcing script sets ROOT and VM (vm.sh), then calls deb_script_setup once.
# shellcheck shell=bash

T0=$EPOCHREALTIME

since() { # seconds since an $EPOCHREALTIME value, one decimal
	local a=${1//[.,]/} b=${EPOCHREALTIME//[.,]/} d
	d=$((b - a))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

STATE="" SHARE=""
vm_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $STATE ]]; then
		[[ -f $STATE/serial.log ]] && cp "$STATE/serial.log" "$LOGDIR/vm-serial.log"
		timeout 120 "$VM" down "$STATE" || echo "${0##*/}: vm.sh down failed; state left in $STATE" >&2
	fi
	[[ -z $SHARE ]] || rm -rf --one-file-system "$SHARE"
	exit "$rc"
}
vm_cleanup_trap() {
	trap vm_cleanup EXIT
	trap 'echo "${0##*/}: interrupted" >&2; exit 130' INT
	trap 'echo "${0##*/}: terminated" >&2; exit 143' TERM
}

PASSED=0 FAILED=() STEP="" STEP_T="" TIMES=()
# step NAME: ends the previous step, recording how long it took, and starts this one.
step() {
	if [[ -n $STEP ]]; then
		TIMES+=("$(printf '%-58s %7s s' "$STEP" "$(since "$STEP_T")")")
	fi
	STEP=$1 STEP_T=$EPOCHREALTIME
	[[ -z $1 ]] || printf '\n== %s\n' "$1"
}

# check DESC CMD...: runs CMD; its output is shown only when it fails.
check() {
	local desc=$1 o rc=0
	shift
	o=$("$@" 2>&1) || rc=$?
	if ((rc == 0)); then
		PASSED=$((PASSED + 1))
		echo "ok   $desc"
	else
		FAILED+=("$desc")
		echo "FAIL $desc (exit $rc)"
		tail -n 25 <<<"$o" | sed 's/^/     | /'
	fi
}

# g CMD...: a command in the guest, bounded; gsh SCRIPT: a sh -e script there.
g() { timeout -k 5 330 "$VM" ssh "$STATE" --timeout 300 -- "$@"; }
gsh() { g sh -ec "$1"; }

fatal() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# summary NAME: the timings and the verdict; returns non-zero if a check failed.
summary() {
	step ""
	echo
	echo "== timings"
	printf '  %s\n' "${TIMES[@]}"
	printf '  %-58s %7s s\n' "whole run" "$(since "$T0")"
	echo
	if ((${#FAILED[@]})); then
		echo "$1: FAIL: $PASSED passed, ${#FAILED[@]} failed:"
		printf '  - %s\n' "${FAILED[@]}"
		return 1
	fi
	echo "$1: OK: $PASSED checks passed"
}

# deb_script_setup NAME ARGS...: the common start of deb-test.sh and arm64-smoke.sh.
# Parses --out DIR (default ROOT/out) and -h, insists on root, sets out and
# LOGDIR=out/NAME, arms the guest's own watchdog and the cleanup trap, and exports GO.
deb_script_setup() {
	local name=$1
	shift
	out="$ROOT/out"
	while (($#)); do
		case $1 in
		--out) out=${2:?--out needs a directory} && shift ;;
		-h | --help)
			sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
			exit 0
			;;
		*) fatal "unknown argument '$1'" ;;
		esac
		shift
	done
	[[ $(id -u) == 0 ]] || fatal "must run as root"
	mkdir -p "$out"
	out=$(readlink -f "$out")
	LOGDIR=$out/$name
	mkdir -p "$LOGDIR"
	# The guest's own watchdog: kills qemu even if this script is SIGKILLed.
	export VM_MAX_LIFETIME=${VM_MAX_LIFETIME:-2400}
	vm_cleanup_trap
	GO=$(command -v "${GO:-go}" || echo /usr/local/go/bin/go)
	export GO
}
