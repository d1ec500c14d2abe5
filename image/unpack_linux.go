package image

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Why openat2(RESOLVE_IN_ROOT) and *at syscalls on directory fds, not os.Root:
//
//   - Semantics. RESOLVE_IN_ROOT resolves ".." and absolute symlinks as if the root
//     were "/", atomically, in the kernel: exactly what the container will see.
//     os.Root refuses any path that crosses an absolute symlink, and real rootfs
//     tarballs have them (Debian's var/run -> /run, Alpine's bin/sh -> /bin/busybox).
//   - Coverage. os.Root has no mknod, no xattrs and no lutimes; every one of those
//     would need a second mechanism anyway.
//   - Speed. os.Root walks each path component by component in user space. Here one
//     openat2 resolves an entry's parent directory, and the fd is reused while
//     entries stay in the same directory (tarballs list a directory's files together),
//     so a file costs openat, write, fchown, fchmod, utimensat and close, as with
//     GNU tar.
//
// The last component is always handled by an *at call on the parent's fd that does
// not follow it (O_NOFOLLOW|O_EXCL, mkdirat, symlinkat, linkat without
// AT_SYMLINK_FOLLOW, mknodat): nothing is ever written through a symlink.
//
// Kernels without openat2 (before 5.6) fall back to cyphar/filepath-securejoin's
// OpenatInRoot, runc's implementation of the same resolution in user space.

// holeMin is the smallest run of zeros left as a hole rather than written: a block.
const holeMin = 4096

// allZero reports whether b holds only zero bytes. (A package-level zero buffer to
// compare against would cost every thinbox process, the container's init included, a
// 1 MiB allocation at start.)
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// writebackMin is the size from which a file's writeback is started as soon as it
// is written.
const writebackMin = 64 << 10

// forceSecurejoin makes trees resolve with securejoin even where openat2 exists, so
// tests can run the hostile cases through the fallback too.
var forceSecurejoin bool

// privileged is a variable so that tests run as root can take the unprivileged path.
var privileged = func() bool { return os.Geteuid() == 0 }

// noOpenat2 is set once openat2 has returned ENOSYS.
var noOpenat2 atomic.Bool

// tree creates entries under one root directory.
type tree struct {
	ctx        context.Context
	root       *os.File
	rootFd     int
	securejoin bool
	// privileged: euid 0 can chown to the header's ids and make device nodes; others
	// keep their own ids, like GNU tar's --no-same-owner default for users.
	privileged bool
	buf        []byte

	// The parent directory of the last entry, kept open while the next entries are in
	// it; stale once an entry replaced anything, since that may change what a name
	// resolves to.
	cacheDir string
	cacheFd  int
	stale    bool

	// Directory metadata is applied at the end: a directory's mtime changes with
	// every child created in it, and a read-only directory (0555) would stop a
	// non-root import from creating its children.
	dirs   []dirMeta
	dirIdx map[string]int
}

type dirMeta struct {
	name string
	m    *meta
}

func openTree(ctx context.Context, root string) (*tree, error) {
	f, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return &tree{
		ctx:        ctx,
		root:       f,
		rootFd:     int(f.Fd()),
		securejoin: forceSecurejoin,
		privileged: privileged(),
		buf:        make([]byte, bufSize),
		cacheFd:    -1,
		dirIdx:     map[string]int{},
	}, nil
}

func (t *tree) close() {
	t.dropCache()
	t.root.Close()
}

func (t *tree) dropCache() {
	if t.cacheFd >= 0 {
		unix.Close(t.cacheFd)
	}
	t.cacheDir, t.cacheFd, t.stale = "", -1, false
}

// openDir resolves dir (cleaned, relative) inside the root to an O_PATH fd.
func (t *tree) openDir(dir string) (int, error) {
	if !t.securejoin && !noOpenat2.Load() {
		how := &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		}
		for i := 0; ; i++ {
			fd, err := unix.Openat2(t.rootFd, dir, how)
			// EAGAIN: a rename elsewhere on the file system raced the lookup.
			if err == unix.EAGAIN && i < 16 {
				continue
			}
			if err != unix.ENOSYS {
				return fd, err
			}
			noOpenat2.Store(true)
			break
		}
	}
	f, err := pathrs.OpenatInRoot(t.root, dir)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return -1, unix.ENOTDIR
	}
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}

// parent returns an fd of directory dir, creating missing directories (tarballs
// need not list every parent); the tree owns the fd.
func (t *tree) parent(dir string) (int, error) {
	if dir == "" {
		return t.rootFd, nil
	}
	if t.cacheFd >= 0 && !t.stale && dir == t.cacheDir {
		return t.cacheFd, nil
	}
	t.dropCache()
	fd, err := t.openDir(dir)
	if errors.Is(err, unix.ENOENT) {
		fd, err = t.mkdirAll(dir)
	}
	if err != nil {
		return -1, fsErr("resolve parent "+quote(dir), err)
	}
	t.cacheDir, t.cacheFd = dir, fd
	return fd, nil
}

func (t *tree) parentOf(name string) (pfd int, base string, err error) {
	dir, base := path.Split(name)
	pfd, err = t.parent(strings.TrimSuffix(dir, "/"))
	return pfd, base, err
}

// mkdirAll creates the missing directories of dir one component at a time, each
// resolved in the root like any other path.
func (t *tree) mkdirAll(dir string) (int, error) {
	pfd := t.rootFd
	release := func() {
		if pfd != t.rootFd {
			unix.Close(pfd)
		}
	}
	end := 0
	for end < len(dir) {
		start := end
		if i := strings.IndexByte(dir[start:], '/'); i >= 0 {
			end = start + i
		} else {
			end = len(dir)
		}
		prefix, part := dir[:end], dir[start:end]
		end++ // past the slash
		fd, err := t.openDir(prefix)
		if errors.Is(err, unix.ENOENT) {
			err = unix.Mkdirat(pfd, part, 0o755)
			switch err {
			case nil:
				// 0755 whatever the umask, as GNU tar gives implied directories.
				err = unix.Fchmodat(pfd, part, 0o755, 0)
				if err == nil {
					fd, err = unix.Openat(pfd, part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				}
			case unix.EEXIST:
				// It exists but did not resolve: a symlink to something missing.
				// Creating its target would mean guessing; refuse.
				err = badArchive("%s is a symlink to a directory that is not in the image", quote(prefix))
			}
		}
		release()
		if err != nil {
			return -1, err
		}
		pfd = fd
	}
	return pfd, nil
}

// create runs op, which makes base in pfd; if the name is taken, the old entry is
// removed first, as GNU tar does, so a symlink there is replaced, never followed.
func (t *tree) create(pfd int, base string, op func() error) error {
	err := op()
	if err == unix.EEXIST {
		if err := t.replace(pfd, base); err != nil {
			return err
		}
		err = op()
	}
	return err
}

func (t *tree) replace(pfd int, base string) error {
	t.stale = true
	err := unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
		if err == unix.ENOTEMPTY || err == unix.EEXIST {
			return badArchive("replaces a directory that is not empty")
		}
	}
	if err != nil {
		return fmt.Errorf("remove the existing entry: %w", err)
	}
	return nil
}

func (t *tree) dir(name string, m *meta) error {
	if name != "" {
		pfd, base, err := t.parentOf(name)
		if err != nil {
			return err
		}
		// 0700 until finish: owner-writable for a non-root import.
		err = unix.Mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			var st unix.Stat_t
			err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err = t.replace(pfd, base); err == nil {
					err = unix.Mkdirat(pfd, base, 0o700)
				}
			}
		}
		if err != nil {
			return fsErr("mkdir", err)
		}
	}
	if i, ok := t.dirIdx[name]; ok {
		t.dirs[i].m = m // the last header for a directory wins, as in GNU tar
	} else {
		t.dirIdx[name] = len(t.dirs)
		t.dirs = append(t.dirs, dirMeta{name, m})
	}
	return nil
}

func (t *tree) file(name string, m *meta, body io.Reader, readErr func(error) error) (int64, error) {
	pfd, base, err := t.parentOf(name)
	if err != nil {
		return 0, err
	}
	fd := -1
	err = t.create(pfd, base, func() (err error) {
		// 0600 until applyFd: nobody else may open it half written.
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return 0, fsErr("create", err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	var n int64
	hole := false
	for {
		// Checked here too: a sparse entry's holes and a decompression bomb can
		// produce gigabytes without reading the input, where the context is checked.
		if err := t.ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := body.Read(t.buf)
		if k > 0 {
			// Runs of zeros become holes, as with cp --sparse=auto: the sparse files
			// archive/tar reads back filled in, and zero bombs, take no disk.
			chunk := t.buf[:k]
			if hole = k >= holeMin && allZero(chunk[:k]); !hole {
				if err := pwriteAll(fd, chunk, n); err != nil {
					return n, fmt.Errorf("write: %w", err)
				}
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, readErr(rerr)
		}
	}
	if hole {
		if err := unix.Ftruncate(fd, n); err != nil {
			return n, fmt.Errorf("write: %w", err)
		}
	}
	if n >= writebackMin {
		// Start writing it out now, without waiting: the syncfs before publishing
		// then has little left to do, instead of all of the image at once.
		unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if err := t.applyFd(fd, m); err != nil {
		return n, err
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return n, fmt.Errorf("close: %w", err)
	}
	return n, nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func (t *tree) symlink(name, target string, m *meta) error {
	pfd, base, err := t.parentOf(name)
	if err != nil {
		return err
	}
	// The target is stored as written: it is resolved only in the container, or by
	// openDir here, both inside the root.
	if err := t.create(pfd, base, func() error { return unix.Symlinkat(target, pfd, base) }); err != nil {
		return fsErr("symlink", err)
	}
	return t.applyAt(pfd, base, m, true)
}

func (t *tree) hardlink(name, target string) error {
	tdir, tbase := path.Split(target)
	tfd := t.rootFd
	if tdir = strings.TrimSuffix(tdir, "/"); tdir != "" {
		fd, err := t.openDir(tdir)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return badArchive("hard link target %s is not in the image", quote(target))
		}
		if err != nil {
			return fsErr("hard link to "+quote(target), err)
		}
		defer unix.Close(fd)
		tfd = fd
	}
	pfd, base, err := t.parentOf(name)
	if err != nil {
		return err
	}
	// linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points
	// to, so a link "through" a symlink cannot reach outside the root.
	err = t.create(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	switch err {
	case nil:
		return nil
	case unix.ENOENT:
		return badArchive("hard link target %s is not in the image (it must be an entry before the link)", quote(target))
	case unix.EPERM:
		return badArchive("hard link target %s is a directory", quote(target))
	}
	return fsErr("hard link to "+quote(target), err)
}

// node makes a device node or fifo; created is false when it was skipped. Fifos need
// no privilege and are always made; device nodes need CAP_MKNOD in the initial user
// namespace and are skipped (and counted) without it.
func (t *tree) node(name string, typ byte, major, minor int64, m *meta) (bool, error) {
	kind := map[byte]uint32{'3': unix.S_IFCHR, '4': unix.S_IFBLK, '6': unix.S_IFIFO}[typ]
	if kind != unix.S_IFIFO && !t.privileged {
		return false, nil
	}
	pfd, base, err := t.parentOf(name)
	if err != nil {
		return false, err
	}
	dev := int(unix.Mkdev(uint32(major), uint32(minor)))
	err = t.create(pfd, base, func() error { return unix.Mknodat(pfd, base, kind|0o600, dev) })
	if err == unix.EPERM && kind != unix.S_IFIFO {
		return false, nil // root in a user namespace
	}
	if err != nil {
		return false, fsErr("mknod", err)
	}
	return true, t.applyAt(pfd, base, m, false)
}

// applyFd sets ownership, mode, xattrs and times, in that order: chown clears
// setuid, setgid and security.capability, so chmod and xattrs come after it.
func (t *tree) applyFd(fd int, m *meta) error {
	if t.privileged {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return fmt.Errorf("chown to %d:%d: %w", m.uid, m.gid, err)
		}
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("chmod %04o: %w", m.mode, err)
	}
	for _, x := range m.xattrs {
		if err := unix.Fsetxattr(fd, x[0], []byte(x[1]), 0); err != nil && !t.xattrSkippable(err) {
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	if err := futimens(fd, m.atime, m.mtime); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// applyAt is applyFd for inodes that cannot be opened for writing (symlinks, device
// nodes, fifos): base in pfd, never following a symlink. The mode of base is set
// by name: base was just made by this import in a directory only it writes to.
func (t *tree) applyAt(pfd int, base string, m *meta, symlink bool) error {
	if t.privileged {
		if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown to %d:%d: %w", m.uid, m.gid, err)
		}
	}
	if !symlink {
		if err := unix.Fchmodat(pfd, base, m.mode, 0); err != nil {
			return fmt.Errorf("chmod %04o: %w", m.mode, err)
		}
	}
	if len(m.xattrs) > 0 {
		// No fd-based call sets an xattr on a symlink (fsetxattr refuses O_PATH), so
		// go through the parent's fd link: the kernel jumps to the directory and
		// lsetxattr does not follow base.
		p := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
		for _, x := range m.xattrs {
			if err := unix.Lsetxattr(p, x[0], []byte(x[1]), 0); err != nil && !t.xattrSkippable(err) {
				return fmt.Errorf("set xattr %s: %w", x[0], err)
			}
		}
	}
	ts := []unix.Timespec{timespec(m.atime), timespec(m.mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// xattrSkippable: without privilege, attributes the kernel refuses (security.*,
// user.* on a symlink) are dropped, as ownership is; as root every failure counts.
func (t *tree) xattrSkippable(err error) bool {
	return !t.privileged && (err == unix.EPERM || err == unix.EACCES || err == unix.ENOTSUP)
}

// finish applies directory metadata, deepest first so that no directory is made
// read-only (or untraversable) before its children are done.
func (t *tree) finish() error {
	t.dropCache()
	depth := func(s string) int {
		if s == "" {
			return -1
		}
		return strings.Count(s, "/")
	}
	sort.SliceStable(t.dirs, func(i, j int) bool { return depth(t.dirs[i].name) > depth(t.dirs[j].name) })
	for _, d := range t.dirs {
		if err := t.finishDir(d); err != nil {
			return prefixErr("entry "+quote(d.name+"/"), err)
		}
	}
	return nil
}

func (t *tree) finishDir(d dirMeta) error {
	if d.name == "" {
		return t.applyFd(t.rootFd, d.m)
	}
	dir, base := path.Split(d.name)
	pfd := t.rootFd
	if dir = strings.TrimSuffix(dir, "/"); dir != "" {
		fd, err := t.openDir(dir)
		if err != nil {
			return nil // a later entry replaced a parent: nothing left to apply to
		}
		defer unix.Close(fd)
		pfd = fd
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ELOOP || err == unix.ENOTDIR {
		return nil // replaced by a later entry
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	return t.applyFd(fd, d.m)
}

// fsErr marks the errors that come from the names in the archive rather than from
// the file system (a symlink loop, a name too long, a parent that is a file) as
// ErrBadArchive.
func fsErr(op string, err error) error {
	if _, ok := err.(*archiveError); ok {
		return prefixErr(op, err)
	}
	switch {
	case errors.Is(err, unix.ELOOP):
		return badArchive("%s: too many levels of symbolic links (a symlink loop?)", op)
	case errors.Is(err, unix.ENAMETOOLONG):
		return badArchive("%s: name too long (at most 255 bytes a component and 4095 a path)", op)
	case errors.Is(err, unix.ENOTDIR):
		return badArchive("%s: a parent is not a directory", op)
	}
	return fmt.Errorf("%s: %w", op, err)
}
