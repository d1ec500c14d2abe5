//go:build integration

package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/thinbox/thinbox/internal/testenv"
)

// box is one isolated thinbox installation for one test: its own image store, layers
// and state, so tests never see each other's containers.
type box struct {
	t             *testing.T
	bin           string
	root, runroot string
}

func newBox(t *testing.T) *box {
	t.Helper()
	testenv.Require(t, testenv.Root, testenv.Namespaces, testenv.Binary, testenv.Image)
	// Layers need a filesystem overlayfs accepts as upper (not overlayfs itself): /var/tmp
	// is on the root filesystem in the guest and on the host.
	dir, err := os.MkdirTemp("/var/tmp", "thinbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	b := &box{t: t, bin: testenv.BinaryPath(), root: filepath.Join(dir, "lib"), runroot: filepath.Join(dir, "run")}
	t.Cleanup(func() {
		b.assertClean()
		os.RemoveAll(dir)
	})
	return b
}

// withImage imports the busybox image as "busybox".
func (b *box) withImage() *box {
	b.t.Helper()
	b.ok("image", "import", "busybox", testenv.ImagePath())
	return b
}

type result struct {
	stdout, stderr string
	code           int
}

func (b *box) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--root", b.root, "--runroot", b.runroot}, args...)
	return exec.Command(b.bin, full...)
}

// run runs thinbox with args and a bound on its time.
func (b *box) run(args ...string) result {
	b.t.Helper()
	return b.runIn(nil, args...)
}

func (b *box) runIn(stdin []byte, args ...string) result {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := b.cmd(args...)
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		b.t.Fatalf("thinbox %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		b.t.Fatalf("thinbox %s: timed out; stderr: %s", strings.Join(args, " "), errb.String())
	}
	return result{out.String(), errb.String(), code}
}

// ok runs thinbox and fails the test unless it exits 0.
func (b *box) ok(args ...string) string {
	b.t.Helper()
	r := b.run(args...)
	if r.code != 0 {
		b.t.Fatalf("thinbox %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs thinbox, expects exit code want and a one-line error containing msg.
func (b *box) fails(want int, msg string, args ...string) result {
	b.t.Helper()
	r := b.run(args...)
	if r.code != want {
		b.t.Fatalf("thinbox %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, want, r.stderr)
	}
	if !strings.Contains(r.stderr, msg) {
		b.t.Errorf("thinbox %s: stderr %q lacks %q", strings.Join(args, " "), r.stderr, msg)
	}
	if n := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n"); n > 0 {
		b.t.Errorf("thinbox %s: error is not one line: %q", strings.Join(args, " "), r.stderr)
	}
	return r
}

// assertClean checks what every test must leave: no mount anywhere under the box, no
// container layer, no record.
func (b *box) assertClean() {
	b.t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Dir(b.root)))
	if err != nil {
		b.t.Fatal(err)
	}
	for _, m := range mounts {
		b.t.Errorf("mount left behind: %s (%s)", m.Mountpoint, m.FSType)
	}
	for _, d := range []string{filepath.Join(b.root, "containers"), filepath.Join(b.runroot, "containers")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			b.t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
		}
	}
}
