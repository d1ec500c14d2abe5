package launcher

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thinbox/thinbox/internal/testenv"
)

// The test binary doubles as the init: Start re-executes it as thinbox-init.
func TestMain(m *testing.M) {
	if IsInit() {
		Init()
	}
	os.Exit(m.Run())
}

// rootfs unpacks the busybox test image once per test into a temp dir.
func rootfs(t *testing.T) string {
	t.Helper()
	testenv.Require(t, testenv.Root, testenv.Namespaces, testenv.Image)
	dir := t.TempDir()
	lower := filepath.Join(dir, "lower")
	if err := os.Mkdir(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xzf", testenv.ImagePath(), "-C", lower).CombinedOutput(); err != nil {
		t.Fatalf("unpack test image: %v: %s", err, out)
	}
	return dir
}

func testConfig(t *testing.T, args ...string) *Config {
	dir := rootfs(t)
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Config{
		Lower: filepath.Join(dir, "lower"), Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"),
		RootFS: filepath.Join(dir, "rootfs"), Hostname: "tbtest", CgroupNS: true,
		Files:   map[string]string{"/etc/hostname": "tbtest\n"},
		Process: Process{Args: args, Env: []string{"PATH=/bin:/sbin", "FOO=bar baz"}, Cwd: "/"},
	}
}

type result struct {
	code           int
	stdout, stderr string
	err            error
}

func run(t *testing.T, cfg *Config) result {
	t.Helper()
	self, _ := os.Executable()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { stdout.ReadFrom(outR); close(done) }()
	go func() { stderr.ReadFrom(errR) }()
	c, err := Start(cfg, Options{Stdout: outW, Stderr: errW, Self: self, DieWithParent: true})
	outW.Close()
	errW.Close()
	if err != nil {
		<-done
		return result{err: err, stdout: stdout.String()}
	}
	code, err := c.Wait()
	<-done
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func TestIsolation(t *testing.T) {
	for _, init := range []bool{false, true} {
		cfg := testConfig(t, "sh", "-c", `echo pid=$$; tr '\0' ' ' </proc/1/cmdline; echo; hostname; cat /etc/hostname; ip -o link 2>/dev/null | cut -d: -f2; cat /sys/class/net/lo/operstate; ls /proc | grep -c '^[0-9]'; ls /dev | tr '\n' ' '; echo; echo "$FOO"; test -e /etc/thinbox-image && echo image; test -e /lower && echo hostleak; cat /proc/self/mountinfo | wc -l`)
		cfg.Init = init
		r := run(t, cfg)
		if r.err != nil || r.code != 0 {
			t.Fatalf("init=%v: code %d err %v stderr %s", init, r.code, r.err, r.stderr)
		}
		lines := strings.Split(r.stdout, "\n")
		// With --init the payload is not PID 1 (the init's threads take the next pids).
		if (lines[0] == "pid=1") == init {
			t.Errorf("init=%v: payload has %s", init, lines[0])
		}
		if init && lines[1] != InitArg0+" " {
			t.Errorf("PID 1 is %q, want the init", lines[1])
		}
		for _, want := range []string{"tbtest\ntbtest\n", "bar baz\n", "image\n", "null ", "ptmx ", "pts ", "shm ", "urandom "} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("init=%v: output lacks %q:\n%s", init, want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\nhostleak\n") {
			t.Errorf("host files visible")
		}
		t.Logf("init=%v:\n%s", init, r.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  error
	}{
		{[]string{"sh", "-c", "exit 42"}, 42, nil},
		{[]string{"sh", "-c", "sleep 10 & kill -9 $!; wait $!"}, 137, nil},
		{[]string{"/no/such/cmd"}, 0, ErrCommandNotFound},
		{[]string{"nosuchcmd"}, 0, ErrCommandNotFound},
		{[]string{"/etc/passwd"}, 0, ErrCommandNotExecutable},
	} {
		for _, init := range []bool{false, true} {
			cfg := testConfig(t, tc.args...)
			cfg.Init = init
			r := run(t, cfg)
			if tc.err != nil {
				if !errors.Is(r.err, tc.err) {
					t.Errorf("%v init=%v: err %v, want %v", tc.args, init, r.err, tc.err)
				}
				continue
			}
			if r.err != nil || r.code != tc.code {
				t.Errorf("%v init=%v: code %d err %v, want %d", tc.args, init, r.code, r.err, tc.code)
			}
		}
	}
}

func TestSignalForwarded(t *testing.T) {
	for _, init := range []bool{false, true} {
		cfg := testConfig(t, "sh", "-c", `trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done`)
		cfg.Init = init
		self, _ := os.Executable()
		outR, outW, _ := os.Pipe()
		c, err := Start(cfg, Options{Stdout: outW, Stderr: os.Stderr, Self: self, DieWithParent: true})
		outW.Close()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := outR.Read(buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("read ready: %q %v", buf, err)
		}
		// What the launcher does when thinbox gets SIGTERM.
		c.sigs <- syscall.SIGTERM
		codeC := make(chan int)
		go func() { code, _ := c.Wait(); codeC <- code }()
		select {
		case code := <-codeC:
			rest := make([]byte, 64)
			n, _ := outR.Read(rest)
			if code != 7 || !strings.Contains(string(rest[:n]), "got-term") {
				t.Errorf("init=%v: code %d output %q", init, code, rest[:n])
			}
		case <-time.After(20 * time.Second):
			c.Signal(syscall.SIGKILL)
			t.Fatalf("init=%v: SIGTERM not delivered", init)
		}
	}
}
