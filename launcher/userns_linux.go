package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// userNSStage is argv[1] of a process cloned into a new user namespace whose maps the
// parent has not written yet.
const userNSStage = "userns"

// initArgv is what the first stage of a container's init execs: the init itself.
var initArgv, _ = json.Marshal([]string{InitArg0})

// userNSStage0 runs first in a new user namespace. Until the parent has written the
// uid and gid maps this process is nobody there, and the exec that started it left it
// no capabilities (execve grants them only to the namespace's root). So it waits for the
// parent's go-ahead, which names what to run, and execs again: now as the mapped root,
// with every capability in the namespace. Go can't do this with one exec: it can't
// unshare a user namespace once its runtime has started threads (golang/go#22283), and
// os/exec writes only single-id maps itself, never through newuidmap.
func userNSStage0(sock *os.File) error {
	b, err := readFrame(sock)
	if err != nil {
		return stepErr("wait for the id maps", err)
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil || len(argv) == 0 {
		return stepErr("wait for the id maps", fmt.Errorf("bad argv frame %q", b))
	}
	if argv[0] != InitArg0 {
		// A helper command (RunInUserNS) gets no sync socket.
		unix.CloseOnExec(syncFd)
	}
	return stepErr("exec in the user namespace", unix.Exec("/proc/self/exe", argv, os.Environ()))
}

// setgroupsDenied reports whether setgroups(2) is forbidden in this user namespace (a
// single-id map written without newgidmap).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && string(b) == "deny\n"
}

// RunInUserNS runs thinbox with args (argv[0] first) as root of a new user namespace
// whose maps mapIDs writes, with the caller's stdio, and returns its exit status. Work
// on files owned by a user's subordinate ids (unpacking an image, removing a layer)
// needs it: outside, the user can't touch them.
func RunInUserNS(self string, args []string, env []string, mapIDs func(pid int) error, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if self == "" {
		self = "/proc/self/exe"
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("launcher: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parent.Close()
	argv, err := json.Marshal(args)
	if err != nil {
		child.Close()
		return 0, err
	}
	cmd := &exec.Cmd{
		Path:        self,
		Args:        []string{InitArg0, userNSStage},
		Env:         env,
		ExtraFiles:  []*os.File{child},
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: unix.SIGKILL},
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return 0, fmt.Errorf("launcher: start in a user namespace: %w", err)
	}
	if err := mapIDs(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("launcher: map ids: %w", err)
	}
	if err := writeFrame(parent, argv); err != nil {
		_ = cmd.Process.Kill()
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, fmt.Errorf("launcher: in a user namespace: %w", err)
	}
	return ExitCode(cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
}

// attachIDMappedLower mounts lower at target (in the launcher's own mount namespace),
// idmapped through a user namespace with the container's maps, before the container is
// cloned: the container's mount namespace starts as a copy that holds it. (Attaching a
// detached idmapped tree inside the container's namespace is refused by the kernel.) The
// maps need a user namespace to exist: a throw-away one, held by a first-stage init that
// exits as soon as its namespace is open. The returned detach removes the launcher's
// own copy once the container has made its mount tree private.
func attachIDMappedLower(self, lower, target string, uids, gids []syscall.SysProcIDMap) (detach func(), err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parent := os.NewFile(uintptr(fds[0]), "holder-parent")
	child := os.NewFile(uintptr(fds[1]), "holder-child")
	holder := &exec.Cmd{
		Path:       self,
		Args:       []string{InitArg0, userNSStage},
		ExtraFiles: []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER,
			UidMappings: uids, GidMappings: gids, GidMappingsEnableSetgroups: true,
			Pdeathsig: unix.SIGKILL,
		},
	}
	err = holder.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("user namespace for the idmap: %w", err)
	}
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	// Closing our end lets the holder's first stage fail its wait and exit.
	parent.Close()
	_ = holder.Wait()
	if err != nil {
		return nil, err
	}
	defer unix.Close(ns)
	tree, err := unix.OpenTree(unix.AT_FDCWD, lower, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", lower, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return nil, fmt.Errorf("idmap %s (needs Linux 5.12+ and a filesystem that supports it): %w", lower, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return nil, fmt.Errorf("attach the idmapped image at %s: %w", target, err)
	}
	return func() { _ = unix.Unmount(target, unix.MNT_DETACH) }, nil
}
