package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/thinbox/thinbox/internal/humanize"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thinbox/thinbox/internal/names"
)

func simpleImage(t testing.TB, content string) []byte {
	return gz(t, tarball(t, dirE("./"), dirE("etc/"), fileE("etc/version", content)))
}

func importOK(t testing.TB, e *env, name, content string, opt ImportOptions) *Image {
	t.Helper()
	img, err := e.store.Import(context.Background(), name, bytes.NewReader(simpleImage(t, content)), opt)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImportExistsAndReplace(t *testing.T) {
	e := newEnv(t)
	old := importOK(t, e, "app", "v1", ImportOptions{})
	_, err := e.store.Import(context.Background(), "app", bytes.NewReader(simpleImage(t, "v2")), ImportOptions{})
	if !errors.Is(err, ErrExists) || err.Error() != "image: import app: image already exists" {
		t.Fatalf("second Import: %v, want ErrExists", err)
	}
	wantFile(t, filepath.Join(old.RootFS, "etc/version"), "v1")

	img := importOK(t, e, "app", "v2", ImportOptions{Replace: true})
	if img.RootFS != old.RootFS || img.Digest == old.Digest {
		t.Errorf("replaced image %+v, old %+v", img, old)
	}
	wantFile(t, filepath.Join(img.RootFS, "etc/version"), "v2")
	if got := e.images(t); !slices.Equal(got, []string{"app"}) {
		t.Errorf("images %v", got)
	}
	e.check(t)
}

func TestImportReplaceInUse(t *testing.T) {
	e := newEnv(t)
	importOK(t, e, "app", "v1", ImportOptions{})
	inUse := func(name string) error { return fmt.Errorf("%w: by container web-1", ErrInUse) }
	_, err := e.store.Import(context.Background(), "app", bytes.NewReader(simpleImage(t, "v2")), ImportOptions{Replace: true, InUse: inUse})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Import: %v, want ErrInUse", err)
	}
	img, err := e.store.Get("app")
	must(t, err)
	wantFile(t, filepath.Join(img.RootFS, "etc/version"), "v1")
	e.check(t)
}

func TestGetListRemove(t *testing.T) {
	e := newEnv(t)
	if imgs, err := e.store.List(); err != nil || len(imgs) != 0 {
		t.Fatalf("List on a new store: %v, %v", imgs, err)
	}
	for _, n := range []string{"zeta", "alpha", "mid.1"} {
		importOK(t, e, n, n, ImportOptions{})
	}
	if got := e.images(t); !slices.Equal(got, []string{"alpha", "mid.1", "zeta"}) {
		t.Errorf("List = %v, want sorted", got)
	}
	if _, err := e.store.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	if err := e.store.Remove("nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(nope) = %v, want ErrNotFound", err)
	}

	inUse := func(name string) error { return fmt.Errorf("%w: by container db", ErrInUse) }
	if err := e.store.Remove("alpha", inUse); !errors.Is(err, ErrInUse) || err.Error() != "image: remove alpha: image in use: by container db" {
		t.Errorf("Remove with inUse = %v", err)
	}
	if _, err := e.store.Get("alpha"); err != nil {
		t.Errorf("alpha gone after a refused Remove: %v", err)
	}
	called := ""
	if err := e.store.Remove("alpha", func(n string) error { called = n; return nil }); err != nil {
		t.Fatal(err)
	}
	if called != "alpha" {
		t.Errorf("inUse called with %q", called)
	}
	if _, err := e.store.Get("alpha"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	if got := e.images(t); !slices.Equal(got, []string{"mid.1", "zeta"}) {
		t.Errorf("List = %v", got)
	}
	e.check(t)
}

func TestInvalidNames(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"", "../x", "a/b", ".tmp-x", "-x", strings.Repeat("x", 64)} {
		_, err := e.store.Import(context.Background(), n, bytes.NewReader(simpleImage(t, "x")), ImportOptions{})
		if !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Import(%q) = %v, want names.ErrInvalid", n, err)
		}
		oneLineErr(t, err)
		if _, err := e.store.Get(n); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Get(%q) = %v", n, err)
		}
		if err := e.store.Remove(n, nil); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Remove(%q) = %v", n, err)
		}
		if _, _, err := e.store.Acquire(n); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Acquire(%q) = %v", n, err)
		}
	}
	if _, err := os.Stat(e.store.Dir()); err == nil {
		t.Errorf("store created for invalid names only")
	}
	e.check(t)
}

// TestAcquireHoldsOffRemove: between Acquire and release, Remove waits; a container
// recorded meanwhile is then seen by its inUse.
func TestAcquireHoldsOffRemove(t *testing.T) {
	e := newEnv(t)
	importOK(t, e, "base", "v1", ImportOptions{})
	img, release, err := e.store.Acquire("base")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "base" || img.RootFS == "" {
		t.Errorf("Acquire = %+v", img)
	}
	var recorded atomic.Bool
	done := make(chan error)
	go func() {
		done <- e.store.Remove("base", func(string) error {
			if recorded.Load() {
				return ErrInUse
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("Remove ran while the image was acquired: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	recorded.Store(true) // the caller records its container, then releases
	release()
	release() // idempotent
	if err := <-done; !errors.Is(err, ErrInUse) {
		t.Errorf("Remove = %v, want ErrInUse", err)
	}
	if _, _, err := e.store.Acquire("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Acquire(gone) = %v", err)
	}
	e.check(t)
}

// slowReader hands out its bytes a little at a time and calls at once it has given n.
type slowReader struct {
	r     io.Reader
	given int
	at    int
	fn    func()
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	n, err := s.r.Read(p[:min(len(p), 4096)])
	s.given += n
	if s.fn != nil && s.given >= s.at {
		s.fn()
		s.fn = nil
	}
	return n, err
}

func TestImportCancel(t *testing.T) {
	e := newEnv(t)
	var ents []ent
	for i := range 200 {
		ents = append(ents, fileE(fmt.Sprintf("d%d/f%d", i%10, i), randomText(4096)))
	}
	in := gz(t, tarball(t, ents...))
	ctx, cancel := context.WithCancel(context.Background())
	r := &slowReader{r: bytes.NewReader(in), at: len(in) / 2, fn: cancel}
	_, err := e.store.Import(ctx, "cancelled", r, ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import = %v, want context.Canceled", err)
	}
	if r.given >= len(in) {
		t.Errorf("Import read all input after cancellation")
	}
	oneLineErr(t, err)
	if got := e.images(t); len(got) != 0 {
		t.Errorf("images %v", got)
	}
	e.check(t)
}

// TestImportCancelBlockedReader: a pipe with nothing in it blocks Read; the context
// must still stop the import.
func TestImportCancelBlockedReader(t *testing.T) {
	e := newEnv(t)
	pr, pw, err := os.Pipe()
	must(t, err)
	defer pr.Close()
	defer pw.Close()
	in := gz(t, tarball(t, fileE("a", randomText(1<<20))))
	go pw.Write(in[:len(in)/2]) // more than the pipe buffer holds: the writer blocks too
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.store.Import(ctx, "blocked", pr, ImportOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Import = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Import did not return after its context ended")
	}
	e.check(t)
}

// TestSweepLeftovers: an import killed with SIGKILL leaves its temp directory,
// unlocked; the next Import, List or Remove deletes it, but never a live import's.
func TestSweepLeftovers(t *testing.T) {
	e := newEnv(t)
	must(t, os.MkdirAll(e.store.Dir(), 0o700))
	stale := func(name string) string {
		p := filepath.Join(e.store.Dir(), tmpPrefix+name+"-123456")
		must(t, os.MkdirAll(filepath.Join(p, "rootfs/ro/sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(p, "rootfs/ro/sub/f"), []byte("x"), 0o644))
		// A hostile half image: the sweep must delete the links, not follow them.
		must(t, os.Symlink(e.sentinel, filepath.Join(p, "rootfs/evil")))
		must(t, os.Symlink("../../../../sentinel/file", filepath.Join(p, "rootfs/evil2")))
		must(t, os.Chmod(filepath.Join(p, "rootfs/ro"), 0o555))
		return p
	}
	live := filepath.Join(e.store.Dir(), tmpPrefix+"live-999")
	must(t, os.Mkdir(live, 0o700))
	lock, ok, err := lockDir(live)
	if !ok {
		t.Fatal(err)
	}

	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"List", func() error { _, err := e.store.List(); return err }},
		{"Import", func() error {
			_, err := e.store.Import(context.Background(), "fresh", bytes.NewReader(simpleImage(t, "x")), ImportOptions{Replace: true})
			return err
		}},
		{"Remove", func() error { return e.store.Remove("fresh", nil) }},
	} {
		stale("killed")
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if got := tempDirs(t, e.store.Dir()); !slices.Equal(got, []string{tmpPrefix + "live-999"}) {
			t.Errorf("after %s: temp directories %v, want only the live one", op.name, got)
		}
	}
	lock.Close()
	if _, err := e.store.List(); err != nil {
		t.Fatal(err)
	}
	e.check(t)
}

// TestSweepAfterSIGKILL kills a real import (a child process reading a tarball from a
// pipe that never ends) and checks that its temp directory survives the sweep while
// the import lives and is swept once it is dead.
func TestSweepAfterSIGKILL(t *testing.T) {
	if os.Getenv("THINBOX_IMAGE_HELPER") == "import-forever" {
		_, err := NewStore(os.Getenv("THINBOX_IMAGE_STORE")).Import(context.Background(), "killed", os.Stdin, ImportOptions{})
		fmt.Fprintln(os.Stderr, "import returned:", err)
		os.Exit(1)
	}
	e := newEnv(t)
	var ents []ent
	for i := range 100 {
		ents = append(ents, fileE(fmt.Sprintf("f%03d", i), randomText(8192)))
	}
	in := tarball(t, ents...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepAfterSIGKILL$")
	cmd.Env = append(os.Environ(), "THINBOX_IMAGE_HELPER=import-forever", "THINBOX_IMAGE_STORE="+e.store.Dir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	defer stdin.Close()
	go stdin.Write(in[:len(in)/2])

	deadline := time.Now().Add(20 * time.Second)
	for {
		tmps := tempDirs(t, e.store.Dir())
		if len(tmps) == 1 {
			if _, err := os.Stat(filepath.Join(e.store.Dir(), tmps[0], "rootfs", "f010")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the child import made no progress: %v", tmps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.images(t) // sweeps, but the import is alive
	if got := tempDirs(t, e.store.Dir()); len(got) != 1 {
		t.Fatalf("live import's temp directory swept: %v", got)
	}
	must(t, cmd.Process.Kill())
	cmd.Wait()
	if got := tempDirs(t, e.store.Dir()); len(got) != 1 {
		t.Fatalf("SIGKILL left %v, want its temp directory", got)
	}
	if got := e.images(t); len(got) != 0 {
		t.Errorf("images %v", got)
	}
	e.check(t) // no temp directory left after the List above
}

// TestSweepWaitsForAcquire: List does not block behind an Acquire, and leaves the
// leftovers for later rather than waiting.
func TestSweepWaitsForAcquire(t *testing.T) {
	e := newEnv(t)
	importOK(t, e, "base", "v1", ImportOptions{})
	stale := filepath.Join(e.store.Dir(), tmpPrefix+"killed-1")
	must(t, os.Mkdir(stale, 0o700))
	_, release, err := e.store.Acquire("base")
	must(t, err)
	if got := e.images(t); !slices.Equal(got, []string{"base"}) {
		t.Errorf("List = %v", got)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("swept while the store lock was held shared: %v", err)
	}
	release()
	e.images(t)
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("leftover not swept")
	}
	e.check(t)
}

func TestConcurrentImports(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replace=%v", replace), func(t *testing.T) {
			e := newEnv(t)
			const n = 6
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					var ents []ent
					for j := range 50 {
						ents = append(ents, fileE(fmt.Sprintf("f%d", j), fmt.Sprintf("import %d\n", i)))
					}
					_, errs[i] = e.store.Import(context.Background(), "same", bytes.NewReader(gz(t, tarball(t, ents...))), ImportOptions{Replace: replace})
				})
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !replace && errors.Is(err, ErrExists):
				default:
					t.Errorf("Import: %v", err)
				}
			}
			if want := map[bool]int{false: 1, true: n}[replace]; ok != want {
				t.Errorf("%d imports succeeded, want %d", ok, want)
			}
			// Whichever won, the image is one import's, whole.
			img, err := e.store.Get("same")
			must(t, err)
			first := readFile(t, filepath.Join(img.RootFS, "f0"))
			for j := range 50 {
				if got := readFile(t, filepath.Join(img.RootFS, fmt.Sprintf("f%d", j))); got != first {
					t.Errorf("f%d = %q, f0 = %q: a mixed image", j, got, first)
				}
			}
			e.check(t)
		})
	}
}

func TestImportProgress(t *testing.T) {
	e := newEnv(t)
	in := gz(t, tarball(t, fileE("big", randomText(2<<20))))
	var out bytes.Buffer
	r := &slowReader{r: bytes.NewReader(in)}
	_, err := e.store.Import(context.Background(), "p", r, ImportOptions{Progress: &out, Total: int64(len(in))})
	must(t, err)
	s := out.String()
	last := strings.TrimRight(s, " \n")
	if !strings.HasPrefix(s, "\rimport p: ") || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !strings.HasSuffix(last, ", done") {
		t.Errorf("progress output %q", s)
	}
	if !strings.Contains(s, "of "+humanize.Bytes(uint64(len(in)))) || !strings.Contains(s, "/s") {
		t.Errorf("progress shows no total or rate: %q", s)
	}
	if n := strings.Count(s, "\r"); n < 2 {
		t.Errorf("progress drew %d times, want updates while reading", n)
	}

	out.Reset()
	_, err = e.store.Import(context.Background(), "q", bytes.NewReader([]byte("not a tarball at all, not even close to 512 bytes")), ImportOptions{Progress: &out})
	if err == nil || out.Len() != 0 {
		t.Errorf("progress for an input refused at once: %q, %v", out.String(), err)
	}
	e.check(t)
}
