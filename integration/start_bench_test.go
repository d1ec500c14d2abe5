//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thinbox/thinbox/internal/testenv"
)

// BenchmarkRunTrue times the whole start path through the built binary, the way a user
// pays for it: `thinbox run --rm busybox /bin/true`, from exec of thinbox to its exit
// (CLI, record, layer, namespaces, mounts, pivot_root, exec, teardown). Where systemd is
// PID 1 with cgroup v2 it includes the transient scope. The comparison with peers and
// the goals are in benchmarks/ (make bench); this is for finding regressions:
//
//	THINBOX_BIN=out/thinbox-amd64 THINBOX_TEST_IMAGE=out/busybox-amd64.tar.gz \
//	    go test -tags integration -run '^$' -bench RunTrue ./integration
func BenchmarkRunTrue(b *testing.B) {
	testenv.Require(b, testenv.Root, testenv.Namespaces, testenv.Binary, testenv.Image)
	// Layers need a file system overlayfs accepts as upper: /var/tmp, as in the tests.
	dir, err := os.MkdirTemp("/var/tmp", "thinbox-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	base := []string{"--root", filepath.Join(dir, "lib"), "--runroot", filepath.Join(dir, "run")}
	bin := testenv.BinaryPath()
	if out, err := exec.Command(bin, append(base, "image", "import", "busybox", testenv.ImagePath())...).CombinedOutput(); err != nil {
		b.Fatalf("image import: %v: %s", err, out)
	}
	for _, v := range []struct {
		name  string
		flags []string
	}{
		{"init", nil},
		{"no-init", []string{"--no-init"}},
	} {
		args := append(append(append(base[:len(base):len(base)], "run", "--rm"), v.flags...), "busybox", "/bin/true")
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					b.Fatalf("thinbox %v: %v: %s", args, err, out)
				}
			}
		})
	}
}
