#!/usr/bin/env bash
# lintian.sh — run lintian on thinbox .deb files; fail on any error or warning that is
# not overridden in debian/thinbox.lintian-overrides (each override says why).
#
#   packaging/lintian.sh DEB...
#
# Prints lintian's own output (info and pedantic tags included, with explanations),
# then the overridden tags. Runs lintian as nobody when started as root (lintian
# warns against root, and needs no privilege to read a .deb).
set -euo pipefail

(($#)) || { echo "usage: lintian.sh DEB..." >&2; exit 2; }
if [[ $(dpkg-query -W -f='${db:Status-Status}' lintian 2>/dev/null) != installed ]]; then
	[[ $(id -u) == 0 ]] || { echo "lintian.sh: lintian is not installed" >&2; exit 2; }
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -qq -o DPkg::Lock::Timeout=300 install -y --no-install-recommends lintian >/dev/null
fi
debs=()
for d in "$@"; do
	[[ -f $d ]] || { echo "lintian.sh: no such file: $d" >&2; exit 2; }
	debs+=("$(readlink -f "$d")")
done
as=()
if [[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1; then
	as=(runuser -u nobody -- env HOME=/tmp)
fi
rc=0
echo "lintian $(lintian --version | awk '{print $2}'): ${debs[*]##*/}"
# --show-overrides is a separate run: lintian 2.116 counts a shown override of an
# error tag towards --fail-on.
timeout 600 "${as[@]}" lintian --info --pedantic --display-experimental --fail-on error,warning "${debs[@]}" || rc=$?
echo "overridden (reasons in debian/thinbox.lintian-overrides):"
{ timeout 600 "${as[@]}" lintian --show-overrides "${debs[@]}" || true; } | grep '^O: ' || echo "  none"
if ((rc != 0)); then
	echo "lintian: FAIL (exit $rc): an error or warning above is not overridden"
	exit 1
fi
echo "lintian: OK (no errors or warnings left)"
