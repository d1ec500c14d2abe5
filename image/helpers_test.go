package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ent is one tar entry to build; only what a test sets matters.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	mtime, atime     time.Time
	pax              map[string]string
	major, minor     int64
	format           tar.Format
}

var epoch = time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)

func dirE(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func fileE(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func symE(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func linkE(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}
func nodeE(name string, typ byte, major, minor int64) ent {
	return ent{name: name, typ: typ, mode: 0o666, major: major, minor: minor}
}

func tarball(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mt := e.mtime
		if mt.IsZero() {
			mt = epoch
		}
		hdr := &tar.Header{
			Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: mt, AccessTime: e.atime, Size: int64(len(e.body)), PAXRecords: e.pax, Devmajor: e.major, Devminor: e.minor,
			Format: e.format,
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("build tar: %s: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xzc(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

// env is a store next to a sentinel tree that no import may touch.
type env struct {
	base, sentinel string
	store          *Store
	before         map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	base := t.TempDir()
	// Registered after TempDir, so it runs first: a non-root user cannot delete the
	// children of a read-only directory an image made.
	t.Cleanup(func() { removeAll(base) })
	e := &env{base: base, sentinel: filepath.Join(base, "sentinel"), store: NewStore(filepath.Join(base, "store"))}
	must(t, os.MkdirAll(filepath.Join(e.sentinel, "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.sentinel, "file"), []byte("host data\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.sentinel, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.sentinel, "dir", "x"), []byte("x\n"), 0o600))
	must(t, os.Symlink("file", filepath.Join(e.sentinel, "link")))
	e.before = snapshot(t, e.sentinel)
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot records every inode under dir without following symlinks: type, mode,
// owner, size, mtime, content hash, link target.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%v %d:%d %d %d", fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			v += " " + hex.EncodeToString(h[:])
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check asserts the invariants every import must keep, whatever the input: the
// sentinel is byte-identical, nothing appeared next to the store, the store holds no
// temp directory, and every image in it is complete.
func (e *env) check(t testing.TB) {
	t.Helper()
	after := snapshot(t, e.sentinel)
	for p, v := range e.before {
		if after[p] != v {
			t.Errorf("sentinel changed: %s: was %q, now %q", p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := e.before[p]; !ok {
			t.Errorf("sentinel gained %s (%s)", p, v)
		}
	}
	ents, err := os.ReadDir(e.base)
	must(t, err)
	for _, d := range ents {
		if d.Name() != "sentinel" && d.Name() != "store" {
			t.Errorf("written next to the store: %s", d.Name())
		}
	}
	ents, err = os.ReadDir(e.store.Dir())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	must(t, err)
	for _, d := range ents {
		switch {
		case d.Name() == lockFile:
		case strings.HasPrefix(d.Name(), tmpPrefix):
			t.Errorf("temp directory left in the store: %s", d.Name())
		default:
			if _, err := e.store.Get(d.Name()); err != nil {
				t.Errorf("half image in the store: %s: %v", d.Name(), err)
			}
			if fi, err := os.Stat(filepath.Join(e.store.Dir(), d.Name(), rootfsDir)); err != nil || !fi.IsDir() {
				t.Errorf("image %s has no rootfs: %v", d.Name(), err)
			}
		}
	}
}

// images lists the names of the images in the store.
func (e *env) images(t testing.TB) []string {
	t.Helper()
	imgs, err := e.store.List()
	must(t, err)
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstatMode(t testing.TB, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func oneLineErr(t testing.TB, err error) {
	t.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error spans lines: %q", err)
	}
}

func tempDirs(t testing.TB, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), tmpPrefix) {
			out = append(out, d.Name())
		}
	}
	slices.Sort(out)
	return out
}
