//go:build integration

package integration

import (
	"fmt"
	"net"
	"os"
	"testing"
)

// TestMain lets the test binary double as a payload: bind-mounted into a container
// with THINBOX_TEST_NOTIFY=1 it sends READY=1 to NOTIFY_SOCKET, as a daemon that
// speaks sd_notify would (busybox can't).
func TestMain(m *testing.M) {
	if os.Getenv("THINBOX_TEST_NOTIFY") == "1" {
		if err := sendReady(os.Getenv("NOTIFY_SOCKET")); err != nil {
			fmt.Fprintln(os.Stderr, "notifier:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func sendReady(sock string) error {
	if sock == "" {
		return fmt.Errorf("NOTIFY_SOCKET is not set")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("READY=1"))
	return err
}
