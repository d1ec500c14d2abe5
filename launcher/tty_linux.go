package launcher

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyState is the launcher's side of a container pty: the master, the caller's
// terminal (put in raw mode while the container runs) and the copy loops. Every method
// is safe on a nil *ttyState, which stands for "no pty".
type ttyState struct {
	master      *os.File
	in, out     *os.File
	oldState    *term.State
	restoreOnce sync.Once
	copied      sync.WaitGroup
}

func newTTY(master *os.File, opt Options) *ttyState {
	t := &ttyState{master: master, in: opt.Stdin, out: opt.Stdout}
	t.resize()
	return t
}

// start puts the caller's terminal in raw mode and begins copying; called once the
// payload runs, so an aborted start never leaves the terminal raw.
func (t *ttyState) start(opt Options) {
	if t == nil {
		return
	}
	if opt.Interactive && t.in != nil {
		if term.IsTerminal(int(t.in.Fd())) {
			if st, err := term.MakeRaw(int(t.in.Fd())); err == nil {
				t.oldState = st
			}
		}
		// stdin → pty is not waited for: it blocks in read until the caller types.
		go func() { _, _ = io.Copy(t.master, t.in) }()
	}
	if t.out != nil {
		t.copied.Add(1)
		go func() {
			defer t.copied.Done()
			// Ends with EIO once every holder of the slave is gone.
			_, _ = io.Copy(t.out, t.master)
		}()
	}
}

// resize copies the caller's window size to the pty; the kernel then sends SIGWINCH
// to the container's foreground process group.
func (t *ttyState) resize() {
	if t == nil {
		return
	}
	for _, f := range []*os.File{t.in, t.out} {
		if f != nil && term.IsTerminal(int(f.Fd())) {
			if sz, err := pty.GetsizeFull(f); err == nil {
				_ = pty.Setsize(t.master, sz)
				return
			}
		}
	}
}

// drain waits for the output copy to finish after the container ended.
func (t *ttyState) drain() {
	if t == nil {
		return
	}
	t.copied.Wait()
	t.master.Close()
}

// restore puts the caller's terminal back as it was; safe to call on every exit path.
func (t *ttyState) restore() {
	if t == nil {
		return
	}
	t.restoreOnce.Do(func() {
		if t.oldState != nil {
			_ = term.Restore(int(t.in.Fd()), t.oldState)
		}
	})
}

// close releases the pty after a failed start.
func (t *ttyState) close() {
	if t == nil {
		return
	}
	t.restore()
	t.master.Close()
}

// recvFd receives one file descriptor sent with SCM_RIGHTS.
func recvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, io.EOF
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("bad control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("bad SCM_RIGHTS message (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// sendFd sends one file descriptor with SCM_RIGHTS.
func sendFd(sock int, f *os.File) error {
	return unix.Sendmsg(sock, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
}
