package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProbe answers as configured; a nil error map means every namespace works.
type fakeProbe struct {
	release, machine string
	nsErr            map[Namespace]error
	overlayErr       error
	systemdVersion   int
	systemdErr       error
	dpkgArch         string
	free             uint64
	caps             bool
	hint             string
}

func (f *fakeProbe) Uname() (string, string, error) { return f.release, f.machine, nil }
func (f *fakeProbe) Unshare(_ context.Context, ns Namespace) error {
	return f.nsErr[ns]
}
func (f *fakeProbe) MountOverlay(context.Context, string) error { return f.overlayErr }
func (f *fakeProbe) Systemd(context.Context) (int, error)       { return f.systemdVersion, f.systemdErr }
func (f *fakeProbe) DpkgArch(context.Context) (string, error)   { return f.dpkgArch, nil }
func (f *fakeProbe) Free(string) (uint64, error)                { return f.free, nil }
func (f *fakeProbe) FileCaps(string) (bool, error)              { return f.caps, nil }
func (f *fakeProbe) ControllerHint(controller string) string    { return f.hint + controller }

const unifiedMountinfo = `22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw,nsdelegate
`

const hybridMountinfo = `22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
`

// healthy is a fake root of a Debian 12 machine with everything thinbox wants.
func healthy(t *testing.T) *Env {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"/proc/self/mountinfo":                  unifiedMountinfo,
		"/proc/filesystems":                     "nodev\tsysfs\nnodev\tcgroup2\n\text4\nnodev\toverlay\n",
		"/proc/1/comm":                          "systemd\n",
		"/proc/sys/user/max_user_namespaces":    "63457\n",
		"/sys/fs/cgroup/cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma misc\n",
		"/sys/fs/cgroup/cgroup.subtree_control": "cpuset cpu io memory pids\n",
		"/etc/passwd":                           "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n",
		"/etc/subuid":                           "alice:100000:65536\n",
		"/etc/subgid":                           "1000:100000:65536\n", // by uid: also valid
		"/usr/bin/newuidmap":                    "",
		"/usr/bin/newgidmap":                    "",
	}
	for name, text := range files {
		write(t, root, name, text)
	}
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/lib/thinbox"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &Env{
		Root: root,
		Probe: &fakeProbe{release: "6.1.0-57-amd64", machine: "x86_64", systemdVersion: 252,
			dpkgArch: "amd64", free: 40 << 30, caps: true},
		Euid:       0,
		User:       "alice",
		Store:      "/var/lib/thinbox",
		MinSystemd: map[string]int{"cpuset": 244},
	}
}

func write(t *testing.T, root, name, text string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func result(t *testing.T, rs []Result, check string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", check, rs)
	return Result{}
}

func expect(t *testing.T, r Result, status Status, detail, fix string) {
	t.Helper()
	if r.Status != status || !strings.Contains(r.Detail, detail) || !strings.Contains(r.Fix, fix) {
		t.Errorf("%s = %s %q (fix %q), want %s with %q (fix %q)", r.Check, r.Status, r.Detail, r.Fix, status, detail, fix)
	}
}

func TestHealthyMachine(t *testing.T) {
	rs := Run(context.Background(), healthy(t))
	for _, r := range rs {
		if r.Status != OK {
			t.Errorf("%s: %s %s; fix %s", r.Check, r.Status, r.Detail, r.Fix)
		}
	}
	if len(rs) != 11 {
		t.Errorf("%d checks, want 11", len(rs))
	}
	expect(t, result(t, rs, "cgroup controllers"), OK, "available at the root: cpuset cpu io memory hugetlb pids rdma misc; enabled for children: cpuset cpu io memory pids", "")
	expect(t, result(t, rs, "subordinate ids"), OK, "alice: /etc/subuid 100000-165535; /etc/subgid 100000-165535", "")
	expect(t, result(t, rs, "systemd"), OK, "systemd 252, bus reachable", "")
}

func TestKernelVersion(t *testing.T) {
	for rel, want := range map[string][2]int{
		"6.1.0-57-amd64":    {6, 1},
		"6.6.51+rpt-rpi-v8": {6, 6},
		"5.15.0-1034-raspi": {5, 15},
		"4.19.0":            {4, 19},
		"6.18.44-fc-v1272":  {6, 18},
		"3.10.0-1160.el7":   {3, 10},
	} {
		got, ok := kernelVersion(rel)
		if !ok || got != want {
			t.Errorf("kernelVersion(%q) = %v, %v; want %v", rel, got, ok, want)
		}
	}
	if _, ok := kernelVersion("garbage"); ok {
		t.Error("kernelVersion(garbage) parsed")
	}
	e := healthy(t)
	e.Probe.(*fakeProbe).release = "4.4.0"
	expect(t, checkKernel(context.Background(), e), Fail, "older than 4.6", "upgrade the kernel")
	e.Probe.(*fakeProbe).release = "5.4.0-150-generic"
	expect(t, checkKernel(context.Background(), e), Warn, "no openat2", "5.6")
}

func TestNamespaces(t *testing.T) {
	e := healthy(t)
	p := e.Probe.(*fakeProbe)
	p.nsErr = map[Namespace]error{"user": errors.New("no space left on device")}
	expect(t, checkNamespaces(context.Background(), e), Warn, "cannot create user (no space left on device)", "userns sysctls")
	p.nsErr = map[Namespace]error{"net": errors.New("operation not permitted")}
	expect(t, checkNamespaces(context.Background(), e), Fail, "cannot create net (operation not permitted)", "CONFIG_NET_NS")
	e.Euid = 1000
	expect(t, checkNamespaces(context.Background(), e), Fail, "net", "as root")
}

func TestCgroupHybrid(t *testing.T) {
	e := healthy(t)
	write(t, e.Root, "/proc/self/mountinfo", hybridMountinfo)
	write(t, e.Root, "/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
	expect(t, checkCgroup(context.Background(), e), Warn, "hybrid hierarchy: the controllers are bound to cgroup v1; /sys/fs/cgroup/unified holds hugetlb", "systemd.unified_cgroup_hierarchy=1")
	write(t, e.Root, "/proc/self/mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n")
	expect(t, checkCgroup(context.Background(), e), Warn, "no cgroup filesystem", "mount -t cgroup2")
	// The last mount at a point is the visible one.
	write(t, e.Root, "/proc/self/mountinfo", hybridMountinfo+"40 22 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
	expect(t, checkCgroup(context.Background(), e), OK, "unified", "")
}

func TestMountinfoEscapes(t *testing.T) {
	e := healthy(t)
	write(t, e.Root, "/proc/self/mountinfo", `30 22 0:26 / /mnt/with\040space rw shared:1 - ext4 /dev/sda1 rw`+"\n")
	ms, err := e.mounts()
	if err != nil || len(ms) != 1 || ms[0].point != "/mnt/with space" || ms[0].fstype != "ext4" {
		t.Fatalf("mounts() = %+v, %v", ms, err)
	}
}

func TestControllersMissing(t *testing.T) {
	e := healthy(t)
	// A Raspberry Pi: no memory controller unless cgroup_enable=memory is set.
	write(t, e.Root, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n")
	e.Probe.(*fakeProbe).hint = "add cgroup_enable=memory to /boot/firmware/cmdline.txt for "
	expect(t, checkControllers(context.Background(), e), Warn, "missing memory", "/boot/firmware/cmdline.txt for memory")
	os.Remove(filepath.Join(e.Root, "sys/fs/cgroup/cgroup.controllers"))
	expect(t, checkControllers(context.Background(), e), Warn, "no cgroup v2", "unified_cgroup_hierarchy")
}

func TestSystemd(t *testing.T) {
	e := healthy(t)
	p := e.Probe.(*fakeProbe)
	p.systemdVersion = 241
	expect(t, checkSystemd(context.Background(), e), Warn, "too old for --cpuset needs 244", "upgrade systemd")
	p.systemdErr = errors.New("dial unix /run/systemd/private: connection refused")
	expect(t, checkSystemd(context.Background(), e), Fail, "does not answer", "dbus.service")
	os.Remove(filepath.Join(e.Root, "run/systemd/system"))
	write(t, e.Root, "/proc/1/comm", "init\n")
	expect(t, checkSystemd(context.Background(), e), Warn, "PID 1 is init, not systemd: foreground containers work", "")
}

func TestOverlay(t *testing.T) {
	e := healthy(t)
	e.Probe.(*fakeProbe).overlayErr = errors.New("invalid argument")
	expect(t, checkOverlay(context.Background(), e), Fail, "upper layer in /var/lib/thinbox failed: invalid argument", "ext4")
	write(t, e.Root, "/proc/filesystems", "nodev\tsysfs\n")
	expect(t, checkOverlay(context.Background(), e), Fail, "failed", "modprobe overlay")
	e.Euid = 1000
	expect(t, checkOverlay(context.Background(), e), Warn, "not in /proc/filesystems", "as root")
}

func TestStore(t *testing.T) {
	e := healthy(t)
	e.Probe.(*fakeProbe).free = 500 << 20
	expect(t, checkStore(context.Background(), e), Warn, "500.0 MiB free, less than 1 GiB", "--root")
	e.Probe.(*fakeProbe).free = 2 << 30
	if err := os.Chmod(filepath.Join(e.Root, "var/lib/thinbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, checkStore(context.Background(), e), Warn, "mode 0755", "chmod 0700")
	os.RemoveAll(filepath.Join(e.Root, "var/lib/thinbox"))
	expect(t, checkStore(context.Background(), e), OK, "not created yet; on the filesystem of /var/lib", "")
}

func TestSubids(t *testing.T) {
	e := healthy(t)
	e.User = "bob"
	expect(t, checkSubids(context.Background(), e), Warn, "bob: /etc/subuid none; /etc/subgid none", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 bob")
	write(t, e.Root, "/etc/subuid", "# comment\nbob:200000:1000\nbob:300000:1000\n")
	expect(t, checkSubids(context.Background(), e), Warn, "/etc/subuid 200000-200999,300000-300999", "usermod")
	e.User = "root"
	expect(t, checkSubids(context.Background(), e), OK, "need no subordinate ids", "")
	e.User = "alice"
	os.Remove(filepath.Join(e.Root, "etc/subgid"))
	expect(t, checkSubids(context.Background(), e), Warn, "/etc/subgid none", "alice")
}

func TestNewuidmap(t *testing.T) {
	e := healthy(t)
	expect(t, checkNewuidmap(context.Background(), e), OK, "/usr/bin/newuidmap file capabilities", "")
	e.Probe.(*fakeProbe).caps = false
	if os.Geteuid() == 0 {
		// Setuid only counts when root owns the file, which only root can arrange.
		for _, f := range []string{"usr/bin/newuidmap", "usr/bin/newgidmap"} {
			if err := os.Chmod(filepath.Join(e.Root, f), os.ModeSetuid|0o755); err != nil {
				t.Fatal(err)
			}
		}
		expect(t, checkNewuidmap(context.Background(), e), OK, "/usr/bin/newgidmap setuid root", "")
		for _, f := range []string{"usr/bin/newuidmap", "usr/bin/newgidmap"} {
			os.Chmod(filepath.Join(e.Root, f), 0o755)
		}
	}
	expect(t, checkNewuidmap(context.Background(), e), Warn, "neither setuid root nor file capabilities", "chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap")
	os.Remove(filepath.Join(e.Root, "usr/bin/newgidmap"))
	expect(t, checkNewuidmap(context.Background(), e), Warn, "newgidmap not found", "apt install uidmap")
}

func TestUserns(t *testing.T) {
	e := healthy(t)
	write(t, e.Root, "/proc/sys/kernel/unprivileged_userns_clone", "0\n")
	expect(t, checkUserns(context.Background(), e), Warn, "unprivileged user namespaces are off", "kernel.unprivileged_userns_clone=1")
	write(t, e.Root, "/proc/sys/kernel/unprivileged_userns_clone", "1\n")
	// Ubuntu 23.10+: AppArmor restricts them unless a profile allows `userns`.
	write(t, e.Root, "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
	expect(t, checkUserns(context.Background(), e), Warn, "cannot be read", "as root")
	write(t, e.Root, "/sys/kernel/security/apparmor/profiles", "unprivileged_userns (enforce)\nbwrap (unconfined)\n")
	expect(t, checkUserns(context.Background(), e), Warn, "thinbox profile is not loaded", "apparmor_parser -r /etc/apparmor.d/thinbox")
	write(t, e.Root, "/sys/kernel/security/apparmor/profiles", "unprivileged_userns (enforce)\nthinbox (unconfined)\n")
	expect(t, checkUserns(context.Background(), e), OK, "AppArmor profile thinbox loaded", "")
	write(t, e.Root, "/proc/sys/user/max_user_namespaces", "0\n")
	expect(t, checkUserns(context.Background(), e), Warn, "no user namespaces may be created", "user.max_user_namespaces=")
}

func TestArch(t *testing.T) {
	e := healthy(t)
	p := e.Probe.(*fakeProbe)
	p.machine, p.dpkgArch = "aarch64", "armhf"
	expect(t, checkArch(context.Background(), e), Warn, "32-bit userland on a 64-bit kernel", "dpkg --add-architecture arm64 and install thinbox:arm64")
	p.machine, p.dpkgArch = "aarch64", "arm64"
	expect(t, checkArch(context.Background(), e), OK, "userland arm64, kernel aarch64", "")
	p.dpkgArch = ""
	expect(t, checkArch(context.Background(), e), OK, "no dpkg", "")
}

func TestCount(t *testing.T) {
	n := Count([]Result{{Status: OK}, {Status: Warn}, {Status: Fail}, {Status: Fail}})
	if n[OK] != 1 || n[Warn] != 1 || n[Fail] != 2 {
		t.Errorf("Count = %v", n)
	}
}
