package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinbox/thinbox/internal/testenv"
)

// up climbs from an image's rootfs (STORE/NAME/rootfs, or STORE/.tmp-NAME-X/rootfs
// while importing) to the directory holding the store and the sentinel.
const up = "../../.."

// hostileCase is a tarball that tries to write outside the root, or is broken. Each
// is either refused (refuse: a substring of the one-line error, which must wrap
// ErrBadArchive) or neutralised (refuse == "": the import succeeds and check looks at
// where things landed inside the root). Either way env.check proves nothing outside
// the store changed.
type hostileCase struct {
	name   string
	input  func(t testing.TB, e *env) []byte
	refuse string
	check  func(t *testing.T, e *env, root string)
	root   bool // needs euid 0
}

func tarOf(ents ...ent) func(testing.TB, *env) []byte {
	return func(t testing.TB, _ *env) []byte { return tarball(t, ents...) }
}

func hostileCases() []hostileCase {
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	validTar := func(t testing.TB) []byte {
		return tarball(t, dirE("d/"), fileE("d/big", big), fileE("d/after", "after\n"))
	}
	return []hostileCase{
		// Lexical escapes.
		{name: "dotdot", input: tarOf(fileE("../x", "pwned")), refuse: `entry "../x": path escapes the image root`},
		{name: "dotdot-inner", input: tarOf(fileE("a/../../x", "pwned")), refuse: "escapes the image root"},
		{name: "dotdot-after-slash", input: tarOf(fileE("/../x", "pwned")), refuse: "escapes the image root"},
		{name: "dotdot-to-sentinel", input: tarOf(fileE(up+"/sentinel/file", "pwned")), refuse: "escapes the image root"},
		{name: "dotdot-dir", input: tarOf(dirE("../../evil/")), refuse: "escapes the image root"},
		{
			name:  "dotdot-inside",
			input: tarOf(dirE("a/"), fileE("a/../b", "fine")),
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "b"), "fine") },
		},
		// Absolute names are relative to the root, as with GNU tar.
		{
			name: "absolute-name",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, fileE(e.sentinel+"/file", "pwned"), fileE("/etc/thinbox-escape-test", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, e.sentinel, "file"), "pwned")
				wantFile(t, filepath.Join(root, "etc/thinbox-escape-test"), "pwned")
				if _, err := os.Lstat("/etc/thinbox-escape-test"); err == nil {
					t.Errorf("/etc/thinbox-escape-test written on the host")
				}
			},
		},
		// Symlinked directories pointing out are resolved inside the root.
		{
			name: "symlink-dir-absolute-missing",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("evil", e.sentinel), fileE("evil/file", "pwned"))
			},
			refuse: `"evil" is a symlink to a directory that is not in the image`,
		},
		{
			name: "symlink-dir-absolute",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, fileE(e.sentinel+"/keep", ""), symE("evil", e.sentinel), fileE("evil/file", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, e.sentinel, "file"), "pwned")
			},
		},
		{
			name:  "symlink-dir-etc",
			input: tarOf(dirE("etc/"), symE("evil", "/etc"), fileE("evil/passwd", "pwned")),
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, "etc/passwd"), "pwned")
				if lstatMode(t, filepath.Join(root, "evil"))&fs.ModeSymlink == 0 {
					t.Errorf("evil is no longer a symlink")
				}
			},
		},
		{
			name:  "symlink-dir-relative-out",
			input: tarOf(symE("evil", "../../.."), fileE("evil/pwned", "pwned")),
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "pwned"), "pwned") },
		},
		{
			name:   "symlink-dir-relative-to-sentinel",
			input:  tarOf(symE("evil", up+"/sentinel"), fileE("evil/file", "pwned")),
			refuse: "not in the image",
		},
		{
			name:  "symlink-dir-relative-to-sentinel-in-image",
			input: tarOf(dirE("sentinel/"), symE("evil", up+"/sentinel"), fileE("evil/file", "pwned")),
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, "sentinel/file"), "pwned")
			},
		},
		{
			name: "symlink-nested-escape",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, dirE("a/b/"), symE("a/b/evil", "../../../../../../../.."+e.sentinel), fileE("a/b/evil/dir/x", "pwned"))
			},
			refuse: "not in the image",
		},
		{
			name:  "symlink-dir-then-dir",
			input: tarOf(dirE("etc/"), symE("evil", "/etc"), dirE("evil/sub/"), fileE("evil/sub/f", "x")),
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "etc/sub/f"), "x") },
		},
		// The last component is never followed.
		{
			name: "symlink-replaced-by-file-absolute",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("f", e.sentinel+"/file"), fileE("f", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "f"), "pwned") },
		},
		{
			name:  "symlink-replaced-by-file-relative",
			input: tarOf(symE("f", up+"/sentinel/file"), fileE("f", "pwned")),
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "f"), "pwned") },
		},
		{
			name: "symlink-replaced-by-dir",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("d", e.sentinel), dirE("d/"), fileE("d/file", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) {
				if !lstatMode(t, filepath.Join(root, "d")).IsDir() {
					t.Errorf("d is not a directory")
				}
				wantFile(t, filepath.Join(root, "d/file"), "pwned")
			},
		},
		{
			name: "symlink-replaced-by-fifo",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("p", e.sentinel+"/file"), nodeE("p", tar.TypeFifo, 0, 0))
			},
			check: func(t *testing.T, e *env, root string) {
				if lstatMode(t, filepath.Join(root, "p"))&fs.ModeNamedPipe == 0 {
					t.Errorf("p is not a fifo")
				}
			},
		},
		{
			name: "symlink-replaced-by-dir-symlink-file",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("f", e.sentinel+"/dir"), symE("f", up+"/sentinel/file"), fileE("f", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "f"), "pwned") },
		},
		// Chains and loops: no hang, no escape.
		{
			name: "symlink-chain",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("c1", "c2"), symE("c2", "/c3"), symE("c3", e.sentinel), fileE("c1/file", "pwned"))
			},
			refuse: "not in the image",
		},
		{
			name: "symlink-chain-in-image",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, dirE(e.sentinel+"/"), symE("c1", "c2"), symE("c2", "/c3"), symE("c3", up+"/"+e.sentinel), fileE("c1/file", "pwned"))
			},
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, e.sentinel, "file"), "pwned")
			},
		},
		{name: "symlink-loop", input: tarOf(symE("l1", "l2"), symE("l2", "l1"), fileE("l1/x", "x")), refuse: "too many levels of symbolic links"},
		{name: "symlink-self-loop", input: tarOf(symE("s", "s"), fileE("s/x", "x")), refuse: "too many levels of symbolic links"},
		{name: "symlink-loop-absolute", input: tarOf(symE("s", "/s/"), dirE("s/d/")), refuse: "too many levels of symbolic links"},
		{
			name:  "symlink-dot",
			input: tarOf(symE("a", "."), fileE("a/a/a/a/x", "x")),
			check: func(t *testing.T, e *env, root string) { wantFile(t, filepath.Join(root, "x"), "x") },
		},
		// Hard links only to entries inside the root.
		{name: "hardlink-host-absolute", input: tarOf(linkE("h", "/etc/passwd")), refuse: `hard link target "etc/passwd" is not in the image`},
		{
			name: "hardlink-sentinel-absolute",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, linkE("h", e.sentinel+"/file"))
			},
			refuse: "is not in the image",
		},
		{name: "hardlink-dotdot", input: tarOf(linkE("h", up+"/sentinel/file")), refuse: `hard link to "../../../sentinel/file": path escapes the image root`},
		{
			name: "hardlink-through-symlinked-dir",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("evil", e.sentinel), linkE("h", "evil/file"))
			},
			refuse: "is not in the image",
		},
		{
			name:   "hardlink-through-relative-symlink",
			input:  tarOf(symE("evil", up+"/sentinel"), linkE("h", "evil/file")),
			refuse: "is not in the image",
		},
		{
			name: "hardlink-to-symlink",
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, symE("s", e.sentinel+"/file"), linkE("h", "s"), fileE("h", "pwned"), linkE("h2", "s"))
			},
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, "h"), "pwned")
				if l, _ := os.Readlink(filepath.Join(root, "h2")); l == "" {
					t.Errorf("h2 should be the symlink itself")
				}
			},
		},
		{
			name:  "hardlink-then-overwrite",
			input: tarOf(fileE("f", "orig"), linkE("h", "f"), fileE("h", "new")),
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, "f"), "orig")
				wantFile(t, filepath.Join(root, "h"), "new")
			},
		},
		{name: "hardlink-to-dir", input: tarOf(dirE("d/"), linkE("h", "d")), refuse: `hard link target "d" is a directory`},
		{name: "hardlink-missing", input: tarOf(linkE("h", "nope")), refuse: "is not in the image"},
		{name: "hardlink-to-root", input: tarOf(linkE("h", "./")), refuse: "hard link to the image root"},
		// Names.
		{
			name:  "long-name",
			input: tarOf(fileE(strings.Repeat(strings.Repeat("d", 100)+"/", 20)+"f", "long")),
			check: func(t *testing.T, e *env, root string) {
				wantFile(t, filepath.Join(root, strings.Repeat(strings.Repeat("d", 100)+"/", 20)+"f"), "long")
			},
		},
		{name: "long-component", input: tarOf(fileE(strings.Repeat("c", 300), "x")), refuse: "name too long"},
		{name: "long-path", input: tarOf(fileE(strings.Repeat(strings.Repeat("p", 100)+"/", 45)+"f", "x")), refuse: "name too long"},
		{name: "root-as-file", input: tarOf(fileE(".", "x")), refuse: "names the image root but is not a directory"},
		{name: "empty-symlink-target", input: tarOf(symE("s", "")), refuse: "symlink with an empty target"},
		// Conflicts inside the archive.
		{name: "file-over-nonempty-dir", input: tarOf(dirE("d/"), fileE("d/x", "x"), fileE("d", "x")), refuse: "replaces a directory that is not empty"},
		{name: "parent-is-file", input: tarOf(fileE("f", "x"), fileE("f/x", "x")), refuse: "a parent is not a directory"},
		// Device nodes through a symlinked directory (root only: devices are skipped otherwise).
		{
			name: "device-through-symlink",
			root: true,
			input: func(t testing.TB, e *env) []byte {
				return tarball(t, dirE(e.sentinel+"/"), symE("evil", e.sentinel), nodeE("evil/null", tar.TypeChar, 1, 3))
			},
			check: func(t *testing.T, e *env, root string) {
				if lstatMode(t, filepath.Join(root, e.sentinel, "null"))&fs.ModeCharDevice == 0 {
					t.Errorf("null is not a char device")
				}
			},
		},
		// Broken inputs.
		{
			name: "truncated-tar",
			input: func(t testing.TB, e *env) []byte {
				return validTar(t)[:64<<10]
			},
			refuse: `truncated tar archive: unexpected EOF`,
		},
		{
			name: "truncated-tar-header",
			input: func(t testing.TB, e *env) []byte {
				b := validTar(t)
				return b[:512+len(big)+512+100] // inside the header of d/after
			},
			refuse: "truncated tar archive",
		},
		{
			name: "truncated-gzip",
			input: func(t testing.TB, e *env) []byte {
				b := gz(t, validTar(t))
				return b[:len(b)/2]
			},
			refuse: "truncated gzip data",
		},
		{
			name: "truncated-gzip-trailer",
			input: func(t testing.TB, e *env) []byte {
				b := gz(t, validTar(t))
				return b[:len(b)-4]
			},
			refuse: "truncated gzip data",
		},
		{
			name: "corrupt-gzip-checksum",
			input: func(t testing.TB, e *env) []byte {
				b := gz(t, validTar(t))
				b[len(b)-8] ^= 0xff // CRC-32, checked only at the end of the stream
				return b
			},
			refuse: "corrupt gzip data",
		},
		{
			name: "corrupt-gzip-data",
			input: func(t testing.TB, e *env) []byte {
				b := gz(t, tarball(t, fileE("rand", randomText(256<<10))))
				for i := len(b) / 3; i < len(b)/3+64; i++ {
					b[i] ^= 0x5a
				}
				return b
			},
			refuse: "gzip data",
		},
		{
			name: "truncated-xz",
			input: func(t testing.TB, e *env) []byte {
				b := xzc(t, validTar(t))
				return b[:len(b)-10]
			},
			refuse: "xz data",
		},
		{
			name: "truncated-zstd",
			input: func(t testing.TB, e *env) []byte {
				b := zst(t, validTar(t))
				return b[:len(b)-10]
			},
			refuse: "zstd data",
		},
		{name: "not-tar", input: func(testing.TB, *env) []byte { return bytes.Repeat([]byte("hello world\n"), 100) }, refuse: `not a tar archive (input starts with "hello wo")`},
		{name: "zip", input: func(testing.TB, *env) []byte { return append([]byte("PK\x03\x04"), make([]byte, 600)...) }, refuse: "a zip archive"},
		{name: "html", input: func(testing.TB, *env) []byte { return bytes.Repeat([]byte("<!DOCTYPE html><title>404</title>"), 40) }, refuse: "an HTML page"},
		{name: "empty", input: func(testing.TB, *env) []byte { return nil }, refuse: "not a tar archive (input is empty)"},
		{name: "short", input: func(testing.TB, *env) []byte { return []byte("short") }, refuse: "input is 5 bytes, shorter than one tar header"},
		{name: "gzip-not-tar", input: func(t testing.TB, _ *env) []byte { return gz(t, bytes.Repeat([]byte("hello\n"), 200)) }, refuse: "not a tar archive (gzip data starts with"},
		{name: "gzip-empty", input: func(t testing.TB, _ *env) []byte { return gz(t, nil) }, refuse: "not a tar archive (gzip data is empty)"},
		{name: "zero-blocks", input: func(testing.TB, *env) []byte { return make([]byte, 10240) }, refuse: "empty tar archive"},
		{
			name: "corrupt-second-header",
			input: func(t testing.TB, e *env) []byte {
				b := tarball(t, fileE("a", "a"), fileE("b", "b"))
				copy(b[1024+100:], "zzzzzzzz") // mode field of b's header, now not octal
				return b
			},
			refuse: `corrupt tar archive: archive/tar: invalid tar header (after entry "a")`,
		},
	}
}

func wantFile(t *testing.T, p, want string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s: %v, want a regular file", p, fi.Mode())
		return
	}
	if got := readFile(t, p); got != want {
		t.Errorf("%s = %q, want %q", p, got, want)
	}
}

func randomText(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

func TestImportHostile(t *testing.T) {
	runHostile(t)
}

// TestImportHostileSecurejoin runs the same cases through the fallback for kernels
// without openat2.
func TestImportHostileSecurejoin(t *testing.T) {
	forceSecurejoin = true
	defer func() { forceSecurejoin = false }()
	runHostile(t)
}

func runHostile(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.Require(t, testenv.Root)
			}
			e := newEnv(t)
			img, err := e.store.Import(context.Background(), "hostile", bytes.NewReader(tc.input(t, e)), ImportOptions{})
			oneLineErr(t, err)
			if err != nil {
				t.Log(err)
			}
			if tc.refuse != "" {
				if !errors.Is(err, ErrBadArchive) {
					t.Fatalf("Import: %v, want ErrBadArchive", err)
				}
				if !strings.Contains(err.Error(), tc.refuse) || !strings.HasPrefix(err.Error(), "image: import hostile: ") {
					t.Errorf("error %q, want it to contain %q", err, tc.refuse)
				}
				if names := e.images(t); len(names) != 0 {
					t.Errorf("images after a refused import: %v", names)
				}
			} else {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				tc.check(t, e, img.RootFS)
			}
			e.check(t)
		})
	}
}
