# benchmarks/lib.sh — shared by bench.sh (host) and guest.sh (qemu guest); sourced.
# shellcheck shell=bash

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

# Seconds since an $EPOCHREALTIME value, one decimal.
since() {
	local a=${1//[.,]/} b=${EPOCHREALTIME//[.,]/} d
	d=$((b - a))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# ---- interleaved-run specs --------------------------------------------------------------
# row [-e K=V]... [--pre SH] [--post SH] GROUP NAME LABEL -- ARGV...
# appends one command to the spec being built; spec_write FILE writes it (and resets).
# Environment goes in through the spec, never through `env`, which would add an exec to
# one row only. {n} in ARGV becomes a counter unique to every run.
SPEC_ROWS=()
row() {
	local env=() pre="" post=""
	while (($#)); do
		case $1 in
		-e) env+=("$2") && shift 2 ;;
		--pre) pre=$2 && shift 2 ;;
		--post) post=$2 && shift 2 ;;
		*) break ;;
		esac
	done
	local g=$1 n=$2 l=$3
	shift 3
	[[ ${1:-} == -- ]] && shift
	local envj
	envj=$(jq -cn '$ARGS.positional' --args -- "${env[@]}")
	SPEC_ROWS+=("$(jq -cn --arg g "$g" --arg n "$n" --arg l "$l" --arg pre "$pre" --arg post "$post" --argjson env "$envj" \
		'{group: $g, name: $n, label: $l, argv: $ARGS.positional, env: $env}
		 + (if $pre != "" then {pre: ["sh", "-c", $pre]} else {} end)
		 + (if $post != "" then {post: ["sh", "-c", $post]} else {} end)' --args -- "$@")")
}
spec_write() {
	printf '%s\n' "${SPEC_ROWS[@]}" | jq -s '{rows: .}' >"$1"
	SPEC_ROWS=()
}

# ---- OCI bundles -----------------------------------------------------------------------
# oci_bundle DIR ROOTFS [CGROUPS_PATH [MEM PIDS QUOTA]] -- ARGV...
# `crun spec` defaults (its /proc, /dev, masked paths, 3 capabilities, noNewPrivileges),
# edited as in research/peers-*.md: no terminal, read-only root, hostname bench,
# namespaces pid mount uts network ipc; limits only when given.
oci_bundle() {
	local dir=$1 rootfs=$2 cgpath="" mem="" pids="" quota=""
	shift 2
	if [[ $1 != -- ]]; then
		cgpath=$1
		shift
		if [[ $1 != -- ]]; then
			mem=$1 pids=$2 quota=$3
			shift 3
		fi
	fi
	shift # --
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && crun spec)
	jq --arg root "$rootfs" --arg cg "$cgpath" --arg mem "$mem" --arg pids "$pids" --arg quota "$quota" \
		'.process.terminal = false | .process.args = $ARGS.positional
		 | .root = {path: $root, readonly: true} | .hostname = "bench"
		 | .linux.namespaces = [{type: "pid"}, {type: "mount"}, {type: "uts"}, {type: "network"}, {type: "ipc"}]
		 | if $cg != "" then .linux.cgroupsPath = $cg else . end
		 | if $mem != "" then .linux.resources.memory.limit = ($mem | tonumber)
		     | .linux.resources.pids.limit = ($pids | tonumber)
		     | .linux.resources.cpu = {quota: ($quota | tonumber), period: 100000} else . end' \
		--args -- "$@" <"$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# ---- versions --------------------------------------------------------------------------
pkg_versions() { # PKG... → "pkg ver" lines for those installed
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Package} ${Version}\n' "$p" 2>/dev/null || true
	done
}

machine_line() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	# shellcheck disable=SC1091
	printf '%s %s, kernel %s, %s CPUs (%s), %s MiB RAM, PID 1 %s\n' \
		"$(. /etc/os-release && echo "$NAME")" "$(cat /etc/debian_version)" "$(uname -r)" "$(nproc)" \
		"${cpu:-unknown CPU}" "$(($(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 1024))" "$(cat /proc/1/comm)"
}
