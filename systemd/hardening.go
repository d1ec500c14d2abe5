package systemd

import (
	"path/filepath"
	"strings"
)

// ServiceContainer is what decides a container service's hardening: the flags that
// would make one of systemd's sandboxing options take something from the container.
type ServiceContainer struct {
	// User: the unit runs under the user's own service manager (rootless).
	User bool
	// UserNS: root's container gets a user namespace (--userns=auto). A rootless
	// container always has one.
	UserNS bool
	// Privileged, CapAdd and Seccomp are --privileged, --cap-add (NET_ADMIN,
	// cap_net_admin, ALL) and --seccomp ("" is thinbox's default profile) as given.
	Privileged bool
	CapAdd     []string
	Seccomp    string
	// Volumes are --volume as given, SRC:DST[:MODE]; only SRC matters here.
	Volumes []string
}

// ServiceHardening is the [Service] hardening of a container's unit: the device policy,
// and the sandboxing options that take nothing from thinbox or from this container.
//
// What ExecStart must keep: thinbox runs as root (or as the user, with the setuid
// newuidmap), creates every kind of namespace, mounts the container's overlay, proc,
// sysfs, devpts, mqueue and cgroup2 inside the container's mount namespace, sets up lo,
// installs the payload's own capability set, no_new_privs and seccomp filter, writes
// /var/lib/thinbox and /run/thinbox (or the --root/--runroot given) and reads its
// cgroup. What the payload must keep: whatever its flags give it. Whatever systemd
// sets on the unit is inherited by the payload (a seccomp filter, the bounding set,
// the service's mount namespace, of which volumes are bind mounts), so each option
// below is either harmless to any container, or left out for the containers whose
// flags it would contradict.
//
// Left out for every container:
//   - NoNewPrivileges, and in a user manager every option that implies it (any seccomp
//     option): the setuid newuidmap of rootless containers and payloads run with
//     --allow-new-privileges need setuid and file capabilities.
//   - SystemCallArchitectures=native: armhf images on arm64 boards make compat calls.
//   - SystemCallFilter, RestrictAddressFamilies, RestrictSUIDSGID,
//     MemoryDenyWriteExecute: inherited by the payload, which may need any system call
//     (--seccomp=unconfined), socket family, setuid file (a package install) or JIT.
//   - LockPersonality: denies personality(PER_LINUX32), which thinbox's default profile
//     allows (as Docker's does) for `linux32` in 32-bit images.
//   - ProtectClock: besides CAP_SYS_TIME its filter denies the read-only adjtimex(2)
//     that any container may call (ntp_gettime, node_exporter's timex collector); the
//     bounding set below drops CAP_SYS_TIME and CAP_WAKE_ALARM instead.
//   - ProtectHostname: its filter denies sethostname(2) in the container's own UTS
//     namespace, where thinbox sets the container's hostname.
//   - RestrictNamespaces, PrivateUsers, PrivateNetwork, PrivateIPC: thinbox creates the
//     namespaces itself; --net=host shares the host's network.
//   - PrivateDevices: drops CAP_MKNOD, one of the default capabilities; the device
//     policy below already allows only the standard devices.
//   - PrivateTmp, ProtectHome, ProtectSystem: volumes, --env-file, --seccomp files, the
//     store and thinbox itself may be anywhere, /home and /tmp included.
//   - ProcSubset=pid: thinbox reads /proc/sys and the payload may bind-mount /proc.
//   - UMask=0077: the payload inherits it; files it writes to volumes would become
//     private, unlike Docker's 0022.
//   - IPAddressDeny: the payload's network is its own business.
//   - In a user manager, everything below but KeyringMode: an unprivileged manager gets
//     a mount namespace only inside a user namespace (PrivateUsers, where the setuid
//     newuidmap is no longer root), a seccomp filter only with no_new_privs, and can't
//     shrink the bounding set; and the user's processes hold no capabilities anyway.
//
// A volume is a recursive bind mount of the host path as the service sees it, so an
// option that hides or write-protects a path is left out when a volume's source is
// that path, under it or above it (-v /:/host). The check is on the paths as written:
// a symlink resolves when the service starts, not now, so resolving it here would
// promise nothing.
func ServiceHardening(c ServiceContainer) [][2]string {
	out := append(DeviceDirectives(),
		// The service's own session keyring (systemd's default for system services, not
		// for user services); thinbox's default profile denies keyctl to the payload.
		[2]string{"KeyringMode", "private"})
	if c.User {
		return out
	}
	for _, o := range serviceOptions {
		if o.allowed(c) {
			out = append(out, [2]string{o.key, o.value})
		}
	}
	var drop []string
	for _, cp := range unusedCaps {
		if !c.mayHold(cp) {
			drop = append(drop, "CAP_"+cp)
		}
	}
	if len(drop) > 0 {
		out = append(out, [2]string{"CapabilityBoundingSet", "~" + strings.Join(drop, " ")})
	}
	return out
}

// serviceOption is a sandboxing option and what would make it take something from a
// container.
type serviceOption struct {
	key, value string
	// paths are the host paths the option hides or makes read-only in the service's
	// mount namespace.
	paths []string
	// caps: the option filters the system calls or drops the capability of these; a
	// container that may hold one keeps them.
	caps []string
	// proc: the option covers files in /proc. A user namespace may mount its own proc
	// only where the kernel sees a proc with nothing covered (mount_too_revealing);
	// that today's systemd leaves one behind its chroot is its own detail.
	proc bool
	// defaultSeccomp: the option's filter denies what thinbox's default profile denies
	// too, and more than another profile may.
	defaultSeccomp bool
}

// serviceOptions are the options of system services, each harmless to the containers
// it is not left out for.
var serviceOptions = []serviceOption{
	// thinbox mounts nothing the host must see: the container's mounts live in its own
	// namespace, the idmapped image of --userns=auto is detached once cloned.
	{key: "PrivateMounts", value: "yes"},
	// /proc/sys, /sys and friends read-only for thinbox only: the container mounts its
	// own proc and sysfs (a --privileged one writable), which these don't cover.
	{key: "ProtectKernelTunables", value: "yes", paths: []string{"/proc", "/sys"}, proc: true},
	// Module loading needs CAP_SYS_MODULE, which neither thinbox nor a container without
	// it uses; the kernel's own module autoloading is not the caller's.
	{key: "ProtectKernelModules", value: "yes", paths: []string{"/lib/modules", "/usr/lib/modules"}, caps: []string{"SYS_MODULE"}},
	// syslog(2) is for CAP_SYSLOG (or CAP_SYS_ADMIN), and denied by thinbox's default
	// profile without them; /dev/kmsg is outside the device policy anyway.
	{key: "ProtectKernelLogs", value: "yes", paths: []string{"/proc/kmsg", "/dev/kmsg"}, caps: []string{"SYSLOG", "SYS_ADMIN"}, proc: true, defaultSeccomp: true},
	// thinbox only reads its cgroup (systemd applies the limits); the container mounts
	// its own cgroup2 in its cgroup namespace.
	{key: "ProtectControlGroups", value: "yes", paths: []string{"/sys/fs/cgroup"}},
	// thinbox is root with every capability (CAP_SYS_PTRACE included) and sees every
	// process; the container mounts its own proc.
	{key: "ProtectProc", value: "invisible", paths: []string{"/proc"}},
	// Realtime scheduling needs CAP_SYS_NICE when RLIMIT_RTPRIO is 0, as it is for
	// services and thinbox leaves it.
	{key: "RestrictRealtime", value: "yes", caps: []string{"SYS_NICE"}},
}

func (o serviceOption) allowed(c ServiceContainer) bool {
	if o.proc && c.UserNS {
		return false
	}
	if o.defaultSeccomp && (c.Seccomp != "" || c.Privileged) {
		return false
	}
	for _, cp := range o.caps {
		if c.mayHold(cp) {
			return false
		}
	}
	for _, v := range c.Volumes {
		src, _, _ := strings.Cut(v, ":")
		for _, p := range o.paths {
			if overlaps(src, p) {
				return false
			}
		}
	}
	return true
}

// unusedCaps are the capabilities thinbox never uses, in ExecStart or ExecStopPost, and
// that are not among a container's defaults: the unit's bounding set drops those the
// container is not given. Kept: what thinbox needs (SYS_ADMIN, NET_ADMIN, SYS_PTRACE,
// SYS_RESOURCE, DAC_READ_SEARCH, ...) and the default container set, which thinbox
// hands on (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP).
var unusedCaps = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"IPC_LOCK", "IPC_OWNER", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE",
	"NET_BROADCAST", "PERFMON", "SYSLOG", "SYS_BOOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_RAWIO", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// mayHold reports whether the container may be given capability cp ("SYS_TIME"): by
// --privileged, --cap-add ALL or naming it. --cap-drop is ignored, which errs on the
// side of the container.
func (c ServiceContainer) mayHold(cp string) bool {
	if c.Privileged {
		return true
	}
	for _, a := range c.CapAdd {
		n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(a)), "CAP_")
		if n == "ALL" || n == cp {
			return true
		}
	}
	return false
}

// overlaps reports whether a is b, or one is under the other.
func overlaps(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	return a == b || within(a, b) || within(b, a)
}

func within(p, dir string) bool {
	return dir == "/" || strings.HasPrefix(p, dir+"/")
}
