package systemd

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Timeout bounds every call to systemd: it is single-threaded and, under load, a call
// can hang for seconds (runc#3904); thinbox then fails with the unit's name instead.
const Timeout = 30 * time.Second

// Conn is one connection to a systemd manager, the system one or the caller's own.
type Conn struct {
	c    *sddbus.Conn
	User bool
	// Private says whether the connection is systemd's private socket rather than the
	// bus daemon.
	Private bool
}

// Booted reports whether systemd is PID 1 (sd_booted(3)).
func Booted() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// UserManager reports whether the caller's own systemd manager can be reached.
func UserManager() bool {
	if p := privateSocket(true); p != "" {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return os.Getenv("DBUS_SESSION_BUS_ADDRESS") != ""
}

// Connect opens one connection for one command, to the system manager or, with user,
// to the caller's own (rootless). It goes through the bus daemon, and falls back to the
// manager's private socket (root's /run/systemd/private, the user's
// $XDG_RUNTIME_DIR/systemd/private) where there is no bus, as on a minimal system
// without dbus. The private socket was measured as the first choice and bought
// nothing: in the systemd guest a start over it took 0.98 to 1.1 times as long as
// over the bus (benchmarks/RESULTS.md). systemd sends every unit's change signals to
// each direct connection unconditionally (bus_foreach_bus), where the bus daemon
// passes a client only what it matched: that plausibly eats what the saved hop gains.
// THINBOX_SYSTEMD_PRIVATE=1 forces the private socket, for that comparison.
func Connect(ctx context.Context, user bool) (*Conn, error) {
	if !user && !Booted() {
		return nil, fmt.Errorf("systemd: %w (PID 1 is not systemd)", ErrUnavailable)
	}
	// The bus connection lives as long as its context, so it gets one of its own; the
	// caller's context and Timeout only bound the wait for it.
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := connect(user)
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("systemd: connect: %w: %w", ErrUnavailable, ctx.Err())
	}
}

func connect(user bool) (*Conn, error) {
	ctx := context.Background()
	private := privateSocket(user)
	if private != "" && os.Getenv("THINBOX_SYSTEMD_PRIVATE") == "1" {
		c, err := dialPrivate(ctx, private)
		if err != nil {
			return nil, fmt.Errorf("systemd: connect to %s: %w: %w", private, ErrUnavailable, err)
		}
		return &Conn{c: c, User: user, Private: true}, nil
	}
	var c *sddbus.Conn
	var err error
	if user {
		c, err = sddbus.NewUserConnectionContext(ctx)
	} else {
		c, err = sddbus.NewSystemConnectionContext(ctx)
	}
	if err == nil {
		return &Conn{c: c, User: user}, nil
	}
	if private != "" {
		if _, serr := os.Stat(private); serr == nil {
			if c, perr := dialPrivate(ctx, private); perr == nil {
				return &Conn{c: c, User: user, Private: true}, nil
			}
		}
	}
	return nil, fmt.Errorf("systemd: connect to the bus: %w: %w", ErrUnavailable, err)
}

// privateSocket is where the manager listens for direct connections from its own uid.
func privateSocket(user bool) string {
	if !user {
		if os.Geteuid() != 0 {
			return ""
		}
		return "/run/systemd/private"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d + "/systemd/private"
	}
	return ""
}

// dialPrivate connects to a manager's private socket. go-systemd opens two connections
// (calls and signals); on a direct connection systemd sends a job's JobRemoved signal to
// the connection that queued it, so one connection serves both, and thinbox pays for one
// handshake instead of two.
func dialPrivate(ctx context.Context, path string) (*sddbus.Conn, error) {
	var once sync.Once
	var conn *dbus.Conn
	var derr error
	return sddbus.NewConnection(func() (*dbus.Conn, error) {
		once.Do(func() {
			conn, derr = dbus.Dial("unix:path="+path, dbus.WithContext(ctx))
			if derr != nil {
				return
			}
			if derr = conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); derr != nil {
				conn.Close()
			}
		})
		return conn, derr
	})
}

// Close ends the connection.
func (c *Conn) Close() { c.c.Close() }

// Version returns the manager's version number (252 for "252.39-1~deb12u2").
func (c *Conn) Version(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	// go-systemd has no context variant of GetManagerProperty: bound the wait here.
	type res struct {
		v   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := c.c.GetManagerProperty("Version")
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return 0, fmt.Errorf("systemd: read version: %w", r.err)
		}
		return parseVersion(r.v), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("systemd: read version: %w", ctx.Err())
	}
}

// parseVersion takes the leading number of systemd's version string, which the bus
// returns quoted ("\"252.39-1~deb12u2\"").
func parseVersion(v string) int {
	n := 0
	for _, r := range v {
		if r == '"' && n == 0 {
			continue
		}
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}
