//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func TestRunIsolation(t *testing.T) {
	b := newBox(t).withImage()
	out := b.ok("run", "--rm", "--name", "iso", "busybox", "sh", "-c",
		`echo pid=$$; hostname; cat /proc/1/comm; ls /sys/class/net; cat /sys/class/net/lo/flags; ls /proc | grep -c '^[0-9]'; test -e /etc/thinbox-image && echo image-root`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"", "iso", "thinbox-init", "lo", "0x9", "", "image-root"}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	if lines[0] == "pid=1" {
		t.Errorf("with the default --init the payload must not be PID 1")
	}
	for i, w := range want {
		if w != "" && lines[i] != w {
			t.Errorf("line %d = %q, want %q\n%s", i, lines[i], w, out)
		}
	}
	// PID 1 (init), sh, ls and (once it has started) grep: nothing of the host.
	if lines[5] != "3" && lines[5] != "4" {
		t.Errorf("/proc shows %s processes, want the init, sh, ls and grep", lines[5])
	}

	out = b.ok("run", "--rm", "--no-init", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
	if !strings.HasPrefix(out, "1\nsh -c") {
		t.Errorf("--no-init: payload is not PID 1:\n%s", out)
	}
}

func TestRunHostInvisible(t *testing.T) {
	b := newBox(t).withImage()
	marker := filepath.Join("/var/tmp", "thinbox-host-marker")
	os.WriteFile(marker, []byte("host"), 0o644)
	defer os.Remove(marker)
	out := b.ok("run", "--rm", "busybox", "sh", "-c", "test -e "+marker+" && echo visible; test -e /usr/local/go && echo visible; cat /proc/mounts | grep -c . ; ls /dev | tr '\\n' ' '")
	if strings.Contains(out, "visible") {
		t.Errorf("host files visible in the container:\n%s", out)
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue"} {
		if !strings.Contains(out, dev+" ") {
			t.Errorf("/dev lacks %s: %s", dev, out)
		}
	}
	for _, dev := range []string{"sda", "vda", "mem ", "kmsg", "console"} {
		if strings.Contains(out, dev) {
			t.Errorf("/dev has host device %s: %s", dev, out)
		}
	}
}

func TestRunNetwork(t *testing.T) {
	b := newBox(t).withImage()
	out := b.ok("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; cat /etc/resolv.conf; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-works")
	if !strings.HasPrefix(out, "lo\n") || strings.Count(out, "\n") < 2 || !strings.Contains(out, "lo-works") {
		t.Errorf("--net=none: want only lo, up:\n%s", out)
	}
	host, _ := os.ReadDir("/sys/class/net")
	out = b.ok("run", "--rm", "--net", "host", "busybox", "ls", "/sys/class/net")
	if n := len(strings.Fields(out)); n != len(host) {
		t.Errorf("--net=host: %d interfaces inside, %d on the host", n, len(host))
	}
	b.fails(125, "--net", "run", "--rm", "--net", "bridge", "busybox", "true")
}

func TestRunExitCodes(t *testing.T) {
	b := newBox(t).withImage()
	for _, init := range []string{"--init", "--no-init"} {
		if r := b.run("run", "--rm", init, "busybox", "sh", "-c", "exit 42"); r.code != 42 {
			t.Errorf("%s exit 42: got %d (%s)", init, r.code, r.stderr)
		}
		b.fails(127, "not found", "run", "--rm", init, "busybox", "no-such-command")
		b.fails(127, "no such file", "run", "--rm", init, "busybox", "/no/such")
		b.fails(126, "permission denied", "run", "--rm", init, "busybox", "/etc/passwd")
		if r := b.run("run", "--rm", init, "busybox", "sh", "-c", "sleep 5 & kill -9 $!; wait $!"); r.code != 137 {
			t.Errorf("%s killed by SIGKILL: got %d", init, r.code)
		}
	}
	// 137 for the container killed from outside.
	cmd := b.cmd("run", "--rm", "--name", "k", "busybox", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := waitRunning(t, b, "k")
	syscall.Kill(pid, syscall.SIGKILL)
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c != 137 {
		t.Errorf("container SIGKILLed: thinbox exit %d, want 137", c)
	}
}

// waitRunning waits for a container to be running and returns its PID 1.
func waitRunning(t *testing.T, b *box, name string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := b.run("inspect", name)
		if r.code == 0 {
			var rec struct {
				Status string
				Pid    int
			}
			json.Unmarshal([]byte(r.stdout), &rec)
			if rec.Status == "running" {
				return rec.Pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s not running after 30s", name)
	return 0
}

func TestRunSignalsForwarded(t *testing.T) {
	b := newBox(t).withImage()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT} {
		name := "sig" + strings.ToLower(strings.TrimPrefix(sigName(sig), "SIG"))
		cmd := b.cmd("run", "--rm", "--name", name, "busybox", "sh", "-c", "trap 'echo trapped; exit 7' "+sigName(sig)+"; echo ready; while true; do sleep 0.1; done")
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, b, name)
		waitOutput(t, &out, "ready")
		cmd.Process.Signal(sig)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s not forwarded", sigName(sig))
		}
		if cmd.ProcessState.ExitCode() != 7 || !strings.Contains(out.String(), "trapped") {
			t.Errorf("%s: exit %d output %q", sigName(sig), cmd.ProcessState.ExitCode(), out.String())
		}
	}
	// With --init a payload without a handler dies of SIGTERM: 143.
	cmd := b.cmd("run", "--rm", "--name", "plain", "busybox", "sleep", "60")
	cmd.Start()
	waitRunning(t, b, "plain")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c != 143 {
		t.Errorf("sleep under --init after SIGTERM: exit %d, want 143", c)
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGQUIT: "QUIT"}[s]
}

func waitOutput(t *testing.T, out *strings.Builder, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output %q", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunInitReapsZombies(t *testing.T) {
	b := newBox(t).withImage()
	// The subshell exits at once, orphaning sleep to PID 1; once sleep ends, only an init
	// that reaps keeps it from staying a zombie.
	out := b.ok("run", "--rm", "busybox", "sh", "-c", "(sleep 0.2 &); sleep 1.5; ps -o stat,comm | grep -c '^Z' || true")
	if strings.TrimSpace(out) != "0" {
		t.Errorf("zombies with --init: %s", out)
	}
}

func TestRunVolumes(t *testing.T) {
	b := newBox(t).withImage()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in"), []byte("from-host"), 0o644)
	out := b.ok("run", "--rm", "-v", dir+":/data", "busybox", "sh", "-c", "cat /data/in; echo written >/data/out")
	if out != "from-host" {
		t.Errorf("rw volume read: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "written\n" {
		t.Errorf("rw volume write did not reach the host: %q", b)
	}
	r := b.run("run", "--rm", "-v", dir+":/data:ro", "busybox", "sh", "-c", "cat /data/in && echo x >/data/new")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("ro volume writable: code %d stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Errorf("write through a ro volume reached the host")
	}
	// A single file, and a target whose parents don't exist in the image.
	out = b.ok("run", "--rm", "-v", filepath.Join(dir, "in")+":/deep/er/file:ro", "busybox", "cat", "/deep/er/file")
	if out != "from-host" {
		t.Errorf("file volume: %q", out)
	}
	b.fails(125, "source", "run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true")
	b.fails(125, "SRC:DST", "run", "--rm", "-v", "/tmp", "busybox", "true")
	b.fails(125, "absolute", "run", "--rm", "-v", "relative:/x", "busybox", "true")
	b.fails(125, "mode", "run", "--rm", "-v", dir+":/x:rx", "busybox", "true")
}

func TestRunReadOnlyAndLayer(t *testing.T) {
	b := newBox(t).withImage()
	r := b.run("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /newfile")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("--read-only root writable: %d %q", r.code, r.stderr)
	}
	// /dev/shm and /tmp-like mounts stay writable; /etc/hostname was generated.
	b.ok("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /dev/shm/x && grep -q . /etc/hostname")
	// Writes land in the container's layer, never in the image.
	b.ok("run", "--rm", "busybox", "sh", "-c", "echo changed >/etc/thinbox-image; rm /bin/ls; mkdir /newdir")
	out := b.ok("run", "--rm", "busybox", "sh", "-c", "cat /etc/thinbox-image; test -e /bin/ls && echo ls-there; test -e /newdir || echo no-newdir")
	if strings.Contains(out, "changed") || !strings.Contains(out, "ls-there") || !strings.Contains(out, "no-newdir") {
		t.Errorf("a container's writes reached the image:\n%s", out)
	}
}

func TestRunUserWorkdirEnv(t *testing.T) {
	b := newBox(t).withImage()
	out := b.ok("run", "--rm", "-u", "app", "busybox", "sh", "-c", "id -u; id -g; echo $HOME")
	if out != "1000\n1000\n/home/app\n" {
		t.Errorf("-u app: %q", out)
	}
	out = b.ok("run", "--rm", "-u", "123:456", "busybox", "sh", "-c", "id -u; id -g; id -G")
	if out != "123\n456\n456\n" {
		t.Errorf("-u 123:456: %q", out)
	}
	b.fails(125, "--user", "run", "--rm", "-u", "nosuchuser", "busybox", "true")
	out = b.ok("run", "--rm", "-w", "/var/spool/new", "busybox", "pwd")
	if out != "/var/spool/new\n" {
		t.Errorf("-w: %q", out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nFROMFILE=one\n\nOVER=file\n"), 0o644)
	t.Setenv("PASSED", "from-caller")
	odd := `sp ace "q" $HOME %n \back ;semi`
	out = b.ok("run", "--rm", "--env-file", envFile, "-e", "OVER=flag", "-e", "ODD="+odd, "-e", "PASSED", "-e", "LIST=a,b", "busybox", "sh", "-c",
		`printf '%s|' "$FROMFILE" "$OVER" "$ODD" "$PASSED" "$LIST" "$HOSTNAME" "$container"`)
	if want := "one|flag|" + odd + "|from-caller|a,b|"; !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "|thinbox|") {
		t.Errorf("env: %q, want prefix %q", out, want)
	}
	b.fails(125, "--env", "run", "--rm", "-e", "=x", "busybox", "true")
}

func TestRunArgumentsByteExact(t *testing.T) {
	b := newBox(t).withImage()
	args := []string{"two words", `"quoted"`, "$HOME", "%n", `back\slash`, "semi;colon", "new\nline", ""}
	out := b.ok(append([]string{"run", "--rm", "busybox", "sh", "-c", `for a in "$@"; do printf '[%s]' "$a"; done`, "sh"}, args...)...)
	want := ""
	for _, a := range args {
		want += "[" + a + "]"
	}
	if out != want {
		t.Errorf("arguments: %q, want %q", out, want)
	}
}

func TestPsStopRm(t *testing.T) {
	b := newBox(t).withImage()
	cmd := b.cmd("run", "--name", "web", "busybox", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := waitRunning(t, b, "web")
	ps := b.ok("ps")
	if !strings.Contains(ps, "web") || !strings.Contains(ps, "running") || !strings.Contains(ps, "busybox") {
		t.Errorf("ps:\n%s", ps)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(b.ok("ps", "--format", "json")), &list); err != nil || len(list) != 1 || list[0]["pid"].(float64) != float64(pid) {
		t.Errorf("ps --format json: %v %v", list, err)
	}
	b.fails(125, "running", "rm", "web")
	b.fails(125, "in use", "run", "--name", "web", "busybox", "true")
	b.fails(125, "uses it", "image", "rm", "busybox")
	start := time.Now()
	b.ok("stop", "-t", "5", "web")
	cmd.Wait()
	if time.Since(start) > 4*time.Second {
		t.Errorf("stop took %s: SIGTERM was not honoured through --init", time.Since(start))
	}
	if ps := b.ok("ps"); strings.Contains(ps, "web") {
		t.Errorf("stopped container in ps:\n%s", ps)
	}
	if ps := b.ok("ps", "-a"); !strings.Contains(ps, "exited (143)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	b.ok("rm", "web")
	b.fails(125, "no such container", "rm", "web")
	b.fails(125, "no such container", "inspect", "nothere")
	b.fails(125, "no such container", "stop", "nothere")
	b.fails(125, "invalid name", "inspect", "../etc")

	// -t 0 kills at once; rm -f of a running container.
	cmd = b.cmd("run", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; sleep 300")
	cmd.Start()
	waitRunning(t, b, "stubborn")
	b.ok("stop", "-t", "1", "stubborn")
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c != 137 {
		t.Errorf("stop of a TERM-ignoring payload: exit %d, want 137", c)
	}
	b.ok("rm", "stubborn")
	cmd = b.cmd("run", "--name", "forced", "busybox", "sleep", "300")
	cmd.Start()
	waitRunning(t, b, "forced")
	b.ok("rm", "-f", "forced")
	cmd.Wait()
}

// A launcher killed with SIGKILL takes its container with it; the next ps shows it
// exited and rm cleans it up, leaving no mount.
func TestLauncherKilled(t *testing.T) {
	b := newBox(t).withImage()
	cmd := b.cmd("run", "--name", "orphan", "busybox", "sleep", "300")
	cmd.Start()
	pid := waitRunning(t, b, "orphan")
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ps := b.ok("ps", "-a"); !strings.Contains(ps, "orphan") || !strings.Contains(ps, "exited") {
		t.Errorf("ps -a after the launcher was killed:\n%s", ps)
	}
	b.ok("rm", "orphan")
	// --rm containers are collected by the next command.
	cmd = b.cmd("run", "--rm", "--name", "orphan2", "busybox", "sleep", "300")
	cmd.Start()
	waitRunning(t, b, "orphan2")
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	if ps := b.ok("ps", "-a"); strings.Contains(ps, "orphan2") {
		t.Errorf("--rm container survived its launcher's death:\n%s", ps)
	}
}

func TestBadInput(t *testing.T) {
	b := newBox(t).withImage()
	b.fails(125, "IMAGE", "run")
	b.fails(125, "image not found", "run", "--rm", "nosuchimage", "true")
	b.fails(125, "invalid name", "run", "--rm", "--name", "bad/name", "busybox", "true")
	b.fails(125, "invalid name", "run", "--rm", "--name", "x\ny", "busybox", "true")
	b.fails(125, "invalid name", "run", "--rm", "--hostname", "a b", "busybox", "true")
	b.fails(125, "workdir", "run", "--rm", "-w", "rel", "busybox", "true")
	b.fails(125, "flag provided but not defined", "run", "--bogus", "busybox")
	b.fails(125, "contradict", "run", "--init", "--no-init", "busybox")
}

// -t gives the payload a pty as its controlling terminal, with the caller's window
// size; -i carries input; the caller's terminal is restored afterwards.
func TestRunTTY(t *testing.T) {
	b := newBox(t).withImage()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 33, Cols: 111})
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := b.cmd("run", "--rm", "-it", "busybox", "sh", "-c", `tty; stty size; test -t 0 && echo stdin-tty; [ "$(stat -c %t:%T /dev/console)" = "$(stat -c %t:%T /dev/pts/0)" ] && echo console; read line; echo "got:$line"`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return strings.ReplaceAll(out.String(), "\r", "") }
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(text(), "console") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// While the container runs, the caller's terminal is raw: no echo, no line editing.
	during, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if during.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("caller's terminal not raw during the run: lflag %#x", during.Lflag)
	}
	ptmx.Write([]byte("hello\r"))
	if err := cmd.Wait(); err != nil {
		t.Errorf("thinbox run -it: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	got := text()
	for _, want := range []string{"/dev/pts/0\n", "33 111\n", "stdin-tty\n", "console\n", "got:hello\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("tty output lacks %q:\n%q", want, got)
		}
	}
	after, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("caller's terminal not restored: before %+v after %+v", before, after)
	}
}
