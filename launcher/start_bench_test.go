package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thinbox/thinbox/internal/testenv"
)

// BenchmarkStart is the launcher's share of a container start, without the CLI, the
// record or the layer bookkeeping: Start (clone into new namespaces, re-exec of the
// init, overlay and the API file systems, pivot_root, exec) and Wait for /bin/true,
// with and without the minimal init. benchmarks/ compares whole starts with peers;
// this isolates the launcher for profiling:
//
//	THINBOX_TEST_IMAGE=out/busybox-amd64.tar.gz go test -run '^$' -bench Start \
//	    -cpuprofile cpu.prof ./launcher
func BenchmarkStart(b *testing.B) {
	testenv.Require(b, testenv.Root, testenv.Namespaces, testenv.Image)
	dir := b.TempDir()
	lower := filepath.Join(dir, "lower")
	for _, d := range []string{"lower", "upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if out, err := exec.Command("tar", "-xzf", testenv.ImagePath(), "-C", lower).CombinedOutput(); err != nil {
		b.Fatalf("unpack test image: %v: %s", err, out)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	for _, v := range []struct {
		name string
		init bool
	}{{"init", true}, {"no-init", false}} {
		b.Run(v.name, func(b *testing.B) {
			// The upper layer is reused: each run rewrites the same /etc files in it, and
			// the rootfs mount lives only in the container's own mount namespace.
			cfg := &Config{
				Lower: lower, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"),
				RootFS: filepath.Join(dir, "rootfs"), Hostname: "bench", CgroupNS: true, Init: v.init,
				Files:   map[string]string{"/etc/hostname": "bench\n"},
				Process: Process{Args: []string{"/bin/true"}, Env: []string{"PATH=/bin:/sbin"}, Cwd: "/"},
			}
			for b.Loop() {
				c, err := Start(cfg, Options{Stdout: devnull, Stderr: devnull, DieWithParent: true})
				if err != nil {
					b.Fatal(err)
				}
				if code, err := c.Wait(); err != nil || code != 0 {
					b.Fatalf("wait: exit %d, %v", code, err)
				}
			}
		})
	}
}
