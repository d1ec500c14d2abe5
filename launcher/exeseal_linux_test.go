package launcher

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/thinbox/thinbox/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestSealedExeRefusesWrites opens the sealed handle's path for writing, as a process
// of the container would through /proc/1/exe, in both forms.
func TestSealedExeRefusesWrites(t *testing.T) {
	testenv.Require(t, testenv.Root)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for name, seal := range map[string]func(string) (*os.File, error){"overlayfs": sealedOverlay, "memfd": sealedMemfd} {
		f, err := seal(self)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Fd() < exeFdMin {
			t.Errorf("%s: handle is fd %d, below %d", name, f.Fd(), exeFdMin)
		}
		for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND} {
			w, err := os.OpenFile(fdPath(f), flag, 0)
			if err == nil {
				_, err = w.Write([]byte("pwned"))
				w.Close()
			}
			if err == nil || !(errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ETXTBSY)) {
				t.Errorf("%s: write through the handle with flags %#x: %v, want EROFS/EPERM", name, flag, err)
			}
		}
		got, err := os.ReadFile(fdPath(f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: handle does not read back the binary (%v)", name, err)
		}
		f.Close()
	}
}

// BenchmarkSealedExe is the start-up cost of each form. Closing the handle is left
// out: the init's exec holds it, so the overlay's teardown happens when the container
// ends, not while it starts.
func BenchmarkSealedExe(b *testing.B) {
	self, _ := os.Executable()
	for name, seal := range map[string]func(string) (*os.File, error){"overlayfs": sealedOverlay, "memfd": sealedMemfd} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f, err := seal(self)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				f.Close()
				b.StartTimer()
			}
		})
	}
}
