package launcher

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/thinbox/thinbox/launcher/seccomp"
	"golang.org/x/sys/unix"
)

// runPID1 is the minimal init (--init): it starts the payload as its only child, hands
// it the terminal, forwards every signal it gets to it, reaps every zombie in the
// container (orphans are re-parented to PID 1), and exits with the payload's status
// once the payload ends — which ends the container.
func runPID1(cfg *Config, filter *seccomp.Filter, sock *os.File, sigs *pid1Signals) error {
	p := &cfg.Process
	path, err := prepareProcess(p)
	if err != nil {
		return err
	}
	// Installed before the payload starts so no signal meant for it is lost.
	<-sigs.ready
	if err := confinePID1(&cfg.Security, filter); err != nil {
		return err
	}
	attr := &os.ProcAttr{
		Dir:   cwdOf(p),
		Env:   p.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Setctty:    p.Terminal,
			Ctty:       0,
			Credential: &syscall.Credential{Uid: p.UID, Gid: p.GID, Groups: p.Groups, NoSetGroups: setgroupsDenied() && len(p.Groups) == 0},
		},
	}
	if p.UID != 0 && cfg.Security.Ambient != 0 {
		// The fork child raises these after its setuid (see capsAfterSetuid for why
		// they are cut to what this thread is permitted).
		_, perm, err := capget()
		if err != nil {
			return stepErr("set capabilities", err)
		}
		for _, c := range (cfg.Security.Ambient & perm).List() {
			attr.Sys.AmbientCaps = append(attr.Sys.AmbientCaps, uintptr(c))
		}
	}
	proc, err := os.StartProcess(path, p.Args, attr)
	if err != nil {
		return execError(p.Args[0], unwrapPathErr(err))
	}
	if err := lowerPID1(); err != nil {
		_ = proc.Kill()
		return err
	}
	// The payload runs: EOF on the sync socket tells the parent.
	sock.Close()
	// Give back what set-up allocated, as PID 1 stays for the container's lifetime —
	// but later and aside: a full GC here, in line, held up the reaping of a payload
	// that exits at once by 1 to 2 ms, and competed with every payload's own start.
	go func() {
		time.Sleep(freeMemoryAfter)
		debug.FreeOSMemory()
	}()

	payload := proc.Pid
	go func() {
		for s := range sigs.c {
			_ = unix.Kill(payload, s.(syscall.Signal))
		}
	}()
	// Reaping blocks in wait4 rather than following SIGCHLD: a signal can be coalesced
	// or dropped, a waiting wait4 can't miss a child.
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ECHILD: the payload is gone without our seeing it; nothing left to wait for.
			os.Exit(255)
		}
		if pid == payload {
			os.Exit(ExitCode(syscall.WaitStatus(ws)))
		}
	}
}

// freeMemoryAfter is how long the init waits before returning its set-up memory.
const freeMemoryAfter = 100 * time.Millisecond

// pid1Signals are the signals the --init PID 1 passes on to the payload.
type pid1Signals struct {
	c     chan os.Signal
	ready chan struct{}
}

// catchSignals starts catching in the background. signal.Notify for every signal makes
// one round trip per signal to the runtime's signal thread: 1 to 5 ms in all on a busy
// machine, which then overlaps the mounts instead of adding to them.
func catchSignals() *pid1Signals {
	s := &pid1Signals{c: make(chan os.Signal, 32), ready: make(chan struct{})}
	go func() {
		signal.Notify(s.c, pid1Forwarded...)
		close(s.ready)
	}()
	return s
}

// pid1Forwarded is every signal a process can be sent to act on, as tini forwards them —
// but not SIGURG, which the Go runtime sends itself to preempt goroutines (a catch-all
// Notify would fill the channel with them and drop the signals that matter), nor
// SIGCHLD, which is the init's own business.
var pid1Forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE,
	unix.SIGALRM, unix.SIGTERM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
	unix.SIGWINCH, unix.SIGPWR, unix.SIGSYS, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM, unix.SIGPROF, unix.SIGIO,
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
