package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/thinbox/thinbox/launcher/seccomp"
	"golang.org/x/sys/unix"
)

var initComm = []byte(InitArg0 + "\x00")

// syncFd is where the init half finds its end of the sync socket (ExtraFiles[0]).
const syncFd = 3

// IsInit reports whether this process is thinbox re-executed as a container init.
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == InitArg0 }

// Init is the container's init half: it runs in the new namespaces, builds the
// container from the Config the parent sends, and execs the payload (or stays as PID 1
// with Config.Init). It never returns. A failure is reported to the parent as the step
// that failed, and the process exits.
func Init() {
	// Set-up changes process-wide state (mounts, cwd, credentials) from one thread so
	// that no Go runtime thread runs with half of it.
	runtime.LockOSThread()
	// Not dumpable: a process of the container can then neither ptrace this one nor
	// open its /proc/PID/exe, mem, environ or fds (the thinbox binary among them)
	// without CAP_SYS_PTRACE. exec makes the payload dumpable again.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// comm would be "exe" (from /proc/self/exe); ps in the container should say what it is.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&initComm[0])), 0, 0, 0)
	sock := os.NewFile(syncFd, "sync")
	if sock == nil {
		fmt.Fprintln(os.Stderr, "thinbox-init: not started by thinbox (no sync socket)")
		os.Exit(125)
	}
	var err error
	if len(os.Args) > 1 && os.Args[1] == userNSStage {
		err = userNSStage0(sock)
	} else {
		err = initContainer(sock)
	}
	// initContainer only returns on failure.
	var se *initError
	if !errors.As(err, &se) {
		se = &initError{step: "init", err: err}
	}
	report := syncError{Step: se.step, Msg: se.err.Error(), Code: se.code}
	var errno unix.Errno
	if errors.As(se.err, &errno) {
		report.Errno = int(errno)
	}
	_ = writeFrame(sock, encodeSyncError(report))
	os.Exit(125)
}

// initError names the step of set-up that failed.
type initError struct {
	step string
	err  error
	code int
}

func (e *initError) Error() string { return e.step + ": " + e.err.Error() }

func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return &initError{step: step, err: err}
}

func initContainer(sock *os.File) error {
	b, err := readFrame(sock)
	if err != nil {
		return stepErr("read config", err)
	}
	// The socket must not leak into the payload: its end closing on exec is how the
	// parent learns the exec succeeded.
	unix.CloseOnExec(syncFd)
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return stepErr("decode config", err)
	}
	if cfg.LowerIDMapped {
		// The parent attached the idmapped image there before cloning us.
		cfg.Lower = cfg.LowerMount
	}
	var sigs *pid1Signals
	if cfg.Init {
		sigs = catchSignals()
	}
	if err := setupRootfs(&cfg); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return stepErr("sethostname "+cfg.Hostname, err)
	}
	if !cfg.NetHost {
		if err := loopbackUp(); err != nil {
			return stepErr("bring up lo", err)
		}
	}
	// Wait until the parent has put us in our cgroup: nothing of the payload may run
	// outside it, and the cgroup namespace must be rooted there.
	g, err := readFrame(sock)
	if err == nil && (len(g) == 0 || g[0] != 'g') {
		err = fmt.Errorf("unexpected frame %q", g)
	}
	if err != nil {
		return stepErr("wait for parent", err)
	}
	var filter *seccomp.Filter
	if len(g) > 1 {
		filter = new(seccomp.Filter)
		if err := filter.UnmarshalBinary(g[1:]); err != nil {
			return stepErr("read seccomp filter", err)
		}
	}
	if cfg.CgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return stepErr("unshare cgroup namespace", err)
		}
	}
	if err := finishRootfs(&cfg); err != nil {
		return err
	}
	if cfg.Init {
		return runPID1(&cfg, filter, sock, sigs)
	}
	return execPayload(&cfg, filter)
}
