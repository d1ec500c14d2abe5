package systemd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A fake manager on a socketpair-like datagram socket: it must see the state, then the
// barrier with a pipe fd, and Notify returns only once that fd is closed.
func TestNotifyBarrier(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	released := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		for i := 0; i < 2; i++ {
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			if oobn > 0 {
				msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
				fds, _ := unix.ParseUnixRights(&msgs[0])
				time.Sleep(100 * time.Millisecond) // the manager is busy
				released <- time.Now()
				unix.Close(fds[0])
			}
		}
	}()
	start := time.Now()
	if err := notifyTo(path, "MAINPID=42\nREADY=1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "MAINPID=42\nREADY=1" {
		t.Errorf("state %q", s)
	}
	if s := <-got; s != "BARRIER=1" {
		t.Errorf("barrier %q", s)
	}
	if r := <-released; time.Now().Before(r) || time.Since(start) < 100*time.Millisecond {
		t.Errorf("Notify returned before the manager released the barrier")
	}
}

func TestNotifyNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	if err := Notify(NotifyReady); err != ErrNoNotifySocket {
		t.Errorf("Notify without a socket: %v", err)
	}
	if err := notifyTo(filepath.Join(t.TempDir(), "none"), NotifyReady, time.Second); err == nil {
		t.Errorf("Notify to a missing socket succeeded")
	}
}
