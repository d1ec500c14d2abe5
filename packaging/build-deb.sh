#!/usr/bin/env bash
# build-deb.sh — build the thinbox Debian package from this checkout.
#
#   packaging/build-deb.sh [--arch amd64|arm64] [--out DIR] [--version DEBVERSION]
#
# Copies the working tree (tracked and untracked, not ignored files) to DIR/deb/,
# vendors the Go modules into the copy (`go mod vendor`: the one step that needs the
# module cache or GOPROXY), writes a changelog entry for the version and runs
# `dpkg-buildpackage -b -a ARCH` there, so the checkout itself is never written to.
# The package lands in DIR/thinbox_VERSION_ARCH.deb (older ones of that ARCH in DIR are
# removed) and its path is the last line on stdout.
#
# The Debian version comes from `git describe` (see version_from_git) unless --version
# gives one; `thinbox --version` prints the describe string either way.
#
# Environment: GO (default: go on PATH, else /usr/local/go/bin/go), BUILD_TIMEOUT
# (seconds for dpkg-buildpackage, default 1800), DEB_BUILD_OPTIONS (passed on),
# THINBOX_DESCRIBE (what `thinbox --version` prints instead of `git describe`).
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
T0=$EPOCHREALTIME

say() { printf 'build-deb: %s\n' "$*" >&2; }
die() {
	printf 'build-deb: error: %s\n' "$*" >&2
	exit 1
}
since() { # seconds since an $EPOCHREALTIME value, one decimal
	local a=${1//[.,]/} b=${EPOCHREALTIME//[.,]/} d
	d=$((b - a))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

arch="" out="$ROOT/out" version=""
while (($#)); do
	case $1 in
	--arch) arch=${2:?--arch needs amd64 or arm64} && shift ;;
	--out) out=${2:?--out needs a directory} && shift ;;
	--version) version=${2:?--version needs a Debian version} && shift ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
arch=${arch:-$(dpkg --print-architecture)}
case $arch in amd64 | arm64) ;; *) die "--arch $arch: the package is built for amd64 and arm64" ;; esac

GO=$(command -v "${GO:-go}" || echo /usr/local/go/bin/go)
[[ -x $GO ]] || die "no Go toolchain (set GO=, or install Go >= 1.26 in /usr/local/go)"
export GO

# ---- host packages ------------------------------------------------------------------------
ensure_pkgs() {
	local p missing=()
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "missing host packages: ${missing[*]} (run as root, or apt-get install them)"
	say "installing ${missing[*]}"
	local log
	log=$(mktemp)
	if ! { timeout 600 apt-get -qq -o DPkg::Lock::Timeout=300 update &&
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -qq -o DPkg::Lock::Timeout=300 \
			install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$log"
}
# build-essential is dpkg-checkbuilddeps' implicit build dependency (the native one,
# also in a cross build); nothing of it is used, since no C is compiled.
ensure_pkgs dpkg-dev debhelper build-essential

# ---- version --------------------------------------------------------------------------------
# A Debian version from `git describe`, which sorts the way the history does:
#   v1.2.3 (on the tag)         1.2.3
#   v1.2.3-4-gabcdef0           1.2.3+git4.gabcdef0   (after 1.2.3, before 1.2.4)
#   v1.3.0-rc1                  1.3.0~rc1             (before 1.3.0)
#   no tag, 8 commits           0.0~git8.gabcdef0
#   uncommitted changes         ...+dirty
# A native package's version may not contain '-'.
version_from_git() {
	local d n h base dirty=""
	if ! git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		echo "0.0~nogit"
		return
	fi
	git -C "$ROOT" diff --quiet HEAD 2>/dev/null || dirty="+dirty"
	if d=$(git -C "$ROOT" describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
		h=${d##*-}
		d=${d%-*}
		n=${d##*-}
		base=${d%-*}
		base=${base#v}
		base=${base//-/\~}
		if [[ $n == 0 ]]; then
			echo "$base$dirty"
		else
			echo "$base+git$n.$h$dirty"
		fi
		return
	fi
	n=$(git -C "$ROOT" rev-list --count HEAD)
	h=g$(git -C "$ROOT" rev-parse --short=7 HEAD)
	echo "0.0~git$n.$h$dirty"
}
describe=${THINBOX_DESCRIBE:-$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo unknown)}
version=${version:-$(version_from_git)}
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "--version $version is not a valid native Debian version (digits first; letters, digits, . + ~)"
say "thinbox $version ($describe) for $arch"

# ---- staging copy ---------------------------------------------------------------------------
mkdir -p "$out"
out=$(readlink -f "$out")
WORK="$out/deb/$arch"
STAGE="$WORK/thinbox-$version"
LOG="$out/deb/build-$arch.log"
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# The staging tree is a copy and can be large (vendor/): never left behind.
	[[ -z ${WORK:-} || ! -d $WORK ]] || rm -rf --one-file-system "$WORK"
	((rc == 0)) || say "failed after $(since "$T0") s (log: $LOG)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf --one-file-system "$WORK"
mkdir -p "$STAGE"
: >"$LOG"

t=$EPOCHREALTIME
# What `git status` would show: tracked files and untracked ones that are not ignored
# (out/, *.test and the built binary are ignored). Files deleted in the working tree
# are skipped.
(
	cd "$ROOT"
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
			tar --null -T - -cf -
	else
		# An unpacked source tarball: everything but build output.
		tar --exclude=./out --exclude=./thinbox --exclude='*.test' --exclude=./.git -cf - .
	fi
) | tar -xf - -C "$STAGE"
say "copied the tree in $(since "$t") s"

t=$EPOCHREALTIME
# The module cache and build cache of the caller, wherever debhelper points HOME.
GOCACHE=$("$GO" env GOCACHE) GOMODCACHE=$("$GO" env GOMODCACHE)
export GOCACHE GOMODCACHE
(cd "$STAGE" && GOFLAGS=-mod=mod timeout 600 "$GO" mod vendor) >>"$LOG" 2>&1 ||
	{ tail -n 20 "$LOG" >&2; die "go mod vendor failed (needs the module cache or GOPROXY)"; }
say "vendored the modules in $(since "$t") s"

# The changelog entry for this build, on top of the history in debian/changelog. Its
# date is the commit's, so SOURCE_DATE_EPOCH (and the man pages' date) follow the source.
maint=$(sed -n 's/^Maintainer: //p' "$STAGE/debian/control")
date=$(git -C "$ROOT" log -1 --format=%cD 2>/dev/null || date -R)
{
	printf 'thinbox (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from git %s.\n\n' "$describe"
	printf ' -- %s  %s\n\n' "$maint" "$date"
	cat "$STAGE/debian/changelog"
} >"$STAGE/debian/changelog.new"
mv "$STAGE/debian/changelog.new" "$STAGE/debian/changelog"

# A cross build cannot run the binaries it makes: its tests run under qemu instead
# (make arm64-smoke), so dh is told not to try.
if [[ $arch != "$(dpkg --print-architecture)" ]]; then
	export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
fi

t=$EPOCHREALTIME
say "dpkg-buildpackage -b -a $arch (log: $LOG)"
if ! (cd "$STAGE" && THINBOX_VERSION=$describe timeout "${BUILD_TIMEOUT:-1800}" \
	dpkg-buildpackage -b -us -uc -a "$arch") >>"$LOG" 2>&1; then
	tail -n 40 "$LOG" >&2
	die "dpkg-buildpackage failed"
fi
say "dpkg-buildpackage took $(since "$t") s"

deb="$WORK/thinbox_${version}_$arch.deb"
[[ -f $deb ]] || die "dpkg-buildpackage made no $deb"
find "$out" -maxdepth 1 -name "thinbox_*_$arch.deb" -delete
cp "$deb" "$out/"
say "built $out/${deb##*/} ($(du -h "$deb" | cut -f1)) in $(since "$T0") s"
echo "$out/${deb##*/}"
