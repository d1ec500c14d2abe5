package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The sd_notify protocol, as defined by systemd (sd_notify(3)): newline-separated
// assignments in one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or,
// with a leading '@', an abstract name. All constants below are defined by systemd.
const (
	NotifyReady   = "READY=1"
	NotifyMainPID = "MAINPID=" // followed by the pid
	notifyBarrier = "BARRIER=1"
)

// ErrNoNotifySocket: not started by a service manager that listens for notifications.
var ErrNoNotifySocket = errors.New("NOTIFY_SOCKET is not set")

// NotifySocket returns $NOTIFY_SOCKET.
func NotifySocket() string { return os.Getenv("NOTIFY_SOCKET") }

// Notify sends state to the service manager and waits, with a barrier, until the
// manager has processed it: a launcher that hands MAINPID over and exits right after
// must not have its exit seen before its message.
func Notify(state string) error {
	sock := NotifySocket()
	if sock == "" {
		return ErrNoNotifySocket
	}
	return notifyTo(sock, state, 5*time.Second)
}

func notifyTo(sock, state string, timeout time.Duration) error {
	addr := &net.UnixAddr{Name: sock, Net: "unixgram"}
	if strings.HasPrefix(sock, "@") {
		addr.Name = "\x00" + sock[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("systemd: notify %q: %w", state, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify %q: %w", state, err)
	}
	// Barrier: send the write end of a pipe; the manager closes it once it has processed
	// everything before it, and the read end sees POLLHUP.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("systemd: notify barrier: %w", err)
	}
	defer unix.Close(p[0])
	raw, err := conn.SyscallConn()
	if err == nil {
		cerr := raw.Write(func(fd uintptr) bool {
			err = unix.Sendmsg(int(fd), []byte(notifyBarrier), unix.UnixRights(p[1]), nil, 0)
			return !errors.Is(err, unix.EAGAIN)
		})
		if err == nil {
			err = cerr
		}
	}
	unix.Close(p[1])
	if err != nil {
		return fmt.Errorf("systemd: notify barrier: %w", err)
	}
	fds := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLHUP}}
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("systemd: notify barrier: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("systemd: notify barrier: no answer in %s", timeout)
		}
		return nil
	}
}
