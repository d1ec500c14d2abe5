package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/thinbox/thinbox/launcher"
	"github.com/thinbox/thinbox/state"
	"github.com/thinbox/thinbox/userns"
)

// idMapping is the user namespace an ordinary user's containers get: worked out once
// per command, its notice (a single-id mapping, and how to get the full range) shown
// once.
func (m *Manager) idMapping() (*userns.Mapping, error) {
	m.mapOnce.Do(func() {
		if err := userns.System.Check(); err != nil {
			m.mapErr = fmt.Errorf("container: %w", err)
			return
		}
		u, err := user.Current()
		if err != nil {
			m.mapErr = fmt.Errorf("container: who am I: %w", err)
			return
		}
		var notice string
		m.mapping, notice = userns.System.ForUser(u.Username, os.Getuid(), os.Getgid())
		if notice != "" && m.Warn != nil {
			fmt.Fprintln(m.Warn, notice)
		}
	})
	return m.mapping, m.mapErr
}

// userNS sets up cfg for a rootless container and returns how its maps get written.
func (m *Manager) userNS(cfg *launcher.Config) (func(pid int) error, error) {
	if !m.User {
		return nil, nil
	}
	mp, err := m.idMapping()
	if err != nil {
		return nil, err
	}
	if _, ok := mp.HostUID(cfg.Process.UID); !ok {
		return nil, fmt.Errorf("%w: user %d is outside the ids mapped for you (0-%d): give yourself a subordinate range in /etc/subuid", ErrInvalid, cfg.Process.UID, mp.Size()-1)
	}
	if _, ok := mp.HostGID(cfg.Process.GID); !ok {
		return nil, fmt.Errorf("%w: group %d is outside the ids mapped for you (0-%d): give yourself a subordinate range in /etc/subgid", ErrInvalid, cfg.Process.GID, mp.Size()-1)
	}
	cfg.UserNS = true
	return func(pid int) error { return userns.System.Apply(mp, pid) }, nil
}

// inUserNS runs thinbox args (after the binary, e.g. "image", "import", ...) as root of
// the user's full-range user namespace, where files owned by subordinate ids can be
// made and removed. ok is false where the user has only a single-id mapping: then
// everything is theirs already and nothing needs it.
func (m *Manager) inUserNS(args []string, stdin io.Reader, stdout io.Writer) (ok bool, err error) {
	mp, err := m.idMapping()
	if err != nil || !mp.Helpers {
		return false, err
	}
	self, err := m.self()
	if err != nil {
		return true, err
	}
	argv := append([]string{"thinbox", "--root", m.Paths.Data, "--runroot", m.Paths.Run}, args...)
	var stderr bytes.Buffer
	code, err := launcher.RunInUserNS(self, argv, os.Environ(), func(pid int) error { return userns.System.Apply(mp, pid) }, stdin, stdout, &stderr)
	if err != nil {
		return true, err
	}
	if code != 0 {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "thinbox: "))
		return true, errors.New(msg)
	}
	return true, nil
}

// deleteContainer removes a container's layer and record; a rootless container's
// files owned by subordinate ids are removed from inside the user's namespace.
func (m *Manager) deleteContainer(name string) error {
	err := m.States.Delete(name)
	if err == nil || !m.User || !errors.Is(err, os.ErrPermission) {
		return err
	}
	if ok, uerr := m.inUserNS([]string{"rm", "--from-unit", name}, nil, io.Discard); ok {
		return uerr
	}
	return err
}

// gc collects what ended containers left, the rootless way where it must.
func (m *Manager) gc() error {
	denied, err := m.States.GC()
	if err != nil {
		return err
	}
	for _, name := range denied {
		if rec, lerr := m.States.Load(name); lerr == nil && rec.Status != state.Exited {
			continue
		}
		if err := m.deleteContainer(name); err != nil && !errors.Is(err, state.ErrNotFound) {
			// A layer without a record: remove it through its (re-created) name.
			return err
		}
	}
	return nil
}
