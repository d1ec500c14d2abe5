package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// An entry's name decides where it lands; this file turns tar headers into
// operations on a tree (unpack_linux.go), which resolves every path inside the root.
//
// Names are cleaned lexically first:
//   - a leading "/" is dropped, as GNU tar does: "/etc/x" and "./etc/x" are both the
//     image's etc/x, never the host's;
//   - "." components and a "./" prefix are normal (Alpine's minirootfs starts with
//     "./");
//   - ".." is resolved lexically and refused if it climbs above the root ("../x",
//     "a/../../x"): that is a hostile or broken archive, not something to guess at.
//
// Symlinks in the tree are then resolved by the kernel as if the root were "/"
// (openat2 RESOLVE_IN_ROOT), the way the container will see them: an entry under
// "evil -> /etc" lands in the image's etc/, one under "evil -> ../../.." in the
// root. Writing through a symlink is thus neutralised, not refused. The last
// component of a name is never followed: a symlink where a file is to go is
// replaced, not written through.

// unpacked is what an import counts for the summary.
type unpacked struct {
	entries, skipped int
	size             int64
}

// unpack extracts every entry of a into root, which must be an empty directory.
func unpack(ctx context.Context, a *archive, root string) (unpacked, error) {
	var res unpacked
	t, err := openTree(ctx, root)
	if err != nil {
		return res, err
	}
	defer t.close()
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := a.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			err = a.readErr(err)
			if last != "" && errors.Is(err, ErrBadArchive) {
				err = badArchive("%v (after entry %s)", err, quote(last))
			}
			return res, err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// Archive-wide records (git archive keeps its commit id there); archive/tar
			// does not carry them over to later headers and no rootfs needs them.
			continue
		}
		last = hdr.Name
		res.entries++
		n, created, err := extract(t, hdr, a)
		if err != nil {
			return res, prefixErr("entry "+quote(hdr.Name), err)
		}
		res.size += n
		if !created {
			res.skipped++
		}
	}
	if res.entries == 0 {
		return res, badArchive("tar archive has no entries")
	}
	return res, t.finish()
}

func extract(t *tree, hdr *tar.Header, a *archive) (size int64, created bool, err error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return 0, false, err
	}
	m := metaOf(hdr)
	if name == "" && hdr.Typeflag != tar.TypeDir {
		return 0, false, badArchive("names the image root but is not a directory (type %q)", hdr.Typeflag)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return 0, true, t.dir(name, m)
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		// archive/tar reads sparse files with their holes filled in.
		n, err := t.file(name, m, a.tr, a.readErr)
		return n, true, err
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return 0, false, badArchive("symlink with an empty target")
		}
		return 0, true, t.symlink(name, hdr.Linkname, m)
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return 0, false, prefixErr("hard link to "+quote(hdr.Linkname), err)
		}
		if target == "" {
			return 0, false, badArchive("hard link to the image root")
		}
		return 0, true, t.hardlink(name, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		created, err := t.node(name, hdr.Typeflag, hdr.Devmajor, hdr.Devminor, m)
		return 0, created, err
	}
	// Unknown types (Solaris doors, vendor extensions) have no file to make; GNU tar
	// also extracts them as nothing more than a warning.
	return 0, false, nil
}

// cleanName maps an entry name to a slash-separated path relative to the root ("" for
// the root itself), or refuses it; see the comment at the top of this file.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", badArchive("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", badArchive("name contains a NUL byte")
	}
	depth := 0
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", badArchive("path escapes the image root")
			}
		default:
			depth++
		}
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == "." || p == "/" {
		return "", nil
	}
	return p, nil
}

// meta is what a header says about an inode beyond its type and content.
type meta struct {
	mode         uint32 // permissions with setuid, setgid and sticky bits
	uid, gid     int
	atime, mtime time.Time
	xattrs       [][2]string
}

func metaOf(hdr *tar.Header) *meta {
	m := &meta{mode: uint32(hdr.Mode) & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime, atime: hdr.AccessTime}
	if m.atime.IsZero() {
		m.atime = m.mtime
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && xattrAllowed(x) {
			m.xattrs = append(m.xattrs, [2]string{x, v})
		}
	}
	sort.Slice(m.xattrs, func(i, j int) bool { return m.xattrs[i][0] < m.xattrs[j][0] })
	return m
}

// xattrAllowed keeps the attributes that mean something inside an image: user.*,
// security.* (security.capability makes ping work without setuid) and POSIX ACLs.
// trusted.* and the overlay attributes (trusted.overlay.*, user.overlay.*) are
// dropped: they steer overlayfs, which later mounts this tree as a lower layer, and
// whiteouts and redirects are not part of a rootfs tarball.
func xattrAllowed(name string) bool {
	switch {
	case strings.HasPrefix(name, "user.overlay."):
		return false
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "security."):
		return true
	}
	return name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// quote makes an entry name safe for a one-line error message: quoted (names may hold
// newlines) and cut short (PAX names may be megabytes long).
func quote(name string) string {
	const max = 160
	if len(name) > max {
		return strconv.Quote(name[:max]) + "... (" + strconv.Itoa(len(name)) + " bytes)"
	}
	return strconv.Quote(name)
}

// prefixErr adds context and keeps ErrBadArchive visible to errors.Is without
// repeating "bad archive" in the message.
func prefixErr(prefix string, err error) error {
	if ae, ok := err.(*archiveError); ok {
		return badArchive("%s: %s", prefix, ae.msg)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
