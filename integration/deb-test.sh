#!/usr/bin/env bash
# shellcheck disable=SC2016 # the guest scripts are single-quoted on purpose: they expand in the guest
# deb-test.sh — the thinbox .deb, installed and used in a real systemd (issue 6).
#
#   integration/deb-test.sh [--out DIR]
#
# On the host: builds the amd64 package (make deb), runs lintian on it, builds a
# second package with a higher version for the upgrade, and the busybox image. Then
# boots the amd64 guest of integration/vm (systemd 252, cgroup v2) with those on a 9p
# share and, inside it, through the installed binary only:
#
#   install: dpkg -i; thinbox --version; the man pages (man -w thinbox-run) and the
#     bash/zsh completion; the tmpfiles.d directories; thinbox doctor
#   use: image import busybox; run --rm busybox echo ok; bash completion of `run` offers
#     busybox; run --unit sensor ... is active; systemd-analyze verify of its unit is
#     clean with man checking on (Documentation=man:thinbox-run(1)), and fails without
#     the page (a negative control that the check is real)
#   remove: dpkg -r removes the program; the images, the unit and the running service
#     stay
#   upgrade: dpkg -i of the first build, then of the second over it: the new binary,
#     the service untouched (same main PID)
#   AppArmor 3: with Debian's apparmor installed, the profile is not put in
#     /etc/apparmor.d (that parser rejects `userns`), and apparmor.service stays healthy
#   purge: with images and a service, /var/lib/thinbox and the unit are kept (and
#     said so); with neither, /var/lib/thinbox is removed
#
# Prints one line per check and how long each step took; exits non-zero if any check
# failed. The VM is always shut down. Needs root (vm.sh, dpkg-buildpackage).
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VM=$HERE/vm/vm.sh
# shellcheck source-path=SCRIPTDIR
# shellcheck source=deb-common.sh
. "$HERE/deb-common.sh"

deb_script_setup deb-test "$@"

# ---- host: packages, lintian, image --------------------------------------------------------
step "build the amd64 package (make deb)"
deb1=$("$ROOT/packaging/build-deb.sh" --arch amd64 --out "$out" | tail -n1) || fatal "building the package failed"
v1=$(dpkg-deb -f "$deb1" Version)
echo "built $deb1"

step "lintian"
check "lintian: no errors or warnings that are not overridden" "$ROOT/packaging/lintian.sh" "$deb1"

step "build a second package with a higher version (upgrade)"
v2="$v1+upgradetest"
d1=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo unknown)
deb2=$(THINBOX_DESCRIBE="$d1-upgradetest" "$ROOT/packaging/build-deb.sh" --arch amd64 --out "$out/deb-upgrade" --version "$v2" | tail -n1) ||
	fatal "building the upgrade package failed"
check "version $v2 sorts above $v1" dpkg --compare-versions "$v2" gt "$v1"

step "busybox image and guest extras"
img=$out/busybox-amd64.tar.gz
"$ROOT/integration/busybox-image.sh" "$img" amd64
SHARE=$(mktemp -d "${TMPDIR:-/tmp}/thinbox-deb-share.XXXXXX")
chmod 0755 "$SHARE"
install -m 0644 "$deb1" "$SHARE/thinbox-1.deb"
install -m 0644 "$deb2" "$SHARE/thinbox-2.deb"
install -m 0644 "$img" "$SHARE/busybox.tar.gz"
# Debian 12's apparmor (3.0), for the check that the profile stays out where it can't
# be parsed. From the host's apt sources, as the guest's own packages are.
mkdir "$SHARE/apparmor"
(cd "$SHARE/apparmor" && timeout 300 apt-get download -qq apparmor:amd64 >/dev/null 2>&1) ||
	echo "deb-test: could not download apparmor; the AppArmor 3 step will fail" >&2
chmod -R a+rX "$SHARE"

step "boot the amd64 guest"
STATE=$(mktemp -d "${TMPDIR:-/tmp}/thinbox-deb-vm.XXXXXX")
timeout 900 "$VM" up "$STATE" --share "$SHARE" || fatal "vm.sh up failed"
g sh -c '. /etc/os-release; echo "guest: $PRETTY_NAME, systemd $(systemctl --version | head -n1 | cut -d" " -f2), kernel $(uname -r)"'

# ---- guest: install ------------------------------------------------------------------------
step "install"
# The guest image leaves out /usr/share/man and /usr/share/doc (dpkg path-exclude, to
# keep it small); a real system installs them, so the test does too.
gsh 'for f in /etc/dpkg/dpkg.cfg.d/*; do grep -q "^path-exclude" "$f" && mv "$f" /root/ || true; done'
# What is named thinbox before the package comes (the guest image's own files are),
# to compare with after the purge.
gsh 'find /usr /etc -name "*thinbox*" | sort >/root/thinbox-files.before'
check "dpkg -i thinbox $v1" g dpkg -i /mnt/host/thinbox-1.deb
check "thinbox --version is the build's ($d1)" gsh "thinbox --version | grep -qxF 'thinbox version $d1'"
check "/usr/bin/thinbox is a static binary" gsh '! ldd /usr/bin/thinbox >/dev/null 2>&1'
if g sh -c 'command -v man' >/dev/null 2>&1; then
	check "man -w thinbox-run finds the installed page" gsh 'test "$(man -w thinbox-run)" = /usr/share/man/man1/thinbox-run.1.gz'
	check "man -w finds thinbox(1) and a page per verb" gsh 'for p in thinbox thinbox-run thinbox-ps thinbox-inspect thinbox-stop thinbox-rm thinbox-image thinbox-unit thinbox-logs thinbox-doctor; do man -w "$p" >/dev/null; done'
	check "man renders thinbox-run(1) without warnings" gsh 'test -z "$(MANWIDTH=80 man --warnings thinbox-run 2>&1 >/dev/null)"'
else
	echo "(no man in the guest: checking the files instead)"
	check "thinbox-run.1.gz is installed" g test -s /usr/share/man/man1/thinbox-run.1.gz
fi
check "bash completion installed" g test -s /usr/share/bash-completion/completions/thinbox
check "zsh completion installed" g test -s /usr/share/zsh/vendor-completions/_thinbox
check "tmpfiles.d made /run/thinbox and /var/lib/thinbox, 0700 root" \
	gsh 'test "$(stat -c %a:%U /run/thinbox /var/lib/thinbox | sort -u)" = 700:root'
# dh_compress gzips documents over 4 KiB, so the README is either.
check "README, README.Debian, changelog and copyright in /usr/share/doc/thinbox" \
	gsh 'cd /usr/share/doc/thinbox && for f in README.md README.Debian changelog copyright; do test -s $f || test -s $f.gz || exit 1; done'
check "the delegation drop-in is an example only: not under /etc" \
	gsh 'test -s "/usr/share/thinbox/systemd/user@.service.d/thinbox-delegate.conf" && ! ls /etc/systemd/system/user@.service.d/ 2>/dev/null | grep -q thinbox'
check "no AppArmor profile where apparmor is not installed" g test ! -e /etc/apparmor.d/thinbox

step "thinbox doctor"
g thinbox doctor | tee "$LOGDIR/doctor.txt" || true
check "thinbox doctor exits 0 (nothing FAILs)" g thinbox doctor
check "doctor: cgroup v2 OK" grep -q '^OK    cgroup v2 ' "$LOGDIR/doctor.txt"
check "doctor: cgroup controllers OK" grep -q '^OK    cgroup controllers ' "$LOGDIR/doctor.txt"
check "doctor: systemd OK" grep -q '^OK    systemd .*bus reachable' "$LOGDIR/doctor.txt"
check "doctor: namespaces and overlayfs OK" gsh 'thinbox doctor | grep -q "^OK    namespaces" && thinbox doctor | grep -q "^OK    overlayfs"'
check "doctor --format json" gsh 'thinbox doctor --format json | grep -q "\"check\": \"systemd\""'

# ---- guest: use ----------------------------------------------------------------------------
step "image import, run, completion"
check "thinbox image import busybox" g thinbox image import busybox /mnt/host/busybox.tar.gz
check "thinbox run --rm busybox echo ok" gsh 'test "$(thinbox run --rm busybox echo ok)" = ok'
check "bash completion of 'thinbox run ' offers busybox" \
	g bash -c 'source /usr/share/bash-completion/completions/thinbox; COMP_WORDS=(thinbox run ""); COMP_CWORD=2; _thinbox; [[ " ${COMPREPLY[*]} " == *" busybox "* ]]'

step "run --unit sensor"
check "thinbox run --unit sensor" g thinbox run --unit sensor busybox sh -c 'while true; do echo tick; sleep 1; done'
check "thinbox-sensor.service is active" \
	gsh 'for i in $(seq 30); do systemctl is-active --quiet thinbox-sensor && exit 0; sleep 1; done; systemctl status --no-pager thinbox-sensor; exit 1'
g systemctl status --no-pager --lines 3 thinbox-sensor || true
check "its journal has the container's output" \
	gsh 'for i in $(seq 15); do journalctl -u thinbox-sensor --no-pager | grep -q tick && exit 0; sleep 1; done; exit 1'
check "systemd-analyze verify of the unit is clean, man pages checked" \
	gsh 'o=$(systemd-analyze verify --man=yes /etc/systemd/system/thinbox-sensor.service 2>&1); echo "$o"; test -z "$o"'
check "negative control: without thinbox-run.1.gz, systemd-analyze verify complains" \
	gsh 'mv /usr/share/man/man1/thinbox-run.1.gz /root/; o=$(systemd-analyze verify --man=yes /etc/systemd/system/thinbox-sensor.service 2>&1 || true); mv /root/thinbox-run.1.gz /usr/share/man/man1/; echo "$o"; echo "$o" | grep -q "thinbox-run"'

# ---- guest: remove, reinstall, upgrade -----------------------------------------------------
step "dpkg -r"
pid_before=$(g systemctl show -P MainPID thinbox-sensor)
check "dpkg -r thinbox (prerm names the installed service)" gsh 'dpkg -r thinbox 2>&1 | tee /dev/stderr | grep -q "thinbox-sensor.service"'
check "the program is gone" gsh '! test -e /usr/bin/thinbox && ! test -e /usr/share/man/man1/thinbox-run.1.gz && ! test -e /usr/lib/tmpfiles.d/thinbox.conf'
check "the image is still there" g test -s /var/lib/thinbox/images/busybox/image.json
check "the unit file is still there" g test -s /etc/systemd/system/thinbox-sensor.service
check "the service still runs, same main PID" gsh "systemctl is-active --quiet thinbox-sensor && test \"\$(systemctl show -P MainPID thinbox-sensor)\" = '$pid_before'"

step "reinstall, then upgrade"
check "dpkg -i thinbox $v1 again" g dpkg -i /mnt/host/thinbox-1.deb
check "thinbox ps -a lists sensor again" gsh 'thinbox ps -a | grep -q "^sensor "'
check "dpkg -i thinbox $v2 over it (upgrade)" g dpkg -i /mnt/host/thinbox-2.deb
check "dpkg has $v2" gsh "test \"\$(dpkg-query -W -f='\${Version}' thinbox)\" = '$v2'"
check "thinbox --version is the new build's" gsh "thinbox --version | grep -qxF 'thinbox version $d1-upgradetest'"
check "the upgrade left the service running (same main PID)" \
	gsh "systemctl is-active --quiet thinbox-sensor && test \"\$(systemctl show -P MainPID thinbox-sensor)\" = '$pid_before'"
check "the new binary runs containers" gsh 'test "$(thinbox run --rm busybox echo ok)" = ok'

step "AppArmor 3 (Debian 12's apparmor installed)"
check "install apparmor 3.0 in the guest" gsh 'dpkg -i /mnt/host/apparmor/apparmor_*.deb >/dev/null && apparmor_parser --version | head -n1'
check "AppArmor 3's parser rejects the profile (it needs abi 4.0 and userns)" \
	gsh '! apparmor_parser --skip-kernel-load --skip-cache /usr/share/thinbox/apparmor/thinbox'
check "reconfiguring thinbox leaves /etc/apparmor.d/thinbox out" \
	gsh 'dpkg -i /mnt/host/thinbox-2.deb >/dev/null && test ! -e /etc/apparmor.d/thinbox'
check "apparmor.service reloads cleanly" gsh 'systemctl restart apparmor.service && systemctl is-active --quiet apparmor.service'
check "negative control: the profile in /etc/apparmor.d would fail apparmor.service" \
	gsh 'cp /usr/share/thinbox/apparmor/thinbox /etc/apparmor.d/thinbox; rc=0; systemctl restart apparmor.service || rc=$?; rm -f /etc/apparmor.d/thinbox; systemctl restart apparmor.service || true; systemctl reset-failed apparmor.service || true; test "$rc" != 0'

# ---- guest: purge --------------------------------------------------------------------------
step "purge with images and a service"
check "dpkg --purge thinbox says what it kept" \
	gsh 'dpkg --purge thinbox 2>&1 | tee /dev/stderr | grep -q "kept /var/lib/thinbox"'
check "not installed any more" gsh '! dpkg-query -W -f="\${db:Status-Status}" thinbox 2>/dev/null | grep -qx installed'
check "the image store is kept" g test -s /var/lib/thinbox/images/busybox/image.json
check "the unit file is kept" g test -s /etc/systemd/system/thinbox-sensor.service

step "purge with nothing of the user's left"
check "reinstall, thinbox rm -f sensor, thinbox image rm busybox" \
	gsh 'dpkg -i /mnt/host/thinbox-2.deb >/dev/null && thinbox rm -f sensor && thinbox image rm busybox'
check "the service's unit is gone" g test ! -e /etc/systemd/system/thinbox-sensor.service
check "dpkg --purge thinbox" g dpkg --purge thinbox
check "/var/lib/thinbox is removed" g test ! -e /var/lib/thinbox
check "nothing the package or thinbox made is left in /usr or /etc" \
	gsh 'find /usr /etc -name "*thinbox*" | sort | diff /root/thinbox-files.before -'

summary deb-test
