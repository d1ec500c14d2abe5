#!/usr/bin/env bash
# Build the busybox test image: a rootfs tarball made from Debian's busybox-static
# package, with no internet beyond the machine's own apt sources.
#
#   integration/busybox-image.sh OUT.tar.gz [ARCH]
#
# ARCH defaults to the host's dpkg architecture; a foreign one (arm64 on amd64) needs
# `dpkg --add-architecture ARCH && apt-get update` first, which this script does.
# The tarball is reproducible for a given .deb (sorted entries, fixed mtimes, numeric
# root ownership), so rebuilding only happens when the output is missing.
set -euo pipefail

out=${1:?usage: busybox-image.sh OUT.tar.gz [ARCH]}
arch=${2:-$(dpkg --print-architecture)}

if [ -s "$out" ]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
	dpkg --add-architecture "$arch"
	apt-get update -qq
fi
( cd "$work" && { apt-get download -qq "busybox-static:$arch" 2>/dev/null || { apt-get update -qq && apt-get download -qq "busybox-static:$arch"; }; } )
dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"

r=$work/rootfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var,root,home}
chmod 1777 "$r/tmp"
chmod 700 "$r/root"
install -m 0755 "$work/deb/bin/busybox" "$r/bin/busybox"
# Applet links: the list busybox itself reports, in the directories it names, so the
# image is complete for whatever busybox-static version the archive carries. Listing
# runs the binary, so for a foreign architecture use the host's own list (the applets
# of one Debian busybox-static version are the same on every architecture).
host_bb=$r/bin/busybox
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	( cd "$work" && mkdir host && cd host && apt-get download -qq busybox-static && dpkg-deb -x busybox-static_*.deb . )
	host_bb=$work/host/bin/busybox
fi
applets=$("$host_bb" --list-full)
for a in $applets; do
	case "$a" in bin/busybox) continue ;; esac
	mkdir -p "$r/$(dirname "$a")"
	ln -sf /bin/busybox "$r/$a"
done
cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
P
cat >"$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
app:x:1000:
nogroup:x:65534:
G
mkdir -p "$r/home/app"
chown 1000:1000 "$r/home/app"
echo "busybox (thinbox test image, $arch)" >"$r/etc/thinbox-image"

tmp=$out.tmp.$$
tar --sort=name --mtime=@0 --numeric-owner -C "$r" -czf "$tmp" .
mv "$tmp" "$out"
