#!/usr/bin/env bash
# Install, with apt-get, what the unit tests need beyond Go: tools whose output the
# packaging tests check (man, zsh, bash) and dpkg. The integration phases install their
# own (integration/vm/vm.sh, integration/deb-test.sh, integration/arm64-smoke.sh).
set -euo pipefail
need=()
for pair in man:man-db zsh:zsh bash:bash dpkg:dpkg unshare:util-linux file:file; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2
	exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
