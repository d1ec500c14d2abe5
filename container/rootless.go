package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

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

// userNS sets up cfg and opt for a container in a user namespace — every rootless one,
// and root's with --userns=auto.
func (m *Manager) userNS(cfg *launcher.Config, opt *launcher.Options, spec *Spec, layer string) error {
	var mp *userns.Mapping
	var err error
	switch {
	case m.User:
		mp, err = m.idMapping()
	case spec.UserNS == "auto":
		mp, err = m.autoMapping(cfg, spec, layer)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := mp.HostUID(cfg.Process.UID); !ok {
		return fmt.Errorf("%w: user %d is outside the ids mapped for you (0-%d): give yourself a subordinate range in /etc/subuid", ErrInvalid, cfg.Process.UID, mp.Size()-1)
	}
	if _, ok := mp.HostGID(cfg.Process.GID); !ok {
		return fmt.Errorf("%w: group %d is outside the ids mapped for you (0-%d): give yourself a subordinate range in /etc/subgid", ErrInvalid, cfg.Process.GID, mp.Size()-1)
	}
	cfg.UserNS = true
	if mp.Helpers {
		opt.MapIDs = func(pid int) error { return userns.System.Apply(mp, pid) }
		return nil
	}
	opt.UIDMaps, opt.GIDMaps = sysMaps(mp.UIDs), sysMaps(mp.GIDs)
	opt.SetgroupsAllowed = mp.Privileged
	return nil
}

func sysMaps(maps []userns.IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(maps))
	for i, r := range maps {
		out[i] = syscall.SysProcIDMap{ContainerID: int(r.ContainerID), HostID: int(r.HostID), Size: int(r.Size)}
	}
	return out
}

// allocator hands out root's --userns=auto blocks.
func (m *Manager) allocator() userns.Allocator {
	return userns.Allocator{Dir: filepath.Join(m.Paths.Run, "userns"), Files: userns.System}
}

// autoMapping gives a root container its own block of ids, so its root is not the
// host's: the layer is handed to the block's root and the image is lent to it through
// an idmapped mount (no copy, no chown of the image).
func (m *Manager) autoMapping(cfg *launcher.Config, spec *Spec, layer string) (*userns.Mapping, error) {
	mp, err := m.allocator().Allocate(filepath.Base(layer))
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	uid, gid := int(mp.UIDs[0].HostID), int(mp.GIDs[0].HostID)
	lower := filepath.Join(layer, "lower")
	if err := os.Mkdir(lower, 0o700); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("container: %w", err)
	}
	for _, d := range []string{layer, filepath.Join(layer, "upper"), filepath.Join(layer, "work"), filepath.Join(layer, "rootfs"), lower} {
		if err := os.Chown(d, uid, gid); err != nil {
			return nil, fmt.Errorf("container: hand the layer to the container's root: %w", err)
		}
	}
	// The container's root must reach its own layer by path (overlayfs takes paths in
	// its own mount namespace): the store's top and its containers directory become
	// searchable, not listable. Images stay 0700: the container gets its image through
	// the idmapped mount.
	for _, d := range []string{m.Paths.Data, filepath.Dir(layer)} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
	}
	for d := filepath.Dir(m.Paths.Data); d != "/"; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("%w: --userns=auto: the container's root can't reach its layer: %s is not searchable by others (chmod o+x %s, or use another --root)", ErrInvalid, d, d)
		}
	}
	cfg.LowerIDMapped = true
	cfg.LowerMount = lower
	return mp, nil
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

// deleteContainer removes a container's layer and record, and gives back its
// --userns=auto block; a rootless container's files owned by subordinate ids are
// removed from inside the user's namespace.
func (m *Manager) deleteContainer(name string) error {
	err := m.States.Delete(name)
	if err == nil && !m.User {
		m.allocator().Release(name)
	}
	if err == nil || !m.User || !errors.Is(err, os.ErrPermission) {
		return err
	}
	if ok, uerr := m.inUserNS([]string{"rm", "--from-unit", name}, nil, io.Discard); ok {
		return uerr
	}
	return err
}

// gc collects what ended containers left, the rootless way where it must, and the
// --userns=auto blocks of containers that are gone.
func (m *Manager) gc() error {
	denied, err := m.States.GC()
	if err != nil {
		return err
	}
	if !m.User {
		for _, name := range m.allocator().Holders() {
			if _, err := m.States.Load(name); errors.Is(err, state.ErrNotFound) {
				m.allocator().Release(name)
			}
		}
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
