package launcher

import (
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"golang.org/x/sys/unix"
)

// runPID1 is the minimal init (--init): it starts the payload as its only child, hands
// it the terminal, forwards every signal it gets to it, reaps every zombie in the
// container (orphans are re-parented to PID 1), and exits with the payload's status
// once the payload ends — which ends the container.
func runPID1(cfg *Config, sock *os.File) error {
	p := &cfg.Process
	path, err := prepareProcess(p)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 32)
	// Everything catchable; SIGCHLD drives the reaping. Installed before the payload
	// starts so no signal meant for it is lost.
	signal.Notify(sigs)
	attr := &os.ProcAttr{
		Dir:   cwdOf(p),
		Env:   p.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Setctty:    p.Terminal,
			Ctty:       0,
			Credential: &syscall.Credential{Uid: p.UID, Gid: p.GID, Groups: p.Groups},
		},
	}
	proc, err := os.StartProcess(path, p.Args, attr)
	if err != nil {
		return execError(p.Args[0], unwrapPathErr(err))
	}
	// The payload runs: EOF on the sync socket tells the parent.
	sock.Close()
	// Give back what set-up allocated; PID 1 stays for the container's lifetime.
	debug.FreeOSMemory()

	payload := proc.Pid
	for s := range sigs {
		if s != unix.SIGCHLD {
			_ = unix.Kill(payload, s.(syscall.Signal))
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == payload {
				os.Exit(ExitCode(syscall.WaitStatus(ws)))
			}
		}
	}
	return nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
