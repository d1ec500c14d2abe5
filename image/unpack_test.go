package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinbox/thinbox/internal/testenv"
)

func TestImportCompressions(t *testing.T) {
	plain := tarball(t, dirE("etc/"), fileE("etc/hello", "hello\n"), symE("hi", "etc/hello"))
	gnu := tarball(t, ent{name: "etc/hello", body: "hello\n", typ: tar.TypeReg, mode: 0o644, format: tar.FormatGNU})
	// A v7 header: no magic, only a checksum to recognise it by.
	v7 := bytes.Clone(plain[:1024])
	v7 = append(v7, make([]byte, 1024)...)
	copy(v7[0:100], make([]byte, 100))
	copy(v7[0:], "hello")
	v7[156] = '0'
	copy(v7[257:265], make([]byte, 8))
	copy(v7[265:512], make([]byte, 247))
	setChecksum(v7[:512])
	bz2, err := os.ReadFile("testdata/small.tar.bz2")
	must(t, err)

	for _, tc := range []struct {
		name, compression string
		input             []byte
		want              string // a file and its content
		content           string
	}{
		{"plain", CompressionNone, plain, "etc/hello", "hello\n"},
		{"gnu", CompressionNone, gnu, "etc/hello", "hello\n"},
		{"v7", CompressionNone, v7, "hello", ""},
		{"gzip", CompressionGzip, gz(t, plain), "etc/hello", "hello\n"},
		{"xz", CompressionXz, xzc(t, plain), "etc/hello", "hello\n"},
		{"zstd", CompressionZstd, zst(t, plain), "etc/hello", "hello\n"},
		{"bzip2", CompressionBzip2, bz2, "etc/hello", "bzip2 image\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			img, err := e.store.Import(context.Background(), "c", bytes.NewReader(tc.input), ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if img.Compression != tc.compression {
				t.Errorf("Compression = %q, want %q", img.Compression, tc.compression)
			}
			sum := sha256.Sum256(tc.input)
			if want := "sha256:" + hex.EncodeToString(sum[:]); img.Digest != want {
				t.Errorf("Digest = %s, want %s", img.Digest, want)
			}
			wantFile(t, filepath.Join(img.RootFS, tc.want), tc.content)
			got, err := e.store.Get("c")
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != img.Digest || got.Compression != img.Compression || got.Size != img.Size ||
				got.Entries != img.Entries || got.RootFS != img.RootFS || !got.Created.Equal(img.Created) {
				t.Errorf("Get = %+v, Import returned %+v", got, img)
			}
			e.check(t)
		})
	}
}

func setChecksum(h []byte) {
	copy(h[148:156], "        ")
	var sum int
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], []byte(string(octal(sum, 6))+"\x00 "))
}

func octal(n, width int) []byte {
	b := []byte{}
	for ; n > 0; n /= 8 {
		b = append([]byte{byte('0' + n%8)}, b...)
	}
	for len(b) < width {
		b = append([]byte{'0'}, b...)
	}
	return b
}

// TestImportAlpineStyle: Alpine's minirootfs starts with a "./" entry, names every
// entry with a "./" prefix and uses absolute symlinks into the image.
func TestImportAlpineStyle(t *testing.T) {
	e := newEnv(t)
	root := dirE("./")
	root.mode = 0o755
	in := gz(t, tarball(t,
		root,
		dirE("./bin/"),
		ent{name: "./bin/busybox", body: "\x7fELF busybox", typ: tar.TypeReg, mode: 0o755},
		symE("./bin/sh", "/bin/busybox"),
		symE("./bin/ls", "/bin/busybox"),
		dirE("./etc/"),
		fileE("./etc/alpine-release", "3.21.0\n"),
		dirE("./lib/"),
		symE("./lib/ld-musl-x86_64.so.1", "libc.musl-x86_64.so.1"),
		dirE("./run/"),
		dirE("./var/"),
		symE("./var/run", "/run"),
		dirE("./usr/bin/"),
		symE("./usr/bin/env", "/bin/busybox"),
		linkE("./usr/bin/busybox-copy", "./bin/busybox"),
	))
	img, err := e.store.Import(context.Background(), "alpine", bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"bin/sh": "/bin/busybox", "usr/bin/env": "/bin/busybox", "var/run": "/run"} {
		if got, err := os.Readlink(filepath.Join(img.RootFS, link)); err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", link, got, err, target)
		}
	}
	wantFile(t, filepath.Join(img.RootFS, "usr/bin/busybox-copy"), "\x7fELF busybox")
	if m := lstatMode(t, filepath.Join(img.RootFS, "bin/busybox")); m.Perm() != 0o755 {
		t.Errorf("bin/busybox mode %v", m)
	}
	if img.Entries != 15 || img.Skipped != 0 || img.Size != int64(len("\x7fELF busybox")+len("3.21.0\n")) {
		t.Errorf("summary %+v", img)
	}
	e.check(t)
}

// TestImportModesAndTimes needs no privilege: a file's owner may set setuid and
// sticky bits on it.
func TestImportModesAndTimes(t *testing.T) {
	e := newEnv(t)
	mt := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	at := time.Date(2002, 2, 3, 4, 5, 6, 987654321, time.UTC)
	ro := dirE("ro/")
	ro.mode, ro.mtime, ro.format = 0o555, mt, tar.FormatPAX
	tmp := dirE("tmp/")
	tmp.mode, tmp.mtime, tmp.format = 0o1777, mt, tar.FormatPAX
	rootDir := dirE("./")
	rootDir.mode, rootDir.mtime, rootDir.format = 0o750, mt, tar.FormatPAX
	in := tarball(t,
		rootDir,
		ent{name: "suid", body: "x", typ: tar.TypeReg, mode: 0o4755, mtime: mt, format: tar.FormatPAX},
		ent{name: "exec", body: "x", typ: tar.TypeReg, mode: 0o700, mtime: mt, atime: at, format: tar.FormatPAX},
		ent{name: "readonly", body: "x", typ: tar.TypeReg, mode: 0o444, mtime: mt, format: tar.FormatPAX},
		ro,
		ent{name: "ro/child", body: "c", typ: tar.TypeReg, mode: 0o600, mtime: mt, format: tar.FormatPAX},
		ent{name: "ro/sub/", typ: tar.TypeDir, mode: 0o500, mtime: mt, format: tar.FormatPAX},
		ent{name: "ro/sub/deep", body: "d", typ: tar.TypeReg, mode: 0o600, mtime: mt, format: tar.FormatPAX},
		tmp,
		ent{name: "link", link: "suid", typ: tar.TypeSymlink, mtime: mt, format: tar.FormatPAX},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o620, mtime: mt, format: tar.FormatPAX},
	)
	img, err := e.store.Import(context.Background(), "modes", bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := img.RootFS
	for name, want := range map[string]fs.FileMode{
		"suid":     0o755 | fs.ModeSetuid,
		"exec":     0o700,
		"readonly": 0o444,
		"ro":       0o555 | fs.ModeDir,
		"ro/sub":   0o500 | fs.ModeDir,
		"tmp":      0o777 | fs.ModeDir | fs.ModeSticky,
		"fifo":     0o620 | fs.ModeNamedPipe,
		".":        0o750 | fs.ModeDir,
	} {
		if got := lstatMode(t, filepath.Join(r, name)); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"suid", "ro", "ro/sub", "tmp", "link", "fifo", "."} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(r, name), &st))
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", name, got.UTC(), mt)
		}
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(r, "exec"), &st))
	if got := time.Unix(st.Atim.Unix()); !got.Equal(at) {
		t.Errorf("exec: atime %v, want %v", got.UTC(), at)
	}
	wantFile(t, filepath.Join(r, "ro/sub/deep"), "d")
	e.check(t)
}

func TestImportOwnershipAndXattrs(t *testing.T) {
	testenv.Require(t, testenv.Root)
	e := newEnv(t)
	// struct vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13).
	netRaw := "\x01\x00\x00\x02" + "\x00\x20\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"
	in := tarball(t,
		ent{name: "home/", typ: tar.TypeDir, mode: 0o2750, uid: 1000, gid: 1001,
			pax: map[string]string{"SCHILY.xattr.user.dir": "d"}},
		ent{name: "bin/ping", body: "ping", typ: tar.TypeReg, mode: 0o755, uid: 0, gid: 0,
			pax: map[string]string{"SCHILY.xattr.security.capability": netRaw}},
		ent{name: "bin/su", body: "su", typ: tar.TypeReg, mode: 0o4755, uid: 0, gid: 0},
		ent{name: "bin/wall", body: "wall", typ: tar.TypeReg, mode: 0o2755, uid: 0, gid: 5},
		ent{name: "home/user", body: "u", typ: tar.TypeReg, mode: 0o6711, uid: 1000, gid: 1001,
			pax: map[string]string{"SCHILY.xattr.user.note": "hello", "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.redirect": "/x"}},
		ent{name: "home/link", link: "user", typ: tar.TypeSymlink, uid: 1000, gid: 1001},
	)
	img, err := e.store.Import(context.Background(), "owners", bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := img.RootFS
	for name, want := range map[string]struct {
		uid, gid uint32
		mode     fs.FileMode
	}{
		"home":      {1000, 1001, fs.ModeDir | fs.ModeSetgid | 0o750},
		"bin/su":    {0, 0, fs.ModeSetuid | 0o755},
		"bin/wall":  {0, 5, fs.ModeSetgid | 0o755},
		"home/user": {1000, 1001, fs.ModeSetuid | fs.ModeSetgid | 0o711},
		"home/link": {1000, 1001, fs.ModeSymlink | 0o777},
	} {
		fi, err := os.Lstat(filepath.Join(r, name))
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != want.uid || st.Gid != want.gid || fi.Mode() != want.mode {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", name, st.Uid, st.Gid, fi.Mode(), want.uid, want.gid, want.mode)
		}
	}
	for _, x := range []struct{ path, name, want string }{
		{"bin/ping", "security.capability", netRaw},
		{"home/user", "user.note", "hello"},
		{"home", "user.dir", "d"},
	} {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(r, x.path), x.name, buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Errorf("%s: xattr %s = %q, %v; want %q", x.path, x.name, buf[:max(n, 0)], err, x.want)
		}
	}
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.redirect"} {
		if _, err := unix.Lgetxattr(filepath.Join(r, "home/user"), name, nil); err != unix.ENODATA {
			t.Errorf("xattr %s should have been dropped: %v", name, err)
		}
	}
	e.check(t)
}

func TestImportDevices(t *testing.T) {
	testenv.Require(t, testenv.Root)
	e := newEnv(t)
	in := tarball(t,
		nodeE("dev/null", tar.TypeChar, 1, 3),
		nodeE("dev/loop0", tar.TypeBlock, 7, 0),
		nodeE("run/initctl", tar.TypeFifo, 0, 0),
	)
	img, err := e.store.Import(context.Background(), "dev", bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		typ          uint32
		major, minor uint32
	}{
		"dev/null":    {unix.S_IFCHR, 1, 3},
		"dev/loop0":   {unix.S_IFBLK, 7, 0},
		"run/initctl": {unix.S_IFIFO, 0, 0},
	} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(img.RootFS, name), &st))
		if st.Mode&unix.S_IFMT != want.typ || unix.Major(st.Rdev) != want.major || unix.Minor(st.Rdev) != want.minor || st.Mode&0o7777 != 0o666 {
			t.Errorf("%s: mode %o rdev %d:%d", name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	if img.Skipped != 0 || img.Entries != 3 {
		t.Errorf("summary %+v", img)
	}
	e.check(t)
}

// TestImportUnprivileged takes the path of a non-root import even when run as root:
// device nodes skipped and counted, fifos made, ownership left to the importer.
func TestImportUnprivileged(t *testing.T) {
	saved := privileged
	privileged = func() bool { return false }
	defer func() { privileged = saved }()
	e := newEnv(t)
	in := tarball(t,
		nodeE("dev/null", tar.TypeChar, 1, 3),
		nodeE("dev/sda", tar.TypeBlock, 8, 0),
		nodeE("run/fifo", tar.TypeFifo, 0, 0),
		ent{name: "etc/shadow", body: "s", typ: tar.TypeReg, mode: 0o640, uid: 0, gid: 42},
		ent{name: "x", typ: 'Z'}, // unknown type
	)
	img, err := e.store.Import(context.Background(), "rootless", bytes.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Skipped != 3 || img.Entries != 5 {
		t.Errorf("Skipped = %d, Entries = %d; want 3, 5", img.Skipped, img.Entries)
	}
	for _, name := range []string{"dev/null", "dev/sda", "x"} {
		if _, err := os.Lstat(filepath.Join(img.RootFS, name)); err == nil {
			t.Errorf("%s was created", name)
		}
	}
	if lstatMode(t, filepath.Join(img.RootFS, "run/fifo"))&fs.ModeNamedPipe == 0 {
		t.Errorf("run/fifo is not a fifo")
	}
	fi, err := os.Lstat(filepath.Join(img.RootFS, "etc/shadow"))
	must(t, err)
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || fi.Mode() != 0o640 {
		t.Errorf("etc/shadow: uid %d mode %v", st.Uid, fi.Mode())
	}
	e.check(t)
}

// TestImportBusyboxImage imports the integration test image (integration/busybox-image.sh).
func TestImportBusyboxImage(t *testing.T) {
	testenv.Require(t, testenv.Image)
	f, err := os.Open(testenv.ImagePath())
	must(t, err)
	defer f.Close()
	e := newEnv(t)
	img, err := e.store.Import(context.Background(), "busybox", f, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(img.RootFS, "bin/sh")); err != nil || filepath.Base(l) != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	fi, err := os.Stat(filepath.Join(img.RootFS, "bin/busybox"))
	if err != nil || fi.Mode()&0o111 == 0 || fi.Size() < 100<<10 {
		t.Errorf("bin/busybox: %v %v", fi, err)
	}
	t.Logf("%+v", img)
	e.check(t)
}

// TestImportSparse: holes stay holes (a GNU sparse entry of 1 GiB is 281 bytes of
// tar.gz), and so do long runs of zeros in ordinary entries, so neither a sparse
// file nor a zero bomb fills the store's disk.
func TestImportSparse(t *testing.T) {
	e := newEnv(t)
	f, err := os.Open("testdata/sparse.tar.gz")
	must(t, err)
	defer f.Close()
	img, err := e.store.Import(context.Background(), "sparse", f, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSparse(t, filepath.Join(img.RootFS, "sparse"), 1<<30+2, "head", "x\n")

	zeros := make([]byte, 64<<20)
	copy(zeros, "head")
	copy(zeros[len(zeros)-2:], "x\n")
	img, err = e.store.Import(context.Background(), "zeros", bytes.NewReader(zst(t, tarball(t, fileE("zeros", string(zeros))))), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSparse(t, filepath.Join(img.RootFS, "zeros"), int64(len(zeros)), "head", "x\n")
	e.check(t)
}

func checkSparse(t *testing.T, p string, size int64, head, tail string) {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	if st.Size != size {
		t.Errorf("%s: size %d, want %d", p, st.Size, size)
	}
	if st.Blocks*512 > 4<<20 {
		t.Errorf("%s: %d bytes on disk: holes were written", p, st.Blocks*512)
	}
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	b := make([]byte, len(head))
	f.ReadAt(b, 0)
	e := make([]byte, len(tail))
	f.ReadAt(e, size-int64(len(tail)))
	if string(b) != head || string(e) != tail {
		t.Errorf("%s: starts %q, ends %q", p, b, e)
	}
}
