package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/thinbox/thinbox/systemd"
	"golang.org/x/sys/unix"
)

// probeTimeout bounds each probe that waits on something else: a child process, the
// systemd bus, dpkg.
const probeTimeout = 10 * time.Second

// Host is the real machine.
type Host struct {
	// Exec is what Unshare runs inside each new namespace: a program that exits 0 at
	// once. thinbox uses itself (/proc/self/exe --version), so the check needs nothing
	// from the filesystem and tests the binary that will run the containers.
	Exec []string
}

// NewHost probes the running kernel.
func NewHost() *Host { return &Host{Exec: []string{"/proc/self/exe", "--version"}} }

func (h *Host) Uname() (string, string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", "", fmt.Errorf("doctor: uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]), nil
}

var cloneFlags = map[Namespace]uintptr{
	"pid":    unix.CLONE_NEWPID,
	"mount":  unix.CLONE_NEWNS,
	"uts":    unix.CLONE_NEWUTS,
	"ipc":    unix.CLONE_NEWIPC,
	"net":    unix.CLONE_NEWNET,
	"cgroup": unix.CLONE_NEWCGROUP,
	"user":   unix.CLONE_NEWUSER,
}

// Unshare starts h.Exec in a new namespace of that kind. Unprivileged callers get a
// user namespace as well, as a rootless container would: it is what lets them create
// the others.
func (h *Host) Unshare(ctx context.Context, ns Namespace) error {
	flag, ok := cloneFlags[ns]
	if !ok {
		return fmt.Errorf("doctor: unknown namespace %q", ns)
	}
	attr := &syscall.SysProcAttr{Cloneflags: flag}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Exec[0], h.Exec[1:]...)
	cmd.SysProcAttr = attr
	if err := cmd.Run(); err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err // "fork/exec /proc/self/exe: operation not permitted" → the errno
		}
		return err
	}
	return nil
}

// MountOverlay mounts lower+upper+work in dir on a locked OS thread that first moves to
// a private mount namespace, so the mount is never visible to the machine. The thread
// is never unlocked: Go ends a locked thread when its goroutine returns, so nothing
// else ever runs in that namespace.
func (h *Host) MountOverlay(ctx context.Context, dir string) error {
	tmp, err := os.MkdirTemp(dir, ".thinbox-doctor-")
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o700); err != nil {
			return fmt.Errorf("doctor: %w", err)
		}
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- fmt.Errorf("unshare a mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- fmt.Errorf("make / private: %w", err)
			return
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
			filepath.Join(tmp, "lower"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"))
		merged := filepath.Join(tmp, "merged")
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			done <- err
			return
		}
		done <- unix.Unmount(merged, unix.MNT_DETACH)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) Systemd(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := systemd.Connect(ctx, false)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.Version(ctx)
}

func (h *Host) DpkgArch(ctx context.Context) (string, error) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, dpkg, "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("doctor: dpkg --print-architecture: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (h *Host) Free(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("doctor: statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func (h *Host) FileCaps(path string) (bool, error) {
	n, err := unix.Getxattr(path, "security.capability", nil)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("doctor: getxattr %s: %w", path, err)
	}
	return n > 0, nil
}

func (h *Host) ControllerHint(controller string) string {
	return systemd.ControllerHint(controller, "/")
}

// ownerUID is the uid that owns a file.
func ownerUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
