package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The container's init is the thinbox binary, re-executed. A process in the container
// can reach that binary through /proc/PID/exe of the init (PID 1 with --init), or by
// making the init exec "#!/proc/self/exe". Without care it then holds the host's
// /usr/bin/thinbox, and the root of a container without a user namespace is root on
// the host: it can reopen that handle for writing once no process runs the binary and
// replace it with its own code, which the host runs next (CVE-2019-5736).
//
// So the init is never executed from the host's path. It is executed from a handle
// that cannot be turned into a writable one:
//
//   - sealedOverlay: the binary seen through a private overlayfs made of lower layers
//     only, created with fsopen/fsmount and never attached to any mount tree. An
//     overlay without an upper layer is read-only at the superblock (even a remount,
//     which needs CAP_SYS_ADMIN, cannot make it writable), and nothing leads from the
//     overlay's file to the host path. It copies nothing: one superblock, about 40 µs
//     per start (runc's exeseal, the same idea).
//   - sealedMemfd, the fallback (kernels before 5.2, no overlayfs, a binary overlayfs
//     cannot stack on): a copy in a memfd sealed against writes, shrinking, growing
//     and unsealing. It costs a copy of the binary per start, several milliseconds
//     and as many MB of memory charged to the container while it runs.
//
// A read-only bind mount would also refuse writes, but a container holding
// CAP_SYS_ADMIN can remount it writable; the overlay has no writable superblock to
// remount.

// exeFdMin keeps the sealed handle above every descriptor os/exec's child moves
// stdio and ExtraFiles through before it execs the handle's /proc/self/fd path.
const exeFdMin = 64

// sealedExe opens the binary at path (a symlink such as /proc/self/exe is followed)
// in one of the sealed forms above.
func sealedExe(path string) (f *os.File, how string, err error) {
	if os.Geteuid() != 0 && unix.Access(path, unix.W_OK) != nil {
		// Rootless: the container's root is the caller, who can't write the binary
		// (root's /usr/bin/thinbox), so there is nothing to protect — and an ordinary
		// user can't mount the overlay anyway; the memfd would cost a copy per start.
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, "", err
		}
		f, err := highFd(fd, "thinbox")
		return f, "unwritable", err
	}
	if real, rerr := filepath.EvalSymlinks(path); rerr == nil {
		if f, err = sealedOverlay(real); err == nil {
			return f, "overlayfs", nil
		}
	}
	f, merr := sealedMemfd(path)
	if merr != nil {
		return nil, "", errors.Join(err, merr)
	}
	return f, "memfd", nil
}

func sealedOverlay(binPath string) (*os.File, error) {
	dir, name := filepath.Split(binPath)
	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(ctx)
	// overlayfs wants two lower layers when it has no upper one. The second is /dev:
	// present everywhere and never the binary's directory; the binary's directory is
	// the top layer, so nothing in /dev can shadow the binary.
	lower := overlayEscape(dir) + ":/dev"
	if err := unix.FsconfigSetString(ctx, "lowerdir", lower); err != nil {
		return nil, fmt.Errorf("overlay lowerdir=%s: %w", lower, err)
	}
	// Inode number mapping across layers is of no use here and logs to dmesg.
	_ = unix.FsconfigSetString(ctx, "xino", "off")
	if err := unix.FsconfigCreate(ctx); err != nil {
		return nil, fmt.Errorf("overlay lowerdir=%s: %w", lower, err)
	}
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in the overlay: %w", name, err)
	}
	return highFd(fd, "thinbox (overlayfs)")
}

// overlayEscape escapes what overlayfs's option parser splits on.
func overlayEscape(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, `\`, `\\`), `:`, `\:`)
}

// mfdExec asks for an executable memfd (Linux 6.3 warns without it, and refuses one
// when vm.memfd_noexec=2).
const mfdExec = 0x10

func sealedMemfd(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("thinbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("thinbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "thinbox (memfd)")
	defer mem.Close()
	if _, err := io.Copy(mem, src); err != nil {
		return nil, fmt.Errorf("copy the binary into a memfd: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return nil, fmt.Errorf("seal the memfd: %w", err)
	}
	// The kernel refuses to exec a file open for writing (ETXTBSY): keep a read-only
	// handle and drop the writable one.
	ro, err := unix.Open(fdPath(mem), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen the memfd: %w", err)
	}
	return highFd(ro, "thinbox (memfd)")
}

// highFd moves fd to exeFdMin or above.
func highFd(fd int, name string) (*os.File, error) {
	hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, exeFdMin)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	return os.NewFile(uintptr(hi), name), nil
}
