//go:build integration && systemd

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinbox/thinbox/internal/testenv"
)

// rootless runs thinbox as an ordinary user of the guest (integration/vm makes alice,
// with a subordinate range, and bob, without; both lingering), the way they would from
// a login: their own XDG_RUNTIME_DIR and systemd manager.
type rootless struct {
	t    *testing.T
	u    *user.User
	uid  int
	bin  string
	img  string
	home string
}

func newRootless(t *testing.T, name string) *rootless {
	t.Helper()
	testenv.Require(t, testenv.Root, testenv.Systemd, testenv.Binary, testenv.Image, testenv.Command("runuser"))
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("the guest has no user %s (integration/vm/vm.sh makes alice and bob): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	// The share that holds THINBOX_BIN is root's; the users get copies they can read.
	dir, err := os.MkdirTemp("/var/tmp", "thinbox-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	r := &rootless{t: t, u: u, uid: uid, bin: filepath.Join(dir, "thinbox"), img: filepath.Join(dir, "busybox.tar.gz"), home: u.HomeDir}
	for src, dst := range map[string]string{testenv.BinaryPath(): r.bin, testenv.ImagePath(): r.img} {
		b, err := os.ReadFile(src)
		if err != nil || os.WriteFile(dst, b, 0o755) != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
	}
	waitFor(t, 60*time.Second, name+"'s systemd manager", func() bool {
		_, err := os.Stat(fmt.Sprintf("/run/user/%d/systemd/private", uid))
		return err == nil
	})
	t.Cleanup(func() {
		r.run("rm", "-f", "lim")
		exec.Command("runuser", "-u", name, "--", "rm", "-rf", filepath.Join(r.home, ".local/share/thinbox")).Run()
		// Files owned by the subordinate range need root here.
		os.RemoveAll(filepath.Join(r.home, ".local/share/thinbox"))
		os.RemoveAll(dir)
	})
	return r
}

func (r *rootless) env() []string {
	return []string{
		"HOME=" + r.home, "USER=" + r.u.Username, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		fmt.Sprintf("XDG_RUNTIME_DIR=/run/user/%d", r.uid),
		fmt.Sprintf("DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus", r.uid),
	}
}

func (r *rootless) command(name string, args ...string) *exec.Cmd {
	full := append([]string{"-u", r.u.Username, "--", "env"}, r.env()...)
	return exec.Command("runuser", append(append(full, name), args...)...)
}

func (r *rootless) run(args ...string) result {
	r.t.Helper()
	cmd := r.command(r.bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (r *rootless) ok(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("%s: thinbox %s: exit %d\nstdout: %s\nstderr: %s", r.u.Username, strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

func owner(t *testing.T, path string) int {
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// delegate gives user managers the cpu, cpuset, io, memory and pids controllers, as a
// user would be told to (the package ships the drop-in as an example).
func delegate(t *testing.T, uid int) {
	dir := "/etc/systemd/system/user@.service.d"
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "thinbox-test-delegate.conf"), []byte("[Service]\nDelegate=cpu cpuset io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	systemctl(t, "daemon-reload")
	systemctl(t, "restart", fmt.Sprintf("user@%d.service", uid))
	t.Cleanup(func() {
		os.Remove(filepath.Join(dir, "thinbox-test-delegate.conf"))
		systemctl(t, "daemon-reload")
	})
	waitFor(t, 60*time.Second, "the delegated controllers", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%d.slice/user@%d.service/cgroup.controllers", uid, uid))
		return strings.Contains(string(b), "memory") && strings.Contains(string(b), "pids")
	})
}

func TestRootlessFullRange(t *testing.T) {
	r := newRootless(t, "alice")
	delegate(t, r.uid)
	r.ok("image", "import", "busybox", r.img)
	// Ownership shifted once, at import: the tarball's root is alice, its uid 1000 is
	// her subordinate id 1000 (100000 + 999).
	root := filepath.Join(r.home, ".local/share/thinbox/images/busybox/rootfs")
	if o := owner(t, filepath.Join(root, "bin/busybox")); o != r.uid {
		t.Errorf("bin/busybox owned by %d on the host, want alice (%d)", o, r.uid)
	}
	if o := owner(t, filepath.Join(root, "home/app")); o != 100999 {
		t.Errorf("home/app owned by %d on the host, want 100999", o)
	}
	out := r.ok("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map; id -u; ls -ln /home | grep app")
	fields := strings.Fields(out)
	if len(fields) < 7 || strings.Join(fields[:6], " ") != fmt.Sprintf("0 %d 1 1 100000 65536", r.uid) || fields[6] != "0" {
		t.Errorf("uid_map and id inside:\n%s", out)
	}
	if !strings.Contains(out, " 1000 ") {
		t.Errorf("/home/app inside is not owned by 1000:\n%s", out)
	}
	// -u app works and writes as its own id.
	if out := r.ok("run", "--rm", "-u", "app", "busybox", "sh", "-c", "id -u; touch /home/app/f && echo written"); out != "1000\nwritten\n" {
		t.Errorf("-u app: %q", out)
	}
	// --memory lands in alice's own delegated cgroup.
	cmd := r.command(r.bin, "run", "--name", "lim", "--memory", "64m", "--pids", "40", "busybox", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var cg string
	waitFor(t, 60*time.Second, "lim to run", func() bool {
		res := r.run("inspect", "lim")
		if res.code != 0 || !strings.Contains(res.stdout, `"status": "running"`) {
			return false
		}
		for _, l := range strings.Split(res.stdout, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"cgroup": "`); ok {
				cg = strings.TrimSuffix(v, `",`)
			}
		}
		return true
	})
	if want := fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service/", r.uid, r.uid); !strings.HasPrefix(cg, want) {
		t.Errorf("container cgroup %q, want under %s", cg, want)
	}
	if b, _ := os.ReadFile("/sys/fs/cgroup" + cg + "/memory.max"); strings.TrimSpace(string(b)) != "67108864" {
		t.Errorf("memory.max of %s = %q", cg, b)
	}
	r.ok("stop", "-t", "2", "lim")
	cmd.Wait()
	r.ok("rm", "lim")
}

func TestRootlessService(t *testing.T) {
	r := newRootless(t, "alice")
	delegate(t, r.uid)
	r.ok("image", "import", "busybox", r.img)
	r.ok("run", "--unit", "svc", "--memory", "32m", "busybox", "sh", "-c", "while true; do echo tick-alice; sleep 1; done")
	defer r.run("rm", "svc")
	unit := filepath.Join(r.home, ".config/systemd/user/thinbox-svc.service")
	if _, err := os.Stat(unit); err != nil {
		t.Fatalf("no user unit: %v", err)
	}
	is := r.command("systemctl", "--user", "is-active", "thinbox-svc.service")
	if out, _ := is.Output(); strings.TrimSpace(string(out)) != "active" {
		t.Errorf("systemctl --user is-active: %q", out)
	}
	waitFor(t, 30*time.Second, "alice's service output in the journal", func() bool {
		out, _ := exec.Command("journalctl", "--no-pager", "-o", "cat", "_SYSTEMD_USER_UNIT=thinbox-svc.service").Output()
		return strings.Contains(string(out), "tick-alice")
	})
	if ps := r.ok("ps"); !strings.Contains(ps, "svc") || !strings.Contains(ps, "service active") {
		t.Errorf("ps as alice:\n%s", ps)
	}
	r.ok("stop", "svc")
	r.ok("rm", "svc")
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Errorf("unit left after rm: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.home, ".local/share/thinbox/containers")); len(ents) != 0 {
		t.Errorf("layers left after rm: %v", ents)
	}
}

func TestRootlessSingleID(t *testing.T) {
	r := newRootless(t, "bob")
	r.ok("image", "import", "busybox", r.img)
	res := r.run("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map; id -u")
	if res.code != 0 {
		t.Fatalf("bob's run: %d %s", res.code, res.stderr)
	}
	if f := strings.Fields(res.stdout); len(f) != 4 || strings.Join(f, " ") != fmt.Sprintf("0 %d 1 0", r.uid) {
		t.Errorf("bob's uid_map and id: %q", res.stdout)
	}
	if !strings.Contains(res.stderr, "no subordinate ids") || !strings.Contains(res.stderr, "usermod --add-subuids") {
		t.Errorf("no notice about the single mapping: %q", res.stderr)
	}
	// Limits without delegation say how to get it.
	lim := r.run("run", "--rm", "--memory", "64m", "busybox", "true")
	if lim.code == 0 {
		t.Logf("bob's --memory worked: delegation is configured on this guest")
	} else if !strings.Contains(lim.stderr, "Delegate=") && !strings.Contains(lim.stderr, "delegat") {
		t.Errorf("--memory without delegation: %q", lim.stderr)
	}
	// With unprivileged user namespaces turned off, the error names the sysctl.
	const knob = "/proc/sys/kernel/unprivileged_userns_clone"
	if old, err := os.ReadFile(knob); err == nil {
		os.WriteFile(knob, []byte("0"), 0o644)
		defer os.WriteFile(knob, old, 0o644)
		res := r.run("run", "--rm", "busybox", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "unprivileged_userns_clone") {
			t.Errorf("with userns off: exit %d %q", res.code, res.stderr)
		}
	}
}

// Root's --userns=auto: each container gets its own block of ids from the "thinbox"
// entry of /etc/subuid, so its root is an unprivileged host uid; the image is lent
// through an idmapped mount and stays root's.
func TestUserNSAuto(t *testing.T) {
	testenv.Require(t, testenv.Root, testenv.Systemd)
	b := newBox(t).withImage()
	os.Chmod(filepath.Dir(b.root), 0o711) // the container's root must reach its layer
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		old, _ := os.ReadFile(f)
		os.WriteFile(f, append(append([]byte{}, old...), "thinbox:2147483648:2147483648\n"...), 0o644)
		defer os.WriteFile(f, old, 0o644)
	}
	var cmds []*exec.Cmd
	pids := map[string]int{}
	for _, name := range []string{"auto1", "auto2"} {
		cmd := b.cmd("run", "--rm", "--name", name, "--userns=auto", "busybox", "sh", "-c", "echo x >/etc/written && sleep 300")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		pids[name] = waitRunning(t, b, name)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	uids := map[string]int{}
	for name, pid := range pids {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" {
				uids[name], _ = strconv.Atoi(f[1])
				if f[1] != f[2] || f[1] != f[3] {
					t.Errorf("%s: mixed uids %v", name, f)
				}
			}
		}
		if uids[name] < 2147483648 {
			t.Errorf("%s: PID 1 runs as host uid %d, want one of thinbox's range", name, uids[name])
		}
	}
	if d := uids["auto1"] - uids["auto2"]; d == 0 || d%65536 != 0 {
		t.Errorf("ranges overlap or are not whole blocks: %v", uids)
	}
	// The image's files are the container root's inside, and unchanged (root's) outside.
	out := b.ok("run", "--rm", "--userns=auto", "busybox", "sh", "-c", "cat /proc/self/uid_map; stat -c %u /etc/passwd; echo ok >/etc/passwd2 && cat /etc/passwd2")
	if f := strings.Fields(out); len(f) != 5 || f[0] != "0" || f[1] == "0" || f[2] != "65536" || f[3] != "0" || f[4] != "ok" {
		t.Errorf("inside --userns=auto: %q", out)
	}
	if o := owner(t, filepath.Join(b.root, "images/busybox/rootfs/etc/passwd")); o != 0 {
		t.Errorf("the image's /etc/passwd now owned by %d", o)
	}
	b.ok("stop", "-t", "1", "auto1")
	b.ok("stop", "-t", "1", "auto2")
	for _, c := range cmds {
		c.Wait()
	}
	if ents, _ := os.ReadDir(filepath.Join(b.runroot, "userns")); len(ents) > 1 {
		t.Errorf("id blocks not given back: %v", ents)
	}
	b.fails(125, "--userns", "run", "--rm", "--userns=bogus", "busybox", "true")
}
