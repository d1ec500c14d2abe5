//go:build integration && systemd

package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thinbox/thinbox/internal/testenv"
	"github.com/thinbox/thinbox/launcher"
	"github.com/thinbox/thinbox/systemd"
)

func newSystemdBox(t *testing.T) *box {
	t.Helper()
	testenv.Require(t, testenv.Root, testenv.Systemd, testenv.CgroupV2("memory", "pids", "cpu"), testenv.Command("systemctl"))
	return newBox(t).withImage()
}

func systemctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

func unitProp(t *testing.T, unit, prop string) string {
	t.Helper()
	out, _ := systemctl(t, "show", "-P", prop, unit)
	return out
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestScopeLimitsAppliedAndReadBack(t *testing.T) {
	b := newSystemdBox(t)
	// Inside: the cgroup namespace is rooted at the scope, whose files carry the limits.
	out := b.ok("run", "--rm", "--name", "lim", "--memory", "64m", "--pids", "20", "--cpu", "0.5", "--memory-high", "48m", "--cpu-weight", "50",
		"busybox", "sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.high /sys/fs/cgroup/cpu.weight")
	if want := "0::/\n67108864\n20\n50000 100000\n50331648\n50\n"; out != want {
		t.Errorf("inside the container:\n%s\nwant:\n%s", out, want)
	}
	// Outside, while it runs: thinbox-NAME.scope in thinbox.slice, Delegate=yes, and ps
	// shows the limits read from cgroupfs.
	cmd := b.cmd("run", "--rm", "--name", "held", "--memory", "32m", "--pids", "30", "busybox", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := waitRunning(t, b, "held")
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), "0::/thinbox.slice/thinbox-held.scope") {
		t.Errorf("container PID 1 in %q", cg)
	}
	for file, want := range map[string]string{"memory.max": "33554432", "pids.max": "30"} {
		got, _ := os.ReadFile("/sys/fs/cgroup/thinbox.slice/thinbox-held.scope/" + file)
		if strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q, want %s", file, got, want)
		}
	}
	if d := unitProp(t, "thinbox-held.scope", "Delegate"); d != "yes" {
		t.Errorf("Delegate=%s", d)
	}
	// The launcher itself stays outside the scope: only the container is in it.
	procs, _ := os.ReadFile("/sys/fs/cgroup/thinbox.slice/thinbox-held.scope/cgroup.procs")
	if strings.Contains(string(procs), strconv.Itoa(cmd.Process.Pid)+"\n") {
		t.Errorf("launcher %d is inside the scope: %q", cmd.Process.Pid, procs)
	}
	ps := b.ok("ps")
	if !strings.Contains(ps, "memory=33554432") || !strings.Contains(ps, "pids=30") || !strings.Contains(ps, "scope active (running)") {
		t.Errorf("ps lacks the scope's state and limits:\n%s", ps)
	}
	b.ok("stop", "-t", "5", "held")
	cmd.Wait()
	waitFor(t, 10*time.Second, "the scope to go", func() bool {
		_, err := os.Stat("/sys/fs/cgroup/thinbox.slice/thinbox-held.scope")
		return os.IsNotExist(err)
	})
}

func TestOOMKill(t *testing.T) {
	b := newSystemdBox(t)
	r := b.run("run", "--name", "hog", "--memory", "32m", "--memory-swap", "0", "busybox", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1")
	if r.code != 137 {
		t.Errorf("OOM: exit %d, want 137 (stderr %q)", r.code, r.stderr)
	}
	if ps := b.ok("ps", "-a"); !strings.Contains(ps, "oom-killed") {
		t.Errorf("ps -a does not say oom-killed:\n%s", ps)
	}
	var rec struct {
		OOMKilled bool `json:"oom_killed"`
	}
	json.Unmarshal([]byte(b.ok("inspect", "hog")), &rec)
	if !rec.OOMKilled {
		t.Errorf("inspect does not say oom_killed")
	}
	b.ok("rm", "hog")
	systemctl(t, "reset-failed")
	// A run that exits 137 by itself is not an OOM kill.
	b.ok("run", "--name", "notoom", "--memory", "32m", "busybox", "true")
	if ps := b.ok("ps", "-a"); strings.Contains(ps, "oom-killed") {
		t.Errorf("a clean run reported as OOM-killed:\n%s", ps)
	}
	b.ok("rm", "notoom")
}

func TestPidsLimitStopsForks(t *testing.T) {
	b := newSystemdBox(t)
	r := b.run("run", "--rm", "--pids", "12", "busybox", "sh", "-c", "for i in $(seq 1 40); do sleep 5 & done 2>&1; echo started=$(jobs -p | wc -l)")
	if !strings.Contains(r.stdout+r.stderr, "fork") && !strings.Contains(r.stdout+r.stderr, "Resource temporarily unavailable") {
		t.Errorf("40 forks under --pids 12 all succeeded:\n%s%s", r.stdout, r.stderr)
	}
}

func TestLimitErrors(t *testing.T) {
	b := newSystemdBox(t)
	b.fails(125, "--memory", "run", "--rm", "--memory", "lots", "busybox", "true")
	b.fails(125, "--cpu", "run", "--rm", "--cpu", "0", "busybox", "true")
	b.fails(125, "--pids", "run", "--rm", "--pids", "0", "busybox", "true")
	b.fails(125, "--slice", "run", "--rm", "--slice", "bad", "busybox", "true")
	// --memory-swap is only honoured with swap accounting; either it reads back or the
	// run fails saying why — never a silent no-op.
	r := b.run("run", "--rm", "--memory", "64m", "--memory-swap", "16m", "busybox", "cat", "/sys/fs/cgroup/memory.swap.max")
	if r.code == 0 && strings.TrimSpace(r.stdout) != "16777216" {
		t.Errorf("--memory-swap 16m: exit 0 but memory.swap.max = %q", r.stdout)
	}
	if r.code != 0 && !strings.Contains(r.stderr, "swap") {
		t.Errorf("--memory-swap failure does not say why: %q", r.stderr)
	}
}

// A launcher killed at any point of the start leaves no scope, record or layer behind.
func TestLauncherKilledMidStart(t *testing.T) {
	b := newSystemdBox(t)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < 12; i++ {
		cmd := b.cmd("run", "--rm", "--name", fmt.Sprintf("mid%d", i), "--memory", "64m", "busybox", "sleep", "300")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	waitFor(t, 20*time.Second, "all mid-start scopes to go", func() bool {
		out, _ := systemctl(t, "list-units", "--all", "--plain", "--no-legend", "thinbox-mid*")
		return out == ""
	})
	b.ok("ps", "-a") // collects what the killed launchers left
}

func serviceArgs(b *box, name string, rest ...string) []string {
	return append([]string{"run", "--unit", name}, rest...)
}

func cleanupService(t *testing.T, b *box, name string) {
	t.Cleanup(func() {
		b.run("rm", name)
		exec.Command("systemctl", "reset-failed", "thinbox-"+name+".service").Run()
	})
}

func TestServiceLifecycle(t *testing.T) {
	b := newSystemdBox(t)
	cleanupService(t, b, "sensor")
	b.ok(serviceArgs(b, "sensor", "--memory", "64m", "--pids", "50", "busybox", "sh", "-c", "while true; do echo tick; sleep 1; done")...)
	unit := "thinbox-sensor.service"
	if s, _ := systemctl(t, "is-active", unit); s != "active" {
		t.Fatalf("is-active: %s", s)
	}
	if out, code := systemctl(t, "status", "--no-pager", unit); code != 0 || !strings.Contains(out, "thinbox container sensor") {
		t.Errorf("systemctl status (%d):\n%s", code, out)
	}
	waitFor(t, 30*time.Second, "tick in the journal", func() bool {
		out, _ := exec.Command("journalctl", "-u", unit, "--no-pager", "-o", "cat").Output()
		return strings.Contains(string(out), "tick")
	})
	if out := b.ok("logs", "-n", "3", "sensor"); !strings.Contains(out, "tick") {
		t.Errorf("thinbox logs: %q", out)
	}
	// systemd supervises the container's PID 1; every process of the unit is inside the
	// container (its own pid namespace), none is a launcher.
	mainPID := unitProp(t, unit, "MainPID")
	cg := unitProp(t, unit, "ControlGroup")
	procs, _ := os.ReadFile("/sys/fs/cgroup" + cg + "/cgroup.procs")
	self, _ := os.Readlink("/proc/self/ns/pid")
	for _, p := range strings.Fields(string(procs)) {
		ns, _ := os.Readlink("/proc/" + p + "/ns/pid")
		if ns == self {
			comm, _ := os.ReadFile("/proc/" + p + "/comm")
			t.Errorf("process %s (%s) in %s is outside the container", p, strings.TrimSpace(string(comm)), unit)
		}
	}
	if comm, _ := os.ReadFile("/proc/" + mainPID + "/comm"); strings.TrimSpace(string(comm)) != "thinbox-init" {
		t.Errorf("MainPID %s is %q, want the container's init", mainPID, comm)
	}
	if got, _ := os.ReadFile("/sys/fs/cgroup" + cg + "/memory.max"); strings.TrimSpace(string(got)) != "67108864" {
		t.Errorf("service memory.max = %q", got)
	}
	if ps := b.ok("ps"); !strings.Contains(ps, "service active (running)") || !strings.Contains(ps, "memory=67108864") {
		t.Errorf("ps:\n%s", ps)
	}
	// Stop leaves it inactive, not failed; the layer and record go.
	b.ok("stop", "sensor")
	if s, _ := systemctl(t, "is-active", unit); s != "inactive" {
		t.Errorf("after stop: %s, want inactive", s)
	}
	if ps := b.ok("ps", "-a"); !strings.Contains(ps, "sensor") || !strings.Contains(ps, "stopped") {
		t.Errorf("ps -a after stop:\n%s", ps)
	}
	// Start it again through systemctl, as an ordinary service.
	if out, code := systemctl(t, "start", unit); code != 0 {
		t.Fatalf("systemctl start: %s", out)
	}
	if s, _ := systemctl(t, "is-active", unit); s != "active" {
		t.Errorf("after systemctl start: %s", s)
	}
	b.fails(125, "in use", serviceArgs(b, "sensor", "busybox", "true")...)
	// rm: stop, disable, delete the unit, reload; nothing left.
	b.ok("rm", "sensor")
	if _, err := os.Stat("/etc/systemd/system/" + unit); !os.IsNotExist(err) {
		t.Errorf("unit file left: %v", err)
	}
	if out, _ := systemctl(t, "list-units", "--all", "--plain", "--no-legend", unit); strings.Contains(out, "active") || strings.Contains(out, "failed") {
		t.Errorf("unit still loaded: %q", out)
	}
	if _, err := os.Stat("/sys/fs/cgroup" + cg); !os.IsNotExist(err) {
		t.Errorf("service cgroup left: %v", err)
	}
}

func TestServiceRestartOnFailure(t *testing.T) {
	b := newSystemdBox(t)
	cleanupService(t, b, "crashy")
	b.ok(serviceArgs(b, "crashy", "--restart", "on-failure", "--restart-sec", "1s", "busybox", "sh", "-c", "sleep 2; exit 3")...)
	waitFor(t, 60*time.Second, "a restart", func() bool {
		n, _ := strconv.Atoi(unitProp(t, "thinbox-crashy.service", "NRestarts"))
		return n >= 1
	})
}

// Arguments and environment values with spaces, quotes, $, %, \ and ; reach the
// payload byte-exact through the unit file.
func TestServiceArgumentsByteExact(t *testing.T) {
	b := newSystemdBox(t)
	cleanupService(t, b, "args")
	dir := t.TempDir()
	args := []string{"two words", `"dq"`, `'sq'`, "$HOME", "${X}", "%n", "%%", `back\slash`, "semi;colon", ";", "new\nline", ""}
	env := `v a"l'u$e%n\;`
	cmd := append(serviceArgs(b, "args", "-v", dir+":/out", "-e", "ODD="+env, "busybox", "sh", "-c",
		`for a in "$@"; do printf '[%s]' "$a"; done > /out/args; printf '%s' "$ODD" > /out/env; sleep 300`, "sh"), args...)
	b.ok(cmd...)
	waitFor(t, 30*time.Second, "the payload's output", func() bool {
		_, err := os.Stat(filepath.Join(dir, "env"))
		return err == nil
	})
	want := ""
	for _, a := range args {
		want += "[" + a + "]"
	}
	time.Sleep(200 * time.Millisecond)
	if got, _ := os.ReadFile(filepath.Join(dir, "args")); string(got) != want {
		t.Errorf("argv through the unit:\n got %q\nwant %q", got, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "env")); string(got) != env {
		t.Errorf("env through the unit: %q, want %q", got, env)
	}
}

func TestUnitVerifyAndPrint(t *testing.T) {
	b := newSystemdBox(t)
	text := b.ok("unit", "--unit", "printed", "--memory", "64m", "--cpu", "0.5", "--pids", "20", "--restart", "always", "--wait-network",
		"-e", "A=b c", "busybox", "sh", "-c", "echo $HOME %n")
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "KillMode=mixed", "Delegate=yes", "SuccessExitStatus=143",
		"MemoryMax=67108864", "CPUQuota=50%", "TasksMax=20", "Restart=always", "After=network-online.target", "SyslogIdentifier=printed", "TimeoutStopSec="} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("unit lacks %s:\n%s", want, text)
		}
	}
	path := filepath.Join(t.TempDir(), "thinbox-printed.service")
	os.WriteFile(path, []byte(text), 0o644)
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if _, err := os.Stat("/etc/systemd/system/thinbox-printed.service"); !os.IsNotExist(err) {
		t.Errorf("thinbox unit installed something")
	}
	b.fails(125, "invalid name", "unit", "--unit", "bad name", "busybox", "true")
	b.fails(125, "--restart", "unit", "--unit", "x", "--restart", "sometimes", "busybox", "true")
}

func TestHostileServiceNames(t *testing.T) {
	b := newSystemdBox(t)
	for _, name := range []string{"../etc", "a b", "x/y", "%n", "-x", "a\nb", "a$b", "a@b", "", strings.Repeat("n", 64)} {
		r := b.run("run", "--unit", name, "busybox", "true")
		if r.code != 125 {
			t.Errorf("--unit %q: exit %d", name, r.code)
		}
	}
	matches, _ := filepath.Glob("/etc/systemd/system/thinbox-*")
	for _, m := range matches {
		t.Errorf("left behind: %s", m)
	}
}

// --notify=container: the payload decides readiness through NOTIFY_SOCKET; systemd's
// start job waits for it, and MAINPID is the container's init.
func TestServiceNotifyContainer(t *testing.T) {
	b := newSystemdBox(t)
	cleanupService(t, b, "notif")
	self, _ := os.Executable()
	start := time.Now()
	b.ok(serviceArgs(b, "notif", "--notify", "container", "-v", self+":/notifier:ro", "-e", "THINBOX_TEST_NOTIFY=1",
		"busybox", "sh", "-c", "sleep 3; /notifier; sleep 300")...)
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("start returned after %s, before the payload said READY", took)
	}
	if s, _ := systemctl(t, "is-active", "thinbox-notif.service"); s != "active" {
		t.Errorf("is-active: %s", s)
	}
}

// rebootRoot is a fixed store for the reboot pair: it must outlive the first test.
const rebootRoot = "/var/lib/thinbox-reboot-test"

// rebootBox uses a copy of thinbox on the guest's own disk: the share that holds
// THINBOX_BIN is mounted only after boot, too late for an enabled service.
func rebootBox(t *testing.T) *box {
	testenv.Require(t, testenv.Root, testenv.Systemd, testenv.Binary, testenv.Image)
	return &box{t: t, bin: rebootRoot + "/thinbox", root: rebootRoot + "/lib", runroot: "/run/thinbox-reboot-test"}
}

// TestRebootEnableBefore and TestRebootEnableAfter run around a reboot of the guest
// (integration/run.sh does the reboot): an enabled service comes back by itself.
func TestRebootEnableBefore(t *testing.T) {
	b := rebootBox(t)
	os.RemoveAll(rebootRoot)
	os.MkdirAll(rebootRoot, 0o700)
	bin, err := os.ReadFile(testenv.BinaryPath())
	if err != nil || os.WriteFile(b.bin, bin, 0o755) != nil {
		t.Fatalf("copy thinbox to %s: %v", b.bin, err)
	}
	b.ok("image", "import", "busybox", testenv.ImagePath())
	b.ok("run", "--unit", "boot", "--enable", "busybox", "sh", "-c", "echo booted; exec sleep 100000")
	if s, _ := systemctl(t, "is-enabled", "thinbox-boot.service"); s != "enabled" {
		t.Fatalf("is-enabled: %s", s)
	}
}

func TestRebootEnableAfter(t *testing.T) {
	b := rebootBox(t)
	defer os.RemoveAll(rebootRoot)
	defer b.run("rm", "boot")
	waitFor(t, 60*time.Second, "thinbox-boot.service to be active after the reboot", func() bool {
		s, _ := systemctl(t, "is-active", "thinbox-boot.service")
		return s == "active"
	})
	if ps := b.ok("ps"); !strings.Contains(ps, "boot") || !strings.Contains(ps, "service active (running)") {
		t.Errorf("ps after reboot:\n%s", ps)
	}
	b.ok("rm", "boot")
	if _, err := os.Stat("/etc/systemd/system/thinbox-boot.service"); !os.IsNotExist(err) {
		t.Errorf("unit left after rm")
	}
	if _, err := os.Stat("/etc/systemd/system/multi-user.target.wants/thinbox-boot.service"); !os.IsNotExist(err) {
		t.Errorf("enablement symlink left after rm")
	}
}

// A foreground container in a scope leaves its output in the journal, attributed to its
// scope: thinbox logs and journalctl -u show it after it ended.
func TestScopeLogs(t *testing.T) {
	b := newSystemdBox(t)
	out := b.ok("run", "--name", "chatty", "busybox", "sh", "-c", "echo out-line-1; echo err-line-2 >&2; echo out-line-3")
	if out != "out-line-1\nout-line-3\n" {
		t.Errorf("terminal output %q", out)
	}
	waitFor(t, 20*time.Second, "the output in the journal", func() bool {
		logs := b.run("logs", "chatty").stdout
		return strings.Contains(logs, "out-line-1") && strings.Contains(logs, "err-line-2") && strings.Contains(logs, "out-line-3")
	})
	j, _ := exec.Command("journalctl", "--no-pager", "-o", "cat", "-u", "thinbox-chatty.scope").Output()
	if !strings.Contains(string(j), "out-line-3") {
		t.Errorf("journalctl -u thinbox-chatty.scope lacks the output:\n%s", j)
	}
	b.ok("rm", "chatty")
	b.fails(125, "no such container", "logs", "chatty")
}

// Scopes and services carry DevicePolicy=closed with exactly the standard devices, and
// the container's terminal still works under it.
func TestDevicePolicy(t *testing.T) {
	b := newSystemdBox(t)
	cmd := b.cmd("run", "--rm", "--name", "devs", "busybox", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitRunning(t, b, "devs")
	if p := unitProp(t, "thinbox-devs.scope", "DevicePolicy"); p != "closed" {
		t.Errorf("scope DevicePolicy=%s", p)
	}
	allow := unitProp(t, "thinbox-devs.scope", "DeviceAllow")
	for _, d := range []string{"/dev/null rwm", "/dev/urandom rwm", "char-pts rwm"} {
		if !strings.Contains(allow, d) {
			t.Errorf("scope DeviceAllow=%q lacks %s", allow, d)
		}
	}
	b.ok("stop", "-t", "2", "devs")
	text := b.ok("unit", "--unit", "devs", "busybox", "true")
	if !strings.Contains(text, "DevicePolicy=closed\n") || !strings.Contains(text, "DeviceAllow=char-pts rwm\n") {
		t.Errorf("unit lacks the device policy:\n%s", text)
	}
	// A device node made inside (CAP_MKNOD is in the default set) can't be opened.
	r := b.run("run", "--rm", "busybox", "sh", "-c", "mknod /tmp/disk b 8 0 && head -c1 /tmp/disk")
	if r.code == 0 {
		t.Errorf("a block device made in the container could be read: %q", r.stdout)
	}
}

// overallExposure is systemd-analyze security's last line: "→ Overall exposure level for
// thinbox-NAME.service: 6.1 MEDIUM 😐".
var overallExposure = regexp.MustCompile(`Overall exposure level for (\S+): (\d+(?:\.\d+)?) (\S+)`)

// exposure is the overall exposure of a loaded unit, from 0.0 (safe) to 10.0 (unsafe),
// and systemd-analyze's word for it.
func exposure(t *testing.T, unit string) (float64, string) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--no-pager", unit).CombinedOutput()
	m := overallExposure.FindStringSubmatch(string(out))
	if m == nil || m[1] != unit {
		t.Fatalf("systemd-analyze security %s: %v: no overall exposure in:\n%s", unit, err, out)
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, m[3]
}

// A container service carries systemd's sandboxing options that don't break containers:
// systemd-analyze security rates it below the same unit without them (both numbers go to
// the log), and the container runs with exactly its own confinement. Services with
// --userns=auto and --privileged, whose lists are shorter, run too.
func TestServiceSecurityExposure(t *testing.T) {
	b := newSystemdBox(t)
	testenv.Require(t, testenv.Command("systemd-analyze"), testenv.Command("journalctl"))
	// --userns=auto needs the thinbox range and a store its root can reach.
	os.Chmod(filepath.Dir(b.root), 0o711)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		old, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		os.WriteFile(f, append(append([]byte{}, old...), "thinbox:2147483648:2147483648\n"...), 0o644)
		t.Cleanup(func() { os.WriteFile(f, old, 0o644) })
	}
	hostBnd := statusLine(t, "/proc/self/status", "CapBnd:")
	defaults := fmt.Sprintf("%016x", uint64(launcher.DefaultCaps))
	cases := []struct {
		name  string
		flags []string
		sh    string   // the payload; prints ok-NAME when all is well
		props []string // unit properties that must be yes
	}{
		{"exposed", nil,
			// Docker's capabilities, in the bounding set too; its own proc, sysfs and cgroup2.
			fmt.Sprintf(`grep -q "CapEff:.%s" /proc/self/status && grep -q "CapBnd:.%s" /proc/self/status && cat /proc/1/cmdline >/dev/null && ls /sys/class/net/lo >/dev/null && cat /sys/fs/cgroup/cgroup.procs >/dev/null && hostname | grep -qx exposed && echo ok-exposed`, defaults, defaults),
			[]string{"PrivateMounts", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "RestrictRealtime"}},
		{"exposed-auto", []string{"--userns=auto"},
			`grep -q "^ *0 *2147" /proc/self/uid_map && ps >/dev/null && echo ok-exposed-auto`,
			[]string{"PrivateMounts", "ProtectControlGroups"}},
		{"exposed-priv", []string{"--privileged"},
			fmt.Sprintf(`grep -q "CapBnd:.%s" /proc/self/status && echo 1 >/proc/sys/net/ipv4/ip_forward && grep -q " /sys .*rw," /proc/self/mountinfo && echo ok-exposed-priv`, hostBnd),
			[]string{"ProtectKernelTunables", "ProtectControlGroups"}},
	}
	for _, c := range cases {
		unit := "thinbox-" + c.name + ".service"
		cleanupService(t, b, c.name)
		args := append(append([]string{"--hostname", c.name}, c.flags...), "busybox", "sh", "-c", c.sh+"; exec sleep 300")
		b.ok(serviceArgs(b, c.name, args...)...)
		for _, p := range c.props {
			if v := unitProp(t, unit, p); v != "yes" {
				t.Errorf("%s: %s=%q, want yes", unit, p, v)
			}
		}
		waitFor(t, 30*time.Second, "ok-"+c.name+" in the journal of "+unit, func() bool {
			out, _ := exec.Command("journalctl", "-u", unit, "--no-pager", "-o", "cat").Output()
			return strings.Contains(string(out), "ok-"+c.name+"\n")
		})
		if s, _ := systemctl(t, "is-active", unit); s != "active" {
			t.Errorf("%s: %s", unit, s)
		}
		v, word := exposure(t, unit)
		how := strings.Join(append([]string{"thinbox run --unit", c.name}, c.flags...), " ")
		t.Logf("systemd-analyze security --no-pager %s: overall exposure %.1f %s (%s)", unit, v, word, how)
	}

	// The baseline: the first unit file without what ServiceHardening adds to the device
	// policy, loaded under a name that is not thinbox's, never started.
	unit := "thinbox-exposed.service"
	text, err := os.ReadFile("/etc/systemd/system/" + unit)
	if err != nil {
		t.Fatal(err)
	}
	added := map[string]bool{}
	for _, d := range systemd.ServiceHardening(systemd.ServiceContainer{})[len(systemd.DeviceDirectives()):] {
		added[d[0]] = true
	}
	var kept []string
	lines := strings.Split(string(text), "\n")
	for _, l := range lines {
		if k, _, _ := strings.Cut(l, "="); !added[k] {
			kept = append(kept, l)
		}
	}
	if len(lines)-len(kept) != len(added) {
		t.Fatalf("%s carries %d of the %d hardening directives:\n%s", unit, len(lines)-len(kept), len(added), text)
	}
	const baseUnit = "exposure-baseline-for-thinbox.service"
	basePath := "/etc/systemd/system/" + baseUnit
	if err := os.WriteFile(basePath, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(basePath)
		exec.Command("systemctl", "daemon-reload").Run()
	})
	if out, code := systemctl(t, "daemon-reload"); code != 0 {
		t.Fatalf("daemon-reload: %s", out)
	}
	hardened, hword := exposure(t, unit)
	baseline, bword := exposure(t, baseUnit)
	t.Logf("systemd-analyze security: %s %.1f %s with thinbox's hardening, %.1f %s without it (device policy only)", unit, hardened, hword, baseline, bword)
	if hardened >= baseline {
		t.Errorf("the hardened unit's exposure %.1f is not below the baseline's %.1f", hardened, baseline)
	}
}

// statusLine is the value of a /proc/PID/status field.
func statusLine(t *testing.T, path, field string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no %s", path, field)
	return ""
}
