package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// mountAt mounts onto a target that has been opened inside the rootfs (O_PATH); going
// through /proc/self/fd means a symlink planted in the image can't redirect the mount.
func mountAt(source string, target *os.File, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, fdPath(target), fstype, flags, data)
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// setupRootfs builds the container's mount tree under cfg.RootFS and pivots into it.
func setupRootfs(cfg *Config) error {
	// First, before any mount: nothing we do may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return stepErr("make / private", err)
	}
	if err := mountRoot(cfg); err != nil {
		return err
	}
	if err := writeFiles(cfg); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := bindVolume(cfg.RootFS, m); err != nil {
			return stepErr("volume "+m.Source+":"+m.Target, err)
		}
	}
	if err := mountSpecial(cfg); err != nil {
		return err
	}
	return stepErr("pivot_root "+cfg.RootFS, pivotRoot(cfg.RootFS))
}

func mountRoot(cfg *Config) error {
	if cfg.Upper == "" {
		if err := unix.Mount(cfg.Lower, cfg.RootFS, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return stepErr("bind rootfs "+cfg.Lower, err)
		}
		return nil
	}
	for _, p := range []string{cfg.Lower, cfg.Upper, cfg.Work} {
		// overlayfs splits its options on ',' and its lower dirs on ':'.
		if strings.ContainsAny(p, ",:") {
			return stepErr("mount overlay", fmt.Errorf("path %q contains ',' or ':', which overlayfs cannot take", p))
		}
	}
	opts := "lowerdir=" + cfg.Lower + ",upperdir=" + cfg.Upper + ",workdir=" + cfg.Work
	if cfg.UserNS {
		// Mounted by a user namespace's root (Linux 5.11+): overlayfs keeps its
		// metadata in user.overlay.* xattrs, the trusted.* ones being out of reach.
		opts += ",userxattr"
	}
	// nodev: a device node in the image, or one the container's root makes with
	// CAP_MKNOD, opens nothing. Only /dev's standard nodes work (see setupDev); on a
	// host without a device cgroup this is what keeps /dev/sda out of reach.
	if err := unix.Mount("overlay", cfg.RootFS, "overlay", unix.MS_NODEV, opts); err != nil {
		return stepErr("mount overlay on "+cfg.RootFS, err)
	}
	return nil
}

// writeFiles writes the generated /etc files into the container's layer. os.Root
// resolves every path inside the rootfs, so an image whose /etc/hosts is a symlink to
// a host path only ever reaches its own tree.
func writeFiles(cfg *Config) error {
	if len(cfg.Files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(cfg.RootFS)
	if err != nil {
		return stepErr("open rootfs", err)
	}
	defer root.Close()
	for name, content := range cfg.Files {
		rel := strings.TrimPrefix(filepath.Clean(name), "/")
		if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
			return stepErr("write "+name, err)
		}
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return stepErr("write "+name, err)
		}
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return stepErr("write "+name, err)
		}
	}
	return nil
}

// openDir opens (creating if needed) a directory inside the rootfs.
func openDir(rootfs, path string) (*os.File, error) {
	f, err := pathrs.OpenInRoot(rootfs, path)
	if errors.Is(err, os.ErrNotExist) {
		root, err := os.Open(rootfs)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		return pathrs.MkdirAllHandle(root, path, 0o755)
	}
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && !st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is not a directory in the image", path)
	}
	return f, err
}

// openFileTarget opens (creating an empty one if needed) a file inside the rootfs to
// mount a file over.
func openFileTarget(rootfs, path string) (*os.File, error) {
	if f, err := pathrs.OpenInRoot(rootfs, path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	dir, err := openDir(rootfs, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(path), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	if err == nil {
		unix.Close(fd)
	}
	return pathrs.OpenInRoot(rootfs, path)
}

func bindVolume(rootfs string, m Mount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	var target *os.File
	if st.IsDir() {
		target, err = openDir(rootfs, m.Target)
	} else {
		target, err = openFileTarget(rootfs, m.Target)
	}
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer target.Close()
	if err := mountAt(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// A fresh handle: the old one still names the directory under the new mount.
	t2, err := pathrs.OpenInRoot(rootfs, m.Target)
	if err != nil {
		return err
	}
	defer t2.Close()
	// nodev, as the root: a volume is no way around the standard /dev either.
	extra := uintptr(unix.MS_NODEV)
	if m.ReadOnly {
		extra |= unix.MS_RDONLY
	}
	return remount(fdPath(t2), extra)
}

// remountReadOnly makes a bind mount read-only, keeping the flags the kernel locks
// (nosuid, nodev, noexec) so the remount is allowed.
func remountReadOnly(path string) error { return remount(path, unix.MS_RDONLY) }

// remount adds flags to a bind mount, keeping the ones it has (a read-only host
// mount stays read-only; the kernel refuses to drop nosuid, nodev, noexec it locked).
func remount(path string, extra uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return err
	}
	flags := unix.MS_BIND | unix.MS_REMOUNT | extra
	for _, f := range []uintptr{unix.ST_RDONLY, unix.ST_NOSUID, unix.ST_NODEV, unix.ST_NOEXEC, unix.ST_NOATIME, unix.ST_NODIRATIME, unix.ST_RELATIME} {
		if uintptr(sfs.Flags)&f != 0 {
			flags |= f
		}
	}
	return unix.Mount("", path, "", flags, "")
}

const (
	noSuidDevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

func mountSpecial(cfg *Config) error {
	r := cfg.RootFS
	proc, err := openDir(r, "/proc")
	if err != nil {
		return stepErr("mount /proc", err)
	}
	defer proc.Close()
	if err := mountAt("proc", proc, "proc", noSuidDevExec, ""); err != nil {
		return stepErr("mount /proc", err)
	}
	sys, err := openDir(r, "/sys")
	if err != nil {
		return stepErr("mount /sys", err)
	}
	defer sys.Close()
	sysFlags := uintptr(noSuidDevExec | unix.MS_RDONLY)
	if cfg.Security.Privileged {
		sysFlags &^= unix.MS_RDONLY
	}
	if err := mountAt("sysfs", sys, "sysfs", sysFlags, ""); err != nil {
		// A user namespace may mount sysfs only for a network namespace it owns; with
		// --net=host it gets the host's /sys, read-only, as a bind mount.
		if !cfg.UserNS || !errors.Is(err, unix.EPERM) {
			return stepErr("mount /sys", err)
		}
		if err := mountAt("/sys", sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return stepErr("bind /sys", err)
		}
		if err := remount(fdPath(sys), sysFlags&unix.MS_RDONLY); err != nil {
			return stepErr("remount /sys read-only", err)
		}
	}
	if err := setupDev(cfg); err != nil {
		return err
	}
	if cfg.Security.Privileged {
		return nil
	}
	return maskPaths(cfg.RootFS)
}

// pivotRoot makes rootfs the root and detaches the old one, with the trick runc and
// lxc use: pivot_root(".", ".") stacks the old root on top of the new one, so no
// directory inside the image is needed to hold it.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return err
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// The old root may be shared with the host; make it a slave before unmounting so the
	// unmount does not propagate.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return err
	}
	return unix.Chdir("/")
}

// finishRootfs does what must wait until the container sits in its cgroup.
func finishRootfs(cfg *Config) error {
	if cfg.CgroupNS {
		if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", noSuidDevExec|unix.MS_RDONLY, ""); err != nil {
			return stepErr("mount /sys/fs/cgroup", err)
		}
	}
	if cfg.ReadOnly {
		if err := remountReadOnly("/"); err != nil {
			return stepErr("remount / read-only", err)
		}
	}
	return nil
}
