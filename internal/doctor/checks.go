package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/thinbox/thinbox/internal/humanize"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kernel versions that matter to thinbox, with the reason.
var (
	// The launcher always unshares a cgroup namespace (CLONE_NEWCGROUP, Linux 4.6).
	minKernel = [2]int{4, 6}
	// openat2(RESOLVE_IN_ROOT) (Linux 5.6) confines image unpacking in the kernel; older
	// kernels fall back to resolving each path in user space, which is slower.
	goodKernel = [2]int{5, 6}
)

func checkKernel(_ context.Context, e *Env) Result {
	const name = "kernel"
	rel, machine, err := e.Probe.Uname()
	if err != nil {
		return fail(name, "uname: "+err.Error(), "")
	}
	v, parsed := kernelVersion(rel)
	detail := fmt.Sprintf("Linux %s on %s", rel, machine)
	switch {
	case !parsed:
		return warn(name, detail+": cannot parse the version", "")
	case less(v, minKernel):
		return fail(name, detail+fmt.Sprintf(": older than %d.%d, which added the cgroup namespace every container gets", minKernel[0], minKernel[1]),
			"upgrade the kernel (Debian 12 ships 6.1, Raspberry Pi OS 6.6)")
	case less(v, goodKernel):
		return warn(name, detail+fmt.Sprintf(": older than %d.%d, so no openat2; image import falls back to slower user-space path resolution", goodKernel[0], goodKernel[1]),
			"upgrade the kernel to 5.6 or newer")
	}
	return ok(name, detail)
}

// kernelVersion takes major.minor from a release string: "6.1.0-57-amd64", "6.6.51+rpt-rpi-v8".
func kernelVersion(rel string) ([2]int, bool) {
	var v [2]int
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i := 0; i < 2; i++ {
		digits := parts[i]
		if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits = digits[:j]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func less(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

func checkNamespaces(ctx context.Context, e *Env) Result {
	const name = "namespaces"
	var have, missing []string
	for _, ns := range append(append([]Namespace{}, Required...), UserNS) {
		if err := e.Probe.Unshare(ctx, ns); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", ns, err))
		} else {
			have = append(have, string(ns))
		}
	}
	if len(missing) == 0 {
		return ok(name, "created "+strings.Join(have, ", "))
	}
	required := false
	for _, m := range missing {
		if !strings.HasPrefix(m, string(UserNS)+" ") {
			required = true
		}
	}
	detail := "cannot create " + strings.Join(missing, ", ")
	if len(have) > 0 {
		detail += "; created " + strings.Join(have, ", ")
	}
	if !required {
		// Rootful containers get no user namespace; only rootless ones need it.
		return warn(name, detail+": rootless containers need user namespaces", "see the userns sysctls line")
	}
	if e.Euid != 0 {
		return fail(name, detail, "run thinbox (and this check) as root: containers need CAP_SYS_ADMIN")
	}
	return fail(name, detail, "the kernel needs CONFIG_PID_NS, CONFIG_UTS_NS, CONFIG_IPC_NS, CONFIG_NET_NS and CONFIG_CGROUPS; inside a container, run thinbox's container privileged")
}

// mount is one line of /proc/self/mountinfo, as far as doctor needs it.
type mount struct {
	point, fstype, source string
}

func (e *Env) mounts() ([]mount, error) {
	f, err := os.Open(e.path("/proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, mount{point: unescapeMount(fields[4]), fstype: fields[sep+1], source: fields[sep+2]})
	}
	return out, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes (\040 is a space) in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fsAt is the type of the filesystem mounted last (the visible one) at point.
func fsAt(ms []mount, point string) string {
	t := ""
	for _, m := range ms {
		if m.point == point {
			t = m.fstype
		}
	}
	return t
}

const cgroupFix = "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line (the default since systemd 247 and Debian 11)"

func checkCgroup(_ context.Context, e *Env) Result {
	const name = "cgroup v2"
	ms, err := e.mounts()
	if err != nil {
		return warn(name, "cannot read /proc/self/mountinfo: "+err.Error(), "")
	}
	switch fsAt(ms, "/sys/fs/cgroup") {
	case "cgroup2":
		return ok(name, "unified hierarchy at /sys/fs/cgroup")
	case "tmpfs":
		detail := "cgroup v1 hierarchy at /sys/fs/cgroup"
		if fsAt(ms, "/sys/fs/cgroup/unified") == "cgroup2" {
			held, _ := e.read("/sys/fs/cgroup/unified/cgroup.controllers")
			detail = "hybrid hierarchy: the controllers are bound to cgroup v1; /sys/fs/cgroup/unified holds " + orNone(held)
		}
		return warn(name, detail+"; --memory, --cpu, --pids and --io-weight cannot be applied", cgroupFix)
	case "":
		return warn(name, "no cgroup filesystem at /sys/fs/cgroup; limits cannot be applied", "mount -t cgroup2 none /sys/fs/cgroup, or "+cgroupFix)
	default:
		return warn(name, "/sys/fs/cgroup is "+fsAt(ms, "/sys/fs/cgroup")+", not cgroup2", cgroupFix)
	}
}

// wantControllers are what the limit flags need, in the order they are reported.
var wantControllers = []string{"memory", "cpu", "io", "pids", "cpuset"}

func checkControllers(_ context.Context, e *Env) Result {
	const name = "cgroup controllers"
	avail, err := e.read("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return warn(name, "no /sys/fs/cgroup/cgroup.controllers (no cgroup v2): limits cannot be applied", cgroupFix)
	}
	enabled, _ := e.read("/sys/fs/cgroup/cgroup.subtree_control")
	have := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		have[c] = true
	}
	var missing []string
	for _, c := range wantControllers {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	detail := fmt.Sprintf("available at the root: %s; enabled for children: %s", orNone(avail), orNone(enabled))
	if len(missing) == 0 {
		return ok(name, detail)
	}
	// The hint of the most important missing one: memory first (a Raspberry Pi's
	// kernel turns it off), then in wantControllers order.
	return warn(name, detail+"; missing "+strings.Join(missing, ", ")+" (the flags that need them fail)",
		e.Probe.ControllerHint(missing[0]))
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}

func checkSystemd(ctx context.Context, e *Env) Result {
	const name = "systemd"
	if !e.exists("/run/systemd/system") {
		pid1, _ := e.read("/proc/1/comm")
		if pid1 == "" {
			pid1 = "unknown"
		}
		return warn(name, "PID 1 is "+pid1+", not systemd: foreground containers work; --unit services and limits do not",
			"boot with systemd as init to use --unit and limits")
	}
	v, err := e.Probe.Systemd(ctx)
	if err != nil {
		return fail(name, "systemd is PID 1 but does not answer on its bus: "+err.Error(),
			"check `systemctl status` and dbus.service; thinbox talks to /run/systemd/private as root, the system bus otherwise")
	}
	var old []string
	for flag, min := range e.MinSystemd {
		if v < min {
			old = append(old, fmt.Sprintf("--%s needs %d", flag, min))
		}
	}
	sort.Strings(old)
	detail := fmt.Sprintf("systemd %d, bus reachable", v)
	if len(old) > 0 {
		return warn(name, detail+"; too old for "+strings.Join(old, ", "), "upgrade systemd or leave those flags out")
	}
	return ok(name, detail)
}

func checkOverlay(ctx context.Context, e *Env) Result {
	const name = "overlayfs"
	fss, _ := e.read("/proc/filesystems")
	listed := false
	for _, l := range strings.Split(fss, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == "overlay" {
			listed = true
		}
	}
	if e.Euid != 0 {
		if listed {
			return ok(name, "overlay is in /proc/filesystems (run as root to test a mount)")
		}
		return warn(name, "overlay is not in /proc/filesystems (it may be a module not loaded yet)", "run `thinbox doctor` as root to test a mount, or modprobe overlay")
	}
	// A real mount on the store's filesystem: that is where the upper layers go, and
	// overlayfs refuses some upper filesystems (overlayfs itself, NFS).
	dir := nearestDir(e, e.Store)
	if err := e.Probe.MountOverlay(ctx, dir); err != nil {
		fix := "modprobe overlay (CONFIG_OVERLAY_FS)"
		if listed {
			fix = "put " + e.Store + " (--root) on a filesystem overlayfs accepts as an upper layer, such as ext4, xfs, btrfs or tmpfs"
		}
		return fail(name, fmt.Sprintf("mounting an overlay with its upper layer in %s failed: %v", dir, err), fix)
	}
	return ok(name, "mounted a test overlay with its upper layer in "+dir)
}

// nearestDir is p or its nearest existing parent, as seen from the root.
func nearestDir(e *Env, p string) string {
	for p != "/" && p != "." && p != "" {
		if fi, err := e.stat(p); err == nil && fi.IsDir() {
			return p
		}
		p = filepath.Dir(p)
	}
	return "/"
}

func checkStore(_ context.Context, e *Env) Result {
	const name = "store"
	dir := nearestDir(e, e.Store)
	free, err := e.Probe.Free(e.path(dir))
	if err != nil {
		return warn(name, "statfs "+dir+": "+err.Error(), "")
	}
	where := e.Store
	if dir != e.Store {
		where = e.Store + " (not created yet; on the filesystem of " + dir + ")"
	}
	detail := fmt.Sprintf("%s: %s free", where, humanize.Bytes(free))
	if free < GiB {
		return warn(name, detail+", less than 1 GiB", "free space there, or pass --root (THINBOX_ROOT) a larger filesystem")
	}
	if fi, err := e.stat(e.Store); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return warn(name, detail+fmt.Sprintf("; mode %04o lets other users into the images", fi.Mode().Perm()), "chmod 0700 "+e.Store)
	}
	return ok(name, detail)
}

// subidRange is one line of /etc/subuid or /etc/subgid.
type subidRange struct {
	owner        string // a name or a numeric uid
	start, count uint64
}

func (e *Env) subids(file string) ([]subidRange, error) {
	s, err := e.read(file)
	if err != nil {
		return nil, err
	}
	var out []subidRange
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, subidRange{f[0], start, count})
	}
	return out, nil
}

// uidOf looks a user up in the root's /etc/passwd.
func (e *Env) uidOf(user string) string {
	s, _ := e.read("/etc/passwd")
	for _, l := range strings.Split(s, "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[0] == user {
			return f[2]
		}
	}
	return ""
}

// Rootless containers map 65536 ids, as useradd allocates them by default.
const wantSubids = 65536

func checkSubids(_ context.Context, e *Env) Result {
	const name = "subordinate ids"
	if e.User == "" || e.User == "root" {
		return ok(name, "checking for root, whose containers need no subordinate ids (run with sudo to check your user)")
	}
	uid := e.uidOf(e.User)
	var parts, short []string
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		rs, err := e.subids(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return warn(name, "read "+file+": "+err.Error(), "")
		}
		var total uint64
		var spans []string
		for _, r := range rs {
			if r.owner == e.User || (uid != "" && r.owner == uid) {
				total += r.count
				spans = append(spans, fmt.Sprintf("%d-%d", r.start, r.start+r.count-1))
			}
		}
		if total < wantSubids {
			short = append(short, file)
		}
		if len(spans) == 0 {
			spans = []string{"none"}
		}
		parts = append(parts, fmt.Sprintf("%s %s", file, strings.Join(spans, ",")))
	}
	detail := e.User + ": " + strings.Join(parts, "; ")
	if len(short) > 0 {
		return warn(name, detail+fmt.Sprintf("; rootless containers need %d ids in %s", wantSubids, strings.Join(short, " and ")),
			fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (pick a range no other user has)", e.User))
	}
	return ok(name, detail)
}

// binDirs are where newuidmap may be, looked up under the root rather than $PATH so a
// fake root is searched the same way.
var binDirs = []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"}

func checkNewuidmap(_ context.Context, e *Env) Result {
	const name = "newuidmap"
	var parts []string
	var bad []string
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		path := ""
		for _, d := range binDirs {
			if fi, err := e.stat(d + "/" + tool); err == nil && fi.Mode().IsRegular() {
				path = d + "/" + tool
				break
			}
		}
		if path == "" {
			return warn(name, tool+" not found; rootless containers cannot map more than one id", "apt install uidmap")
		}
		fi, _ := e.stat(path)
		how := ""
		if fi.Mode()&os.ModeSetuid != 0 && ownerUID(fi) == 0 {
			how = "setuid root"
		} else if caps, _ := e.Probe.FileCaps(e.path(path)); caps {
			how = "file capabilities"
		}
		if how == "" {
			bad = append(bad, path)
			how = "neither setuid root nor file capabilities"
		}
		parts = append(parts, path+" "+how)
	}
	if len(bad) > 0 {
		return warn(name, strings.Join(parts, "; "), "chmod u+s "+strings.Join(bad, " ")+", or reinstall uidmap")
	}
	return ok(name, strings.Join(parts, "; "))
}

func checkUserns(_ context.Context, e *Env) Result {
	const name = "userns sysctls"
	var parts, problems, fixes []string
	if v, found := e.sysctl("kernel.unprivileged_userns_clone"); found {
		parts = append(parts, fmt.Sprintf("kernel.unprivileged_userns_clone=%d", v))
		if v == 0 {
			problems = append(problems, "unprivileged user namespaces are off")
			fixes = append(fixes, "echo kernel.unprivileged_userns_clone=1 > /etc/sysctl.d/50-thinbox.conf && sysctl --system")
		}
	}
	if v, found := e.sysctl("user.max_user_namespaces"); found {
		parts = append(parts, fmt.Sprintf("user.max_user_namespaces=%d", v))
		if v == 0 {
			problems = append(problems, "no user namespaces may be created")
			fixes = append(fixes, "echo user.max_user_namespaces=28633 > /etc/sysctl.d/50-thinbox.conf && sysctl --system")
		}
	}
	if v, found := e.sysctl("kernel.apparmor_restrict_unprivileged_userns"); found {
		parts = append(parts, fmt.Sprintf("kernel.apparmor_restrict_unprivileged_userns=%d", v))
		if v != 0 {
			loaded, known := e.apparmorProfile("thinbox")
			switch {
			case loaded:
				parts = append(parts, "AppArmor profile thinbox loaded")
			case !known:
				problems = append(problems, "AppArmor restricts user namespaces and the loaded profiles cannot be read")
				fixes = append(fixes, "run as root to check for the thinbox profile")
			default:
				problems = append(problems, "AppArmor restricts user namespaces and the thinbox profile is not loaded")
				fixes = append(fixes, "apparmor_parser -r /etc/apparmor.d/thinbox (installed by the thinbox package where AppArmor 4 is present)")
			}
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no user namespace sysctls restrict thinbox")
	}
	detail := strings.Join(parts, ", ")
	if len(problems) > 0 {
		return warn(name, detail+": "+strings.Join(problems, "; ")+" (rootless containers need them)", strings.Join(fixes, "; "))
	}
	return ok(name, detail)
}

// apparmorProfile reports whether a profile of that name is loaded, and whether the
// list could be read at all (it is root's).
func (e *Env) apparmorProfile(profile string) (loaded, known bool) {
	s, err := e.read("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		return false, false
	}
	for _, l := range strings.Split(s, "\n") {
		// "thinbox (unconfined)"
		if n, _, _ := strings.Cut(l, " ("); n == profile {
			return true, true
		}
	}
	return false, true
}

// kernel64 maps a 64-bit kernel's machine to the dpkg architectures of a 32-bit userland
// it can run, and the 64-bit one thinbox should be installed as.
var kernel64 = map[string]struct {
	native string
	compat []string
}{
	"aarch64": {"arm64", []string{"armhf", "armel"}},
	"x86_64":  {"amd64", []string{"i386"}},
}

func checkArch(ctx context.Context, e *Env) Result {
	const name = "architecture"
	_, machine, err := e.Probe.Uname()
	if err != nil {
		return warn(name, "uname: "+err.Error(), "")
	}
	arch, err := e.Probe.DpkgArch(ctx)
	if err != nil {
		return warn(name, "dpkg --print-architecture: "+err.Error(), "")
	}
	if arch == "" {
		return ok(name, "kernel "+machine+" (no dpkg to compare the userland with)")
	}
	detail := fmt.Sprintf("userland %s, kernel %s", arch, machine)
	if k, found := kernel64[machine]; found {
		for _, c := range k.compat {
			if arch == c {
				return warn(name, detail+": a 32-bit userland on a 64-bit kernel, where dpkg refuses the "+k.native+" package",
					fmt.Sprintf("install the 64-bit OS (Raspberry Pi OS 64-bit), or dpkg --add-architecture %s and install thinbox:%s (it is static and needs no %s libraries)", k.native, k.native, k.native))
			}
		}
	}
	return ok(name, detail)
}
