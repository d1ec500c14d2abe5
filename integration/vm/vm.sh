#!/usr/bin/env bash
# vm.sh — a Debian bookworm guest under qemu with systemd as PID 1 and cgroup v2
# controllers, for thinbox's integration tests (the host may have neither).
#
#   vm.sh build  [--arch amd64|arm64] [--flavour base|bench]
#   vm.sh up     STATE_DIR [--arch ARCH] [--flavour F] [--share DIR] [--mem MB]
#   vm.sh ssh    STATE_DIR [--user USER] [--tty] [--timeout SECONDS] [-- CMD...]
#   vm.sh reboot STATE_DIR
#   vm.sh down   STATE_DIR [--keep]
#   vm.sh prune  — delete cached images of other recipe versions (none in use)
#
# Environment:
#   THINBOX_VM_CACHE   image cache (default /var/cache/thinbox-vm)
#   THINBOX_VM_MIRROR  apt sources for the guest: a sources file or a "deb URI SUITE COMP" line
#                      (default: the host's own bookworm entries, else mmdebstrap's default)
#   VM_BOOT_TIMEOUT    seconds to wait for ssh after boot or reboot (default 300)
#   VM_MAX_LIFETIME    seconds after which qemu is killed whatever happens (default 3000)
#   VM_ACCEL           tcg|kvm to override the accelerator choice
#   VM_CMDLINE_EXTRA   appended to the guest kernel command line (debugging, e.g.
#                      systemd.journald.forward_to_console=1)
#   VM_SSH_TIMEOUT     default bound for `vm.sh ssh` commands, 0 = none (default 0; the
#                      watchdog still bounds everything by VM_MAX_LIFETIME)
#
# Messages go to stderr; stdout belongs to the guest command (`vm.sh ssh`).
# Needs root for build (mmdebstrap, apt-get) and is meant to be run as root.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_ROOT=${THINBOX_VM_CACHE:-/var/cache/thinbox-vm}
BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-300}
MAX_LIFETIME=${VM_MAX_LIFETIME:-3000}

log() { printf 'vm: %s\n' "$*" >&2; }
die() {
	printf 'vm: error: %s\n' "$*" >&2
	exit 1
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF" >&2
	exit 2
}

# Seconds since $1 (an $EPOCHREALTIME value), one decimal. The decimal separator of
# EPOCHREALTIME follows the locale, hence [.,].
since() {
	local a=${1//[.,]/} b=${EPOCHREALTIME//[.,]/} d
	d=$((b - a))
	printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# qemu splits option values on commas; a literal comma is written twice.
qesc() { printf '%s' "${1//,/,,}"; }

# One EXIT trap for the whole script; each step registers what it must undo by
# setting one of these variables, and clears it once the step succeeded.
BUILD_TMP=""     # half-built image directory to delete
MMDEBSTRAP_PID="" # a running mmdebstrap to stop first
UP_STATE=""      # state dir of a VM whose `up` has not finished: tear it down
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $UP_STATE ]]; then
		log "up failed; killing the VM (state and serial.log kept in $UP_STATE)"
		do_down "$UP_STATE" 1 0 || true
	fi
	if [[ -n $MMDEBSTRAP_PID ]] && kill -0 "$MMDEBSTRAP_PID" 2>/dev/null; then
		log "stopping mmdebstrap"
		kill -TERM "$MMDEBSTRAP_PID" 2>/dev/null || true
		timeout 60 tail --pid="$MMDEBSTRAP_PID" -f /dev/null || kill -KILL "$MMDEBSTRAP_PID" 2>/dev/null || true
	fi
	if [[ -n $BUILD_TMP ]]; then
		safe_rm "$BUILD_TMP" || true
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# rm -rf that never follows a mount: a killed mmdebstrap can leave /proc, /sys or /dev
# mounted inside the rootfs, and deleting through a bind mount of /dev would be a disaster.
safe_rm() {
	local dir=$1 mp
	[[ -e $dir ]] || return 0
	dir=$(readlink -f "$dir")
	# Deepest mount points first.
	while read -r mp; do
		umount -l "$mp" 2>/dev/null || true
	done < <(awk -v d="$dir/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	rm -rf --one-file-system "$dir"
}

# ---------------------------------------------------------------------------------------
# Host packages
# ---------------------------------------------------------------------------------------

APT_UPDATED=0
ensure_pkgs() {
	local p missing=()
	for p in "$@"; do
		if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
			missing+=("$p")
		fi
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "missing host packages: ${missing[*]} (run as root, or apt-get install them)"
	command -v apt-get >/dev/null || die "missing host packages: ${missing[*]} and no apt-get to install them"
	log "installing host packages: ${missing[*]}"
	local apt=(apt-get -qq -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0) aptlog t0=$EPOCHREALTIME
	# apt's chatter goes to a file and is shown only when it fails.
	aptlog=$(mktemp "${TMPDIR:-/tmp}/thinbox-vm-apt.XXXXXX")
	if ((APT_UPDATED == 0)); then
		if ! timeout 600 "${apt[@]}" update >"$aptlog" 2>&1; then
			cat "$aptlog" >&2
			rm -f "$aptlog"
			die "apt-get update failed"
		fi
		APT_UPDATED=1
	fi
	if ! DEBIAN_FRONTEND=noninteractive timeout 900 "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$aptlog"
	log "installed ${missing[*]} in $(since "$t0") s"
}

host_dpkg_arch() { dpkg --print-architecture 2>/dev/null || uname -m; }

# Run foreign-architecture maintainer scripts through qemu-user: binfmt_misc must be
# mounted and the handler enabled; on some machines installing binfmt-support registers
# nothing because service starts are denied at install time.
enable_binfmt() {
	local guest=$1 name
	case $guest in
	arm64) name=qemu-aarch64 ;;
	*) die "no binfmt handler known for $guest" ;;
	esac
	local bm=/proc/sys/fs/binfmt_misc
	if [[ ! -e $bm/register ]]; then
		mount -t binfmt_misc binfmt_misc "$bm" || die "cannot mount binfmt_misc on $bm"
	fi
	if [[ ! -e $bm/$name ]]; then
		[[ -e /var/lib/binfmts/$name ]] || update-binfmts --import "$name" >&2 || true
		update-binfmts --enable "$name" >&2 || die "update-binfmts --enable $name failed"
	fi
	if ! grep -qx enabled "$bm/$name" 2>/dev/null; then
		echo 1 >"$bm/$name" || die "cannot enable binfmt handler $name"
	fi
	arch-test "$guest" >/dev/null 2>&1 || die "arch-test $guest fails: binfmt handler $name does not run $guest binaries"
}

# ---------------------------------------------------------------------------------------
# Guest apt sources: the host's own Debian entries for the guest suite, never a
# hard-coded mirror. Prints one-line "deb [signed-by=…] URI SUITE COMPONENTS" entries.
# ---------------------------------------------------------------------------------------

host_sources() {
	local suite=$1 f
	# One-line style.
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		awk -v want="$suite" '
			$1 == "deb" {
				i = 2; opts = ""
				if ($2 ~ /^\[/) { while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } ; i++ } }
				sb = ""
				if (match(opts, /signed-by=[^] ]+/)) sb = " [" substr(opts, RSTART, RLENGTH) "]"
				if ($(i + 1) ~ ("^" want "(-|$)")) {
					line = "deb" sb " " $i " " $(i + 1)
					for (j = i + 2; j <= NF; j++) line = line " " $j
					print line
				}
			}' "$f"
	done
	# deb822 style (paragraphs; continuation lines start with blanks).
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		awk -v want="$suite" '
			BEGIN { RS = ""; FS = "\n" }
			{
				split("", v); key = ""
				for (i = 1; i <= NF; i++) {
					l = $i
					if (l ~ /^#/) continue
					if (l ~ /^[ \t]/) { if (key != "") v[key] = v[key] "\n" l; continue }
					p = index(l, ":"); if (!p) continue
					key = tolower(substr(l, 1, p - 1)); val = substr(l, p + 1)
					gsub(/^[ \t]+|[ \t]+$/, "", val); v[key] = val
				}
				if (tolower(v["enabled"]) == "no" || v["types"] !~ /(^|[ \t])deb([ \t]|$)/) next
				sb = ""
				if (v["signed-by"] != "" && v["signed-by"] !~ /\n/) sb = " [signed-by=" v["signed-by"] "]"
				comps = v["components"]; gsub(/[ \t]+/, " ", comps)
				n = split(v["uris"], U, /[ \t]+/); m = split(v["suites"], S, /[ \t]+/)
				for (a = 1; a <= n; a++) for (b = 1; b <= m; b++)
					if (S[b] ~ ("^" want "(-|$)")) print "deb" sb " " U[a] " " S[b] " " comps
			}' "$f"
	done
}

# ---------------------------------------------------------------------------------------
# Architectures: host-side (how to run qemu) settings. Image content lives in the recipe.
# ---------------------------------------------------------------------------------------

arch_runtime() {
	case $1 in
	amd64)
		QEMU=qemu-system-x86_64
		QEMU_PKGS=(qemu-system-x86 qemu-utils openssh-client)
		QEMU_MACHINE=()
		QEMU_CPU_TCG=(-cpu max)
		CONSOLE=ttyS0
		;;
	arm64)
		QEMU=qemu-system-aarch64
		QEMU_PKGS=(qemu-system-arm qemu-utils openssh-client)
		QEMU_MACHINE=(-M virt)
		# -cpu max is twice as slow under TCG on this kind of machine (see testbed notes).
		QEMU_CPU_TCG=(-cpu cortex-a72)
		CONSOLE=ttyAMA0
		;;
	*) die "unsupported --arch '$1' (amd64 or arm64)" ;;
	esac
}

# KVM only when it can run a stock kernel: same architecture, /dev/kvm usable, and on
# x86 real vmx/svm without the PVM module (PVM's /dev/kvm cannot boot a Debian kernel).
choose_accel() {
	local arch=$1
	if [[ -n ${VM_ACCEL:-} ]]; then
		echo "$VM_ACCEL"
		return
	fi
	if [[ $arch == "$(host_dpkg_arch)" && -r /dev/kvm && -w /dev/kvm && ! -e /sys/module/kvm_pvm ]]; then
		case $arch in
		amd64) grep -qwE 'vmx|svm' /proc/cpuinfo && {
			echo kvm
			return
		} ;;
		arm64) echo kvm && return ;;
		esac
	fi
	echo tcg
}

# ---------------------------------------------------------------------------------------
# Optional flavours: extra guest packages on top of GUEST_PACKAGES. A flavour is its own
# cache entry (the resolved package list is part of the hash), so editing one never
# rebuilds the base image. "bench" is reserved for the peer benchmarks (benchmarks/);
# nothing builds it yet.
# ---------------------------------------------------------------------------------------
# shellcheck disable=SC2034 # read through ${!var} in guest_packages
FLAVOUR_PACKAGES_base=""
# shellcheck disable=SC2034
FLAVOUR_PACKAGES_bench="crun runc bubblewrap systemd-container hyperfine podman jq time strace"

# ==== recipe begin: everything down to "recipe end" is hashed into the image cache key ====
SUITE=bookworm
# The guest's packages, ONE list (ARCH becomes amd64 or arm64). The second line is what
# the tests need in the guest: a static busybox for images, dpkg-dev and lintian for the
# .deb tests, sudo and uidmap (newuidmap) for the rootless tests.
GUEST_PACKAGES="systemd systemd-sysv dbus udev libpam-systemd linux-image-ARCH initramfs-tools openssh-server iproute2 procps kmod util-linux ca-certificates
busybox-static dpkg-dev lintian sudo uidmap"
# Small initrd: only what finds the root disk (and the 9p share) on qemu's virtio devices.
INITRD_MODULES="virtio_pci virtio_blk virtio_net ext4 9p 9pnet 9pnet_virtio"
INITRD_MODULES_arm64="virtio_mmio"
IMAGE_SIZE=3G
GUEST_ADDR=10.0.2.15/24 GUEST_GW=10.0.2.2 GUEST_DNS=10.0.2.3
# Timers and waits that only cost boot time or wake up mid-test.
MASK_UNITS="systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer
dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
systemd-tmpfiles-clean.timer man-db.timer getty@tty1.service"

guest_packages() { # ARCH FLAVOUR
	local var=FLAVOUR_PACKAGES_$2
	local pk="${GUEST_PACKAGES//ARCH/$1} ${!var}"
	# shellcheck disable=SC2086 # word-split on purpose: one space-separated line
	echo $pk
}

# Builds rootfs → root.img, vmlinuz, initrd.img in $1 (a fresh directory).
recipe_build() { # DIR ARCH FLAVOUR [SOURCES_FILE]
	local dir=$1 arch=$2 flavour=$3 sources=${4:-} t
	local mods="$INITRD_MODULES"
	[[ $arch == arm64 ]] && mods="$mods $INITRD_MODULES_arm64"
	ssh-keygen -q -t ed25519 -N '' -C "thinbox-vm" -f "$dir/id_ed25519" || die "ssh-keygen failed"

	export THINBOX_VM_SELF=$SELF THINBOX_VM_PUBKEY=$dir/id_ed25519.pub THINBOX_VM_MODULES=$mods
	t=$EPOCHREALTIME
	# The essential hook runs before the kernel is installed, so the kernel's postinst
	# already builds the small initrd. The customize hook runs with the finished rootfs.
	# shellcheck disable=SC2016 # $1 and $THINBOX_* are expanded by mmdebstrap's sh
	mmdebstrap --mode=root --format=directory --variant=minbase --arch="$arch" \
		--include="$(guest_packages "$arch" "$flavour" | tr ' ' ',')" \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
			printf "MODULES=list\nCOMPRESS=gzip\n" >"$1/etc/initramfs-tools/conf.d/thinbox.conf" &&
			printf "%s\n" $THINBOX_VM_MODULES >"$1/usr/share/initramfs-tools/modules.d/thinbox"' \
		--customize-hook='"$THINBOX_VM_SELF" _customize "$1"' \
		"$SUITE" "$dir/rootfs" ${sources:+"$sources"} >"$dir/build.log" 2>&1 &
	# Waited for in the background so that INT/TERM reach our trap at once; the trap
	# stops mmdebstrap (which unmounts what it mounted) before deleting the tree.
	# Its chatter goes to build.log (kept with the image) and is shown if it fails.
	MMDEBSTRAP_PID=$!
	if ! wait "$MMDEBSTRAP_PID"; then
		MMDEBSTRAP_PID=""
		tail -n 40 "$dir/build.log" >&2
		die "mmdebstrap failed (the end of its log is above)"
	fi
	MMDEBSTRAP_PID=""
	BUILD_TIMES="mmdebstrap $(since "$t") s"

	local r=$dir/rootfs kver="" k
	for k in "$r"/boot/vmlinuz-*; do
		[[ -f $k ]] && kver=${k##*/vmlinuz-} # one kernel: linux-image-ARCH pulls exactly one
	done
	[[ -n $kver && -f $r/boot/initrd.img-$kver ]] || die "no kernel/initrd in the built rootfs"
	cp "$r/boot/vmlinuz-$kver" "$dir/vmlinuz"
	cp "$r/boot/initrd.img-$kver" "$dir/initrd.img"

	t=$EPOCHREALTIME
	truncate -s "$IMAGE_SIZE" "$dir/root.img"
	# Inode tables and journal are written now, so the guest's ext4lazyinit does not
	# spend TCG time zeroing them (and growing every overlay) after each boot.
	mkfs.ext4 -q -F -L thinbox-root -m 1 -E lazy_itable_init=0,lazy_journal_init=0 \
		-d "$r" "$dir/root.img" || die "mkfs.ext4 -d failed"
	BUILD_TIMES="$BUILD_TIMES, mkfs $(since "$t") s"
	safe_rm "$r"

	{
		printf 'ARCH=%q\nFLAVOUR=%q\nKERNEL=%q\nSUITE=%q\n' "$arch" "$flavour" "$kver" "$SUITE"
		printf 'PACKAGES=%q\nBUILT=%q\n' "$(guest_packages "$arch" "$flavour")" "$(date -u +%FT%TZ)"
	} >"$dir/image.env"
}

# mmdebstrap customize hook: runs on the host with the guest root as $1 (guest binaries
# run through chroot, under qemu-user for a foreign architecture).
recipe_customize() { # ROOT
	local r=$1 u name id home
	echo thinbox-vm >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tthinbox-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	printf 'nameserver %s\n' "$GUEST_DNS" >"$r/etc/resolv.conf"
	# Root comes from the kernel command line; the share is mounted by vm.sh over ssh.
	printf '# root is root= on the kernel command line; /mnt/host is mounted by vm.sh\n' >"$r/etc/fstab"
	mkdir -p "$r/mnt/host"

	# qemu user networking: fixed addresses, so no DHCP wait.
	mkdir -p "$r/etc/systemd/network"
	cat >"$r/etc/systemd/network/10-thinbox.network" <<-EOF
		[Match]
		Name=e*

		[Network]
		Address=$GUEST_ADDR
		Gateway=$GUEST_GW
		DNS=$GUEST_DNS
		LinkLocalAddressing=no
		IPv6AcceptRA=no
	EOF

	mkdir -p "$r/etc/ssh/sshd_config.d"
	cat >"$r/etc/ssh/sshd_config.d/thinbox.conf" <<-'EOF'
		# Key-only logins; many multiplexed sessions per connection (tests run commands
		# in parallel over one ControlMaster).
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UseDNS no
		MaxSessions 64
		MaxStartups 64:30:128
	EOF

	# Shutdown and reboot must stay short and bounded.
	mkdir -p "$r/etc/systemd/system.conf.d"
	printf '[Manager]\nDefaultTimeoutStopSec=15s\n' >"$r/etc/systemd/system.conf.d/thinbox.conf"

	# Users for the rootless tests: alice has a subordinate id range, bob has none
	# (useradd would give both one, so the files are written afterwards).
	# shellcheck disable=SC2086 # MASK_UNITS is a word list
	chroot "$r" /bin/sh -euc '
		useradd --create-home --uid 1000 --user-group --shell /bin/bash --password "*" alice
		useradd --create-home --uid 1001 --user-group --shell /bin/bash --password "*" bob
		systemctl enable systemd-networkd.service >/dev/null 2>&1
		systemctl set-default multi-user.target >/dev/null 2>&1
		systemctl mask "$@" >/dev/null 2>&1
	' sh $MASK_UNITS || die "customize: useradd/systemctl in the guest root failed"
	echo 'alice:100000:65536' >"$r/etc/subuid"
	echo 'alice:100000:65536' >"$r/etc/subgid"
	# Lingering users get their user manager at boot, without a login.
	mkdir -p "$r/var/lib/systemd/linger"
	touch "$r/var/lib/systemd/linger/alice" "$r/var/lib/systemd/linger/bob"

	for u in root:0:/root alice:1000:/home/alice bob:1001:/home/bob; do
		IFS=: read -r name id home <<<"$u"
		install -d -m 0700 -o "$id" -g "$id" "$r$home/.ssh"
		install -m 0600 -o "$id" -g "$id" "$THINBOX_VM_PUBKEY" "$r$home/.ssh/authorized_keys"
	done
	[[ -s $r/etc/ssh/ssh_host_ed25519_key ]] || die "customize: openssh-server left no host keys"
}
# ==== recipe end ====

recipe_hash() { # ARCH FLAVOUR
	{
		sed -n '/^# ==== recipe begin/,/^# ==== recipe end/p' "$SELF"
		printf 'arch=%s\npackages=%s\n' "$1" "$(guest_packages "$1" "$2")"
	} | sha256sum | cut -c1-16
}

image_dir() { # ARCH FLAVOUR
	local name=$1
	[[ $2 == base ]] || name=$1-$2
	printf '%s/%s-%s' "$CACHE_ROOT" "$name" "$(recipe_hash "$1" "$2")"
}

check_flavour() {
	local var=FLAVOUR_PACKAGES_$1
	[[ $1 =~ ^[a-z0-9]+$ && -n ${!var+set} ]] || die "unknown --flavour '$1' (base or bench)"
}

# Sets IMG to the cached image directory, building it first if missing.
ensure_image() { # ARCH FLAVOUR
	local arch=$1 flavour=$2 t0=$EPOCHREALTIME
	check_flavour "$flavour"
	IMG=$(image_dir "$arch" "$flavour")
	if [[ -f $IMG/image.env ]]; then
		log "image $(basename "$IMG") is cached ($(since "$t0") s)"
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "building the guest image needs root"
	local pk=(mmdebstrap e2fsprogs openssh-client qemu-utils)
	[[ $arch == "$(host_dpkg_arch)" ]] || pk+=(qemu-user-static binfmt-support arch-test)
	ensure_pkgs "${pk[@]}" "${QEMU_PKGS[@]}"
	[[ $arch == "$(host_dpkg_arch)" ]] || enable_binfmt "$arch"

	mkdir -p "$CACHE_ROOT"
	# One builder per key: concurrent `up`s wait for the first build and then use it.
	local lockfile lockfd
	lockfile="$CACHE_ROOT/.lock-$(basename "$IMG")"
	exec {lockfd}>"$lockfile"
	if ! flock -n "$lockfd"; then
		log "another process is building $(basename "$IMG"); waiting (at most 30 min)"
		flock -w 1800 "$lockfd" || die "timed out waiting for the image build lock $lockfile"
	fi
	if [[ -f $IMG/image.env ]]; then
		exec {lockfd}>&-
		log "image $(basename "$IMG") was built by another process"
		return 0
	fi
	# Leftovers of a build that was killed (we hold the lock, so none is running).
	local old
	for old in "$CACHE_ROOT/.build-$(basename "$IMG")".*; do
		[[ -e $old ]] && safe_rm "$old"
	done

	log "building $arch guest image $(basename "$IMG") (Debian $SUITE, flavour $flavour; takes minutes)"
	BUILD_TMP=$(mktemp -d "$CACHE_ROOT/.build-$(basename "$IMG").XXXXXX")
	local sources=$BUILD_TMP/sources.list
	if [[ -n ${THINBOX_VM_MIRROR:-} ]]; then
		if [[ -f $THINBOX_VM_MIRROR ]]; then cp "$THINBOX_VM_MIRROR" "$sources"; else echo "$THINBOX_VM_MIRROR" >"$sources"; fi
	else
		host_sources "$SUITE" | awk '!seen[$0]++' >"$sources"
	fi
	if [[ -s $sources ]]; then
		log "guest apt sources: $(paste -sd';' "$sources")"
	else
		# Not a Debian bookworm host (Ubuntu, say): let mmdebstrap use its own default,
		# which needs the Debian archive keys.
		log "no $SUITE entries in the host's apt sources; using mmdebstrap's default mirror"
		ensure_pkgs debian-archive-keyring gpg
		sources=""
	fi
	recipe_build "$BUILD_TMP" "$arch" "$flavour" "$sources"
	rm -f "$BUILD_TMP/sources.list"
	mv -T "$BUILD_TMP" "$IMG" || die "cannot move the built image into $IMG"
	BUILD_TMP=""
	exec {lockfd}>&-
	# shellcheck disable=SC1091
	log "built $IMG in $(since "$t0") s ($BUILD_TIMES; kernel $(. "$IMG/image.env" && echo "$KERNEL"), $(du -sh "$IMG/root.img" | cut -f1) used)"
}

# ---------------------------------------------------------------------------------------
# Running VMs. STATE_DIR/vm.env records what later subcommands need.
# ---------------------------------------------------------------------------------------

ssh_opts() { # sets SSH_OPTS from the loaded vm.env
	SSH_OPTS=(-F /dev/null -p "$PORT" -i "$KEY"
		-o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
		-o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR
		-o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=6
		-o "ControlPath=$SOCK_DIR/%r")
}

load_state() { # STATE_DIR; sets STATE and the vm.env variables, returns 1 if there is none
	STATE=$1
	# shellcheck disable=SC2034 # ARCH is informational
	ARCH="" PORT="" PID="" KEY="" SOCK_DIR="" SHARE="" IMG=""
	[[ -f $STATE/vm.env ]] || return 1
	# shellcheck disable=SC1091
	. "$STATE/vm.env"
	ssh_opts
}

# Is PID still the qemu of this state dir? (Guards against a recycled pid.)
qemu_alive() {
	[[ -n ${PID:-} ]] && kill -0 "$PID" 2>/dev/null &&
		tr '\0' '\n' 2>/dev/null <"/proc/$PID/cmdline" | grep -qxF -- "$STATE/qemu.pid"
}

serial_tail() {
	[[ -f $STATE/serial.log ]] || return 0
	echo "---- last lines of $STATE/serial.log ----" >&2
	tail -n "${1:-40}" "$STATE/serial.log" | tr -d '\r' | cat -v >&2
	echo "----" >&2
}

# Plain (non-multiplexed) ssh, for waits: a master opened on a guest that is shutting
# down would make the next commands hang until ServerAlive notices.
ssh_plain() { # USER CMD...
	local user=$1
	shift
	timeout -k 5 20 ssh "${SSH_OPTS[@]}" -o ControlMaster=no -o ConnectTimeout=5 -l "$user" -- 127.0.0.1 "$*" </dev/null
}

# Multiplexed ssh: the first call per user opens a master that lingers 10 min idle.
# ssh detaches the master with stdin/stdout/stderr on /dev/null, so `$(vm.sh ssh …)` is safe.
ssh_mux() { # TIMEOUT USER CMD...
	local tmo=$1 user=$2
	shift 2
	timeout -k 5 "$tmo" ssh "${SSH_OPTS[@]}" -o ControlMaster=auto -o ControlPersist=600 -l "$user" -- 127.0.0.1 "$*" </dev/null
}

# Does something on the forwarded port send an SSH banner within 3 s? (qemu accepts the
# TCP connection itself and drops it if nothing listens in the guest.)
sshd_banner() {
	local b
	# shellcheck disable=SC2016 # $1 is expanded by that bash
	b=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 4 <&3' sshd_banner "$PORT" 2>/dev/null) || true
	[[ $b == SSH- ]]
}

# Waits until ssh answers with a boot id other than $2 (so a reboot is not mistaken for
# the old system still shutting down). Fails early if qemu died.
wait_ssh() { # SECONDS [OLD_BOOT_ID]
	local deadline=$((SECONDS + $1)) old=${2:-} id
	while ((SECONDS < deadline)); do
		qemu_alive || {
			log "qemu exited before the guest answered on ssh"
			[[ -s $STATE/qemu.log ]] && cat "$STATE/qemu.log" >&2
			return 1
		}
		# Cheap probe first: sshd's banner costs no crypto, so it can be polled often;
		# a full login (1-2 s under TCG) is tried only once sshd answers.
		if sshd_banner; then
			# In the background + wait, so a TERM/INT to vm.sh is handled at once, not
			# after the attempt (bash runs traps only between foreground commands).
			ssh_plain root cat /proc/sys/kernel/random/boot_id >"$STATE/boot_id" 2>"$STATE/ssh-wait.log" &
			if wait $! && id=$(<"$STATE/boot_id") && [[ -n $id && $id != "$old" ]]; then
				return 0
			fi
		else
			echo "no ssh banner on 127.0.0.1:$PORT yet" >"$STATE/ssh-wait.log"
		fi
		sleep 0.5 &
		wait $!
	done
	log "no ssh answer from the guest within $1 s (VM_BOOT_TIMEOUT); last ssh error: $(tail -n1 "$STATE/ssh-wait.log" 2>/dev/null)"
	return 1
}

mount_share() {
	[[ -n $SHARE ]] || return 0
	ssh_mux 60 root "mkdir -p /mnt/host && { mountpoint -q /mnt/host || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host; }" ||
		die "mounting the 9p share on /mnt/host in the guest failed"
}

close_masters() {
	local s
	[[ -n $SOCK_DIR && -d $SOCK_DIR ]] || return 0
	for s in "$SOCK_DIR"/*; do
		[[ -S $s ]] || continue
		timeout 5 ssh -F /dev/null -o ControlPath="$s" -O exit dummy >/dev/null 2>&1 || true
		rm -f "$s"
	done
}

pick_port() {
	local p i
	for i in {1..100}; do
		# 20000-32767: below Linux's ephemeral range, so outgoing connections never hold it.
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		# A refused connect means nobody listens there now.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "found no free local TCP port for ssh forwarding"
}

cmd_up() {
	local state="" arch=amd64 share="" mem=1024 flavour=base
	while (($#)); do
		case $1 in
		--arch) arch=${2:?--arch needs a value} && shift ;;
		--share) share=${2:?--share needs a directory} && shift ;;
		--mem) mem=${2:?--mem needs MB} && shift ;;
		--flavour) flavour=${2:?--flavour needs a name} && shift ;;
		-*) die "up: unknown option $1" ;;
		*)
			[[ -z $state ]] || die "up: one STATE_DIR only"
			state=$1
			;;
		esac
		shift
	done
	[[ -n $state ]] || die "usage: vm.sh up STATE_DIR [--arch ARCH] [--share DIR] [--mem MB]"
	[[ $mem =~ ^[0-9]+$ ]] || die "--mem must be a number of MB"
	arch_runtime "$arch"
	if [[ -n $share ]]; then
		[[ -d $share ]] || die "--share $share is not a directory"
		share=$(readlink -f "$share")
	fi
	mkdir -p "$state"
	state=$(readlink -f "$state")
	if load_state "$state"; then
		qemu_alive && die "a VM is already running for $state (pid $PID); vm.sh down it first"
		do_down "$state" 1 0 # leftovers of a VM that died without `down`: watchdog, ssh sockets
	fi
	ensure_image "$arch" "$flavour"
	ensure_pkgs "${QEMU_PKGS[@]}"
	command -v "$QEMU" >/dev/null || die "$QEMU not found after installing ${QEMU_PKGS[*]}"

	local t0=$EPOCHREALTIME
	rm -f "$state"/{vm.env,overlay.qcow2,serial.log,qemu.log,qemu.pid,watchdog.pid,watchdog.log}
	local sockdir
	sockdir=$(mktemp -d "${TMPDIR:-/tmp}/thinbox-vm-ssh.XXXXXX")
	STATE=$state SOCK_DIR=$sockdir PID="" KEY=$IMG/id_ed25519 SHARE=$share
	write_env() {
		printf 'ARCH=%q\nIMG=%q\nKEY=%q\nSOCK_DIR=%q\nSHARE=%q\nPORT=%q\nPID=%q\n' \
			"$arch" "$IMG" "$KEY" "$sockdir" "$share" "${PORT:-}" "${PID:-}" >"$state/vm.env"
	}
	PORT="" && write_env
	UP_STATE=$state # from here on, a failure tears the VM down

	qemu-img create -q -f qcow2 -F raw -b "$IMG/root.img" "$state/overlay.qcow2" ||
		die "qemu-img create of the overlay failed"

	local accel accel_args
	accel=$(choose_accel "$arch")
	case $accel in
	tcg) accel_args=(-accel "tcg,thread=multi,tb-size=256" "${QEMU_CPU_TCG[@]}") ;;
	kvm) accel_args=(-accel kvm -cpu host) ;;
	*) die "VM_ACCEL must be tcg or kvm, not '$accel'" ;;
	esac
	local cmdline="root=/dev/vda rw console=$CONSOLE systemd.unified_cgroup_hierarchy=1 net.ifnames=0 mitigations=off ${VM_CMDLINE_EXTRA:-}"
	local q=("$QEMU" -name thinbox-vm "${QEMU_MACHINE[@]}" "${accel_args[@]}" -smp 2 -m "$mem"
		-nodefaults -no-user-config -display none
		-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$cmdline"
		-drive "file=$(qesc "$state/overlay.qcow2"),format=qcow2,if=none,id=root,cache=unsafe,discard=unmap"
		-device "virtio-blk-pci,drive=root"
		-device virtio-rng-pci
		-chardev "file,id=serial0,path=$(qesc "$state/serial.log")" -serial chardev:serial0
		-daemonize -pidfile "$state/qemu.pid")
	[[ -z $share ]] || q+=(-virtfs "local,path=$(qesc "$share"),mount_tag=host,security_model=none,id=host")

	# The port is only known free when checked; if qemu loses the race it fails to set up
	# the forward and we try another.
	local attempt
	for attempt in 1 2 3 4 5; do
		PORT=$(pick_port)
		# stdout/stderr to a file: the daemonized qemu must not hold the caller's pipes.
		if "${q[@]}" -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$PORT-:22" \
			-device "virtio-net-pci,netdev=net0,romfile=" </dev/null >"$state/qemu.log" 2>&1; then
			break
		fi
		grep -qi 'forward' "$state/qemu.log" && ((attempt < 5)) && continue
		cat "$state/qemu.log" >&2
		die "$QEMU failed to start (its output is above)"
	done
	PID=$(cat "$state/qemu.pid" 2>/dev/null) || die "qemu wrote no pidfile"
	write_env
	ssh_opts

	# Watchdog: kills qemu after VM_MAX_LIFETIME even if nobody calls down. setsid and
	# /dev/null stdio, so it neither gets the caller's Ctrl-C nor keeps a $(…) pipe open.
	setsid "$SELF" _watchdog "$state" "$PID" "$MAX_LIFETIME" </dev/null >/dev/null 2>&1 &

	log "qemu $PID started ($arch, $accel, ${mem} MB, ssh on 127.0.0.1:$PORT); waiting for ssh (at most ${BOOT_TIMEOUT} s)"
	if ! wait_ssh "$BOOT_TIMEOUT"; then
		serial_tail 40
		die "the $arch guest did not come up (see $state/serial.log)"
	fi
	ssh_mux 30 root true || die "cannot open the ssh control connection"
	mount_share
	UP_STATE=""
	log "guest up in $(since "$t0") s (boot to ssh)"
}

cmd_watchdog() { # STATE PID LIFETIME (internal)
	STATE=$1 PID=$2
	local life=$3 end
	cd /
	echo $$ >"$STATE/watchdog.pid"
	end=$((SECONDS + life))
	while qemu_alive; do
		if ((SECONDS >= end)); then
			echo "watchdog: VM_MAX_LIFETIME=${life}s reached, killing qemu $PID" >>"$STATE/watchdog.log" 2>/dev/null || true
			kill -TERM "$PID" 2>/dev/null || true
			sleep 5
			qemu_alive && kill -KILL "$PID" 2>/dev/null
			exit 0
		fi
		sleep 2
	done
}

need_running() { # STATE_DIR
	[[ -n $1 ]] || die "a STATE_DIR is required"
	load_state "$(readlink -f "$1")" || die "no VM state in $1 (vm.sh up it first)"
	qemu_alive || die "the VM of $1 is not running"
}

cmd_ssh() {
	local state="" user=root tty=0 tmo=${VM_SSH_TIMEOUT:-0}
	while (($#)); do
		case $1 in
		--user) user=${2:?--user needs a name} && shift ;;
		--tty) tty=1 ;;
		--timeout) tmo=${2:?--timeout needs seconds} && shift ;;
		--) shift && break ;;
		-*) die "ssh: unknown option $1" ;;
		*)
			[[ -z $state ]] || die "ssh: put the command after --"
			state=$1
			;;
		esac
		shift
	done
	need_running "$state"
	local args=("${SSH_OPTS[@]}" -o ControlMaster=auto -o ControlPersist=600 -l "$user")
	if (($# == 0)); then
		args+=(-t) # no command: an interactive shell
	elif ((tty)); then
		args+=(-t)
	else
		args+=(-T)
	fi
	# The remote side gets one shell command line: quote every argument. The remote shell
	# stays the command's parent (no exec), so a command killed by a signal exits 128+N
	# as it would locally instead of ssh's 255; the shell's own stderr goes to /dev/null
	# so its "Killed" notice does not land in the command's stderr.
	local remote=""
	(($#)) && remote="exec 3>&2 2>/dev/null; $(printf '%q ' "$@") 2>&3 3>&-; exit \$?"
	# `--` before the host: nothing after it is parsed as an ssh option.
	if ((tmo > 0)); then
		exec timeout -k 5 "$tmo" ssh "${args[@]}" -- 127.0.0.1 ${remote:+"$remote"}
	fi
	exec ssh "${args[@]}" -- 127.0.0.1 ${remote:+"$remote"}
}

cmd_reboot() {
	[[ $# == 1 ]] || die "usage: vm.sh reboot STATE_DIR"
	need_running "$1"
	local t0=$EPOCHREALTIME old
	old=$(ssh_mux 30 root cat /proc/sys/kernel/random/boot_id) || die "reboot: cannot reach the guest"
	# The reboot ends the session under our feet; its exit status means nothing.
	ssh_mux 30 root systemctl reboot >/dev/null 2>&1 || true
	close_masters
	if ! wait_ssh "$BOOT_TIMEOUT" "$old"; then
		serial_tail 40
		die "the guest did not come back after reboot"
	fi
	ssh_mux 30 root true || die "cannot reopen the ssh control connection after reboot"
	mount_share
	log "guest rebooted in $(since "$t0") s"
}

# Idempotent and trap-safe: every step tolerates a half-started or already stopped VM.
do_down() { # STATE_DIR KEEP GRACEFUL
	local state=$1 keep=$2 graceful=${3:-1} i wait=0
	[[ -d $state ]] || return 0
	state=$(readlink -f "$state")
	if load_state "$state"; then
		if qemu_alive && ((graceful)); then
			# A clean poweroff (bounded). Wait long only if the guest took the order;
			# a guest that cannot be reached (still booting, hung) is killed at once.
			if timeout 10 ssh "${SSH_OPTS[@]}" -o ControlMaster=no -o ConnectTimeout=5 -l root -- 127.0.0.1 \
				systemctl poweroff </dev/null >/dev/null 2>&1; then
				wait=40 # half-seconds
			else
				wait=4 # the order may have been taken just as the connection dropped
			fi
			for ((i = 0; i < wait; i++)); do
				qemu_alive || break
				sleep 0.5
			done
			qemu_alive && log "qemu $PID still running after poweroff; killing it"
		fi
		if qemu_alive; then
			kill -TERM "$PID" 2>/dev/null || true
			for ((i = 0; i < 10; i++)); do
				qemu_alive || break
				sleep 0.5
			done
			qemu_alive && kill -KILL "$PID" 2>/dev/null
		fi
		local wd
		wd=$(cat "$state/watchdog.pid" 2>/dev/null || true)
		if [[ -n $wd ]] && tr '\0' '\n' 2>/dev/null <"/proc/$wd/cmdline" | grep -qx _watchdog; then
			# The watchdog leads its own process group (setsid): take its sleep along.
			kill -TERM -- "-$wd" 2>/dev/null || kill -TERM "$wd" 2>/dev/null || true
		fi
		close_masters
		if [[ $SOCK_DIR == */thinbox-vm-ssh.* && -d $SOCK_DIR ]]; then
			rm -rf "$SOCK_DIR"
		fi
		rm -f "$state/watchdog.pid"
	fi
	if [[ $keep == 0 ]]; then
		rm -rf --one-file-system "$state"
	fi
}

cmd_down() {
	local state="" keep=0
	while (($#)); do
		case $1 in
		--keep) keep=1 ;;
		-*) die "down: unknown option $1" ;;
		*) state=$1 ;;
		esac
		shift
	done
	[[ -n $state ]] || die "usage: vm.sh down STATE_DIR [--keep]"
	do_down "$state" "$keep" 1
}

cmd_build() {
	local arch=amd64 flavour=base
	while (($#)); do
		case $1 in
		--arch) arch=${2:?--arch needs a value} && shift ;;
		--flavour) flavour=${2:?--flavour needs a name} && shift ;;
		*) die "build: unknown argument $1" ;;
		esac
		shift
	done
	arch_runtime "$arch"
	ensure_image "$arch" "$flavour"
	echo "$IMG"
}

# Cached images are never deleted automatically: another checkout may be using another
# recipe version. This removes those that are not this vm.sh's and that no running
# process (qemu) refers to.
cmd_prune() {
	local a f d
	declare -A keep=()
	for a in amd64 arm64; do
		for f in base bench; do
			keep[$(image_dir "$a" "$f")]=1
		done
	done
	[[ -d $CACHE_ROOT ]] || return 0
	for d in "$CACHE_ROOT"/*/; do
		d=${d%/}
		[[ -z ${keep[$d]:-} && -f $d/image.env ]] || continue
		if grep -qsF -- "$d/" /proc/[0-9]*/cmdline; then
			log "keeping $d: in use"
			continue
		fi
		log "removing $d ($(du -sh "$d" | cut -f1))"
		safe_rm "$d"
		rm -f "$CACHE_ROOT/.lock-${d##*/}"
	done
}

sub=${1:-}
(($#)) && shift
case $sub in
build) cmd_build "$@" ;;
up) cmd_up "$@" ;;
ssh) cmd_ssh "$@" ;;
reboot) cmd_reboot "$@" ;;
down) cmd_down "$@" ;;
prune) cmd_prune ;;
_customize) recipe_customize "$@" ;;
_watchdog) cmd_watchdog "$@" ;;
-h | --help | help | "") usage ;;
*) die "unknown subcommand '$sub' (build, up, ssh, reboot, down, prune)" ;;
esac
