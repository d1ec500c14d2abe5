package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg0 is the argv[0] under which thinbox re-executes itself as the container's
// init; main hands over to Init when it sees it, before the CLI parses anything.
const InitArg0 = "thinbox-init"

// Options says how to start a container, as opposed to what it is (Config).
type Options struct {
	// Stdio of the payload. A nil Stdin means /dev/null. With Config.Process.Terminal
	// these are the caller's terminal: the payload gets a pty and they are copied to
	// and from it.
	Stdin, Stdout, Stderr *os.File
	// Interactive forwards Stdin to the pty (-i with -t).
	Interactive bool
	// DieWithParent kills the container when the launcher dies (foreground runs).
	DieWithParent bool
	// Detach makes the container a child of the launcher's parent (CLONE_PARENT), for
	// service mode: systemd, which started the launcher, is then the parent of the
	// container's PID 1 that it supervises once the launcher has exited. The launcher
	// must not Wait for a detached container.
	Detach bool
	// Placed is called with the child's pid as soon as the child exists, while it sets
	// up its mounts; the payload does not start before Placed returns. The caller puts
	// the child in its cgroup here. An error aborts the start.
	Placed func(pid int) error
	// Self is the thinbox binary to re-execute; "" means /proc/self/exe.
	Self string
	// The uid and gid maps of the child's new user namespace (Config.UserNS), one of:
	// UIDMaps and GIDMaps, which the kernel takes from the launcher directly (root's
	// maps, or an ordinary user's own single id) before the init runs; or MapIDs, which
	// writes them through the setuid newuidmap/newgidmap while a first stage of the init
	// waits (userNSStage0).
	UIDMaps, GIDMaps []syscall.SysProcIDMap
	SetgroupsAllowed bool
	MapIDs           func(pid int) error
}

// Container is a started container as seen from the launcher.
type Container struct {
	Pid int

	cmd     *exec.Cmd
	sigs    chan os.Signal
	tty     *ttyState
	waited  bool
	sigDone chan struct{}
}

// ErrInterrupted is returned by Start when the launcher is asked to stop (SIGINT,
// SIGTERM, SIGHUP, SIGQUIT) before the payload runs; the container is gone.
var ErrInterrupted = errors.New("interrupted while starting")

// forwarded are the signals thinbox passes on to the container.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// Start creates the container and returns once its payload has been exec'd (or the
// init has started it), or with the step that failed. On error nothing of the child is
// left running.
func Start(cfg *Config, opt Options) (_ *Container, err error) {
	payload, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("launcher: encode config: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("launcher: socketpair: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parentSock.Close()

	self := opt.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	// The init runs from a sealed handle on the binary, never from its host path (see
	// exeseal_linux.go); the handle is close-on-exec, so only the exec itself uses it.
	exe, _, err := sealedExe(self)
	if err != nil {
		childSock.Close()
		return nil, fmt.Errorf("launcher: seal the thinbox binary %s: %w", self, err)
	}
	defer exe.Close()
	cmd := &exec.Cmd{
		Path: fdPath(exe),
		Args: []string{InitArg0},
		// The init's own environment, never the payload's (that travels in the config).
		// With transparent huge pages set to "always" (Debian's kernels, Raspberry Pi OS)
		// the Go heap of the --init PID 1 faults in as 2 MiB pages that the scavenger can't
		// hand back: 4.5 MiB resident per container instead of 1.6.
		Env:        []string{"GODEBUG=disablethp=1"},
		ExtraFiles: []*os.File{childSock},
		Stdin:      opt.Stdin,
		Stdout:     opt.Stdout,
		Stderr:     opt.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
			// Its own session: the caller's terminal signals reach the container only
			// through the launcher, once, and never during set-up.
			Setsid: true,
		},
	}
	if !cfg.NetHost {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWNET
	}
	if cfg.UserNS {
		// The other namespaces are created inside the new user namespace and owned by it.
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		switch {
		case opt.UIDMaps != nil:
			// os/exec writes the maps between clone and exec, and the child becomes the
			// namespace's root before it execs, so the init starts with every capability
			// there.
			cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = opt.UIDMaps, opt.GIDMaps
			cmd.SysProcAttr.GidMappingsEnableSetgroups = opt.SetgroupsAllowed
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !opt.SetgroupsAllowed}
		case opt.MapIDs != nil:
			cmd.Args = []string{InitArg0, userNSStage}
		default:
			childSock.Close()
			return nil, fmt.Errorf("launcher: a user namespace needs its id maps")
		}
	}
	switch {
	case opt.DieWithParent && opt.Detach:
		return nil, fmt.Errorf("launcher: DieWithParent and Detach exclude each other")
	case opt.DieWithParent:
		cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	case opt.Detach:
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_PARENT
	}

	c := &Container{cmd: cmd, sigs: make(chan os.Signal, 16)}
	var consoleParent *os.File
	if cfg.Process.Terminal {
		// The pty is made inside the container, on its own devpts, so the payload sees
		// /dev/pts/0 and /dev/console is its terminal; the init passes the master back
		// over this socket, as runc's console socket does.
		cfds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			childSock.Close()
			return nil, fmt.Errorf("launcher: socketpair: %w", err)
		}
		consoleParent = os.NewFile(uintptr(cfds[0]), "console-parent")
		consoleChild := os.NewFile(uintptr(cfds[1]), "console-child")
		defer consoleParent.Close()
		defer consoleChild.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, consoleChild)
		cmd.Stdin = nil
	}
	defer func() {
		if err != nil {
			c.tty.close()
		}
	}()

	signal.Notify(c.sigs, forwarded...)
	defer func() {
		if err != nil {
			signal.Stop(c.sigs)
		}
	}()

	if cfg.LowerIDMapped {
		detach, err := attachIDMappedLower(fdPath(exe), cfg.Lower, cfg.LowerMount, opt.UIDMaps, opt.GIDMaps)
		if err != nil {
			childSock.Close()
			return nil, fmt.Errorf("launcher: %w", err)
		}
		// Start returns once the init has exec'd the payload, long after it made its
		// copy of the mount private.
		defer detach()
	}
	err = cmd.Start()
	childSock.Close()
	if err != nil {
		return nil, fmt.Errorf("launcher: start init: %w", err)
	}
	c.Pid = cmd.Process.Pid
	abort := func(e error) (*Container, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, e
	}

	if cfg.UserNS && opt.MapIDs != nil {
		if err := opt.MapIDs(c.Pid); err != nil {
			return abort(fmt.Errorf("launcher: map ids: %w", err))
		}
		if err := writeFrame(parentSock, initArgv); err != nil {
			return abort(c.childError(parentSock, fmt.Errorf("launcher: release the user namespace: %w", err)))
		}
	}
	if err := writeFrame(parentSock, payload); err != nil {
		return abort(c.childError(parentSock, fmt.Errorf("launcher: send config: %w", err)))
	}
	// Built now, while the child mounts its root, and sent with the go-ahead.
	goFrame := []byte{'g'}
	filter, err := cfg.Security.filter()
	if err != nil {
		return abort(fmt.Errorf("launcher: seccomp: %w", err))
	}
	if filter != nil {
		b, _ := filter.MarshalBinary()
		goFrame = append(goFrame, b...)
	}
	if opt.Placed != nil {
		if err := opt.Placed(c.Pid); err != nil {
			return abort(err)
		}
	}
	if sig := c.pendingStop(); sig != nil {
		return abort(fmt.Errorf("launcher: %w by signal %s", ErrInterrupted, unix.SignalName(sig.(syscall.Signal))))
	}
	// A failed write means the child already died; its report says why.
	_ = writeFrame(parentSock, goFrame)
	if consoleParent != nil {
		master, rerr := recvFd(consoleParent)
		if rerr != nil {
			// No pty means set-up failed before it; the sync socket says why.
			return abort(c.childError(parentSock, fmt.Errorf("launcher: receive pty: %w", rerr)))
		}
		c.tty = newTTY(master, opt)
	}
	if err := c.childError(parentSock, nil); err != nil {
		return abort(err)
	}
	c.tty.start(opt)
	return c, nil
}

// childError reads the child's report: nil on EOF (the payload was exec'd), the step
// that failed otherwise. fallback is returned when the child died without a report.
func (c *Container) childError(sock io.Reader, fallback error) error {
	b, err := readFrame(sock)
	if err == io.EOF {
		return fallback
	}
	if err != nil {
		if fallback != nil {
			return fallback
		}
		return fmt.Errorf("launcher: read init report: %w", err)
	}
	var se syncError
	if err := json.Unmarshal(b, &se); err != nil {
		return fmt.Errorf("launcher: bad init report %q: %w", b, err)
	}
	return &StepError{Step: se.Step, Msg: se.Msg, Errno: syscall.Errno(se.Errno), code: se.Code}
}

// pendingStop drains signals that arrived during set-up and returns the first one
// that asks thinbox to stop; the rest are dropped (the payload did not exist yet).
func (c *Container) pendingStop() os.Signal {
	for {
		select {
		case s := <-c.sigs:
			switch s {
			case unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT:
				return s
			}
		default:
			return nil
		}
	}
}

// Signal sends sig to the container's PID 1.
func (c *Container) Signal(sig syscall.Signal) error {
	return c.cmd.Process.Signal(sig)
}

// Release lets the container run on without the launcher (service mode): signals are
// no longer forwarded and the launcher may exit.
func (c *Container) Release() {
	signal.Stop(c.sigs)
	c.tty.restore()
	_ = c.cmd.Process.Release()
}

// Wait forwards signals to the container until it ends and returns the exit status
// thinbox should end with: the payload's code, or 128+N when killed by signal N.
func (c *Container) Wait() (int, error) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-c.sigs:
				if s == unix.SIGWINCH && c.tty != nil {
					c.tty.resize()
					continue
				}
				_ = c.cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := c.cmd.Wait()
	close(done)
	signal.Stop(c.sigs)
	c.tty.drain()
	c.tty.restore()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, fmt.Errorf("launcher: wait: %w", err)
	}
	return ExitCode(c.cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
}

// ExitCode maps a wait status the way shells do: the exit code, or 128+N for signal N.
func ExitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}
