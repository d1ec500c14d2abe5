package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thinbox/thinbox/internal/testenv"
)

// These run the real probes against the machine the tests run on.

func TestHostUname(t *testing.T) {
	rel, machine, err := NewHost().Uname()
	if err != nil || rel == "" || machine == "" {
		t.Fatalf("Uname() = %q, %q, %v", rel, machine, err)
	}
	if _, ok := kernelVersion(rel); !ok {
		t.Errorf("cannot parse this kernel's release %q", rel)
	}
}

// trueBinary is what the namespace probe runs in tests: the test binary itself does
// not understand --version.
func trueBinary(t *testing.T) string {
	t.Helper()
	testenv.Require(t, testenv.Command("true"))
	p, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostUnshare(t *testing.T) {
	testenv.Require(t, testenv.Root, testenv.Namespaces)
	h := &Host{Exec: []string{trueBinary(t)}}
	for _, ns := range append(append([]Namespace{}, Required...), UserNS) {
		if err := h.Unshare(context.Background(), ns); err != nil {
			t.Errorf("Unshare(%s): %v", ns, err)
		}
	}
	if err := h.Unshare(context.Background(), "bogus"); err == nil {
		t.Error("Unshare(bogus) succeeded")
	}
}

func TestHostMountOverlay(t *testing.T) {
	testenv.Require(t, testenv.Root, testenv.Namespaces)
	dir := t.TempDir()
	before := mountCount(t)
	if err := NewHost().MountOverlay(context.Background(), dir); err != nil {
		t.Fatalf("MountOverlay(%s): %v", dir, err)
	}
	// The mount lived in a private namespace: this one never saw it, and the
	// scratch directory is gone.
	if after := mountCount(t); after != before {
		t.Errorf("mounts in this namespace went from %d to %d", before, after)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".thinbox-doctor-*"))
	if len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

func mountCount(t *testing.T) int {
	t.Helper()
	e := &Env{Root: "/"}
	ms, err := e.mounts()
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func TestHostFreeAndCaps(t *testing.T) {
	h := NewHost()
	dir := t.TempDir()
	if free, err := h.Free(dir); err != nil || free == 0 {
		t.Errorf("Free(%s) = %d, %v", dir, free, err)
	}
	f := filepath.Join(dir, "plain")
	if err := os.WriteFile(f, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if caps, err := h.FileCaps(f); err != nil || caps {
		t.Errorf("FileCaps(plain file) = %v, %v", caps, err)
	}
}

func TestHostDpkgArch(t *testing.T) {
	testenv.Require(t, testenv.Command("dpkg"))
	a, err := NewHost().DpkgArch(context.Background())
	if err != nil || a == "" {
		t.Fatalf("DpkgArch() = %q, %v", a, err)
	}
}

// TestHostRun runs every check on this machine as root: whatever the machine lacks
// may WARN, but the namespaces and overlayfs thinbox's own tests use must be OK.
func TestHostRun(t *testing.T) {
	testenv.Require(t, testenv.Root, testenv.Namespaces)
	h := &Host{Exec: []string{trueBinary(t)}}
	rs := Run(context.Background(), &Env{Root: "/", Probe: h, Euid: os.Geteuid(), User: "root", Store: t.TempDir()})
	for _, r := range rs {
		t.Logf("%-4s %-18s %s; fix: %s", r.Status, r.Check, r.Detail, r.Fix)
	}
	for _, c := range []string{"kernel", "namespaces", "overlayfs"} {
		if r := result(t, rs, c); r.Status != OK {
			t.Errorf("%s is %s on a machine that runs thinbox's tests: %s", c, r.Status, r.Detail)
		}
	}
}
