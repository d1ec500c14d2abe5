//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarball(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	p := filepath.Join(t.TempDir(), "image.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// An Alpine-style tarball: a "./" first entry and absolute symlinks to /bin/busybox.
// It imports and runs, with the symlinks resolved inside the container's root.
func TestImportAlpineStyle(t *testing.T) {
	b := newBox(t)
	bb := filepath.Join(t.TempDir(), "bb")
	os.MkdirAll(bb, 0o755)
	// Take busybox from the test image itself.
	b.ok("image", "import", "src", os.Getenv("THINBOX_TEST_IMAGE"))
	busybox, err := os.ReadFile(filepath.Join(b.root, "images", "src", "rootfs", "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	p := tarball(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./bin/", typ: tar.TypeDir},
		entry{name: "./bin/busybox", typ: tar.TypeReg, body: string(busybox)},
		entry{name: "./bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		entry{name: "./bin/cat", typ: tar.TypeSymlink, link: "/bin/busybox"},
		entry{name: "./etc/", typ: tar.TypeDir},
		entry{name: "./etc/alpine-release", typ: tar.TypeReg, body: "3.20.0\n"},
	)
	b.ok("image", "import", "alpine", p)
	if out := b.ok("run", "--rm", "alpine", "/bin/sh", "-c", "cat /etc/alpine-release"); out != "3.20.0\n" {
		t.Errorf("alpine-style image: %q", out)
	}
	b.ok("image", "rm", "src", "alpine")
}

// Hostile tarballs through the CLI: refused with one line, exit 125, nothing outside
// the store touched, no image left. (The image package's own tests cover 56 cases.)
func TestImportHostile(t *testing.T) {
	b := newBox(t)
	outside := filepath.Join(filepath.Dir(b.root), "outside")
	os.MkdirAll(outside, 0o755)
	cases := map[string][]entry{
		"dotdot":      {{name: "../../outside/pwned", typ: tar.TypeReg, body: "x"}},
		"symlink-out": {{name: "evil", typ: tar.TypeSymlink, link: outside}, {name: "evil/pwned", typ: tar.TypeReg, body: "x"}},
		"hardlink":    {{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}},
	}
	for name, entries := range cases {
		r := b.fails(125, "image: import "+name, "image", "import", name, tarball(t, entries...))
		_ = r
	}
	notTar := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notTar, []byte(strings.Repeat("hello ", 200)), 0o644)
	b.fails(125, "not a tar archive", "image", "import", "notes", notTar)
	trunc := tarball(t, entry{name: "big", typ: tar.TypeReg, body: strings.Repeat("y", 100000)})
	data, _ := os.ReadFile(trunc)
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	b.fails(125, "image: import trunc", "image", "import", "trunc", trunc)
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a hostile import wrote outside the store: %v", ents)
	}
	if out := b.ok("image", "ls"); strings.Count(out, "\n") != 1 {
		t.Errorf("a refused import left an image:\n%s", out)
	}
	entries, _ := os.ReadDir(filepath.Join(b.root, "images"))
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("left in the store: %s", e.Name())
		}
	}
	// Re-importing a name needs --replace.
	b.ok("image", "import", "bb", os.Getenv("THINBOX_TEST_IMAGE"))
	b.fails(125, "exists", "image", "import", "bb", os.Getenv("THINBOX_TEST_IMAGE"))
	b.ok("image", "import", "--replace", "bb", os.Getenv("THINBOX_TEST_IMAGE"))
	b.ok("image", "rm", "bb")
	b.fails(125, "not found", "image", "rm", "bb")
}
