package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"
)

// UnitDir is where thinbox installs units: /etc/systemd/system for the system manager,
// ~/.config/systemd/user for a user's.
func UnitDir(user bool) (string, error) {
	if !user {
		return "/etc/systemd/system", nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("systemd: user unit directory: %w", err)
	}
	return filepath.Join(cfg, "systemd", "user"), nil
}

// WriteUnit installs a unit file atomically (temporary file, fsync, rename, fsync of the
// directory): systemd never reads half a unit, and a crash leaves the old one or the
// new one. An existing unit is replaced only with replace.
func WriteUnit(dir, name string, content []byte, replace bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("systemd: install %s: %w (use --replace)", name, ErrUnitExists)
		}
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	if !replace {
		// Link fails if the name appeared meanwhile: no silent overwrite in a race.
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("systemd: install %s: %w (use --replace)", name, ErrUnitExists)
			}
			return fmt.Errorf("systemd: install %s: %w", name, err)
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("systemd: install %s: %w", name, err)
	}
	ok = true
	os.Remove(tmp)
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Reload makes systemd re-read unit files (daemon-reload).
func (c *Conn) Reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := c.c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd: daemon-reload: %w", err)
	}
	return nil
}

// Start starts a unit and waits up to wait for the job; for Type=notify that is READY.
func (c *Conn) Start(ctx context.Context, unit string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ch := make(chan string, 1)
	if _, err := c.c.StartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("systemd: start %s: %w", unit, err)
	}
	return waitJob(ctx, "start", unit, ch)
}

// Enable enables a unit file ([Install] WantedBy=).
func (c *Conn) Enable(ctx context.Context, unit string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if _, _, err := c.c.EnableUnitFilesContext(ctx, []string{unit}, false, true); err != nil {
		return fmt.Errorf("systemd: enable %s: %w", unit, err)
	}
	return nil
}

// Disable disables a unit file; one that is not enabled is fine.
func (c *Conn) Disable(ctx context.Context, unit string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if _, err := c.c.DisableUnitFilesContext(ctx, []string{unit}, false); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("systemd: disable %s: %w", unit, err)
	}
	return nil
}

// ResetFailed forgets a unit's failed state.
func (c *Conn) ResetFailed(ctx context.Context, unit string) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	_ = c.c.ResetFailedUnitContext(ctx, unit)
}

// UnitState is what ps shows of a unit.
type UnitState struct {
	Active  string // active, inactive, failed, activating, deactivating
	Sub     string // running, dead, exited, ...
	Load    string // loaded, not-found
	MainPID uint32
	Cgroup  string
	Result  string
}

// State reads a unit's state.
func (c *Conn) State(ctx context.Context, unit string) (UnitState, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	props, err := c.c.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, fmt.Errorf("systemd: %s: %w", unit, err)
	}
	s := UnitState{Active: str(props["ActiveState"]), Sub: str(props["SubState"]), Load: str(props["LoadState"])}
	typ := "Service"
	if filepath.Ext(unit) == ".scope" {
		typ = "Scope"
	}
	if tp, err := c.c.GetUnitTypePropertiesContext(ctx, unit, typ); err == nil {
		s.Cgroup = str(tp["ControlGroup"])
		s.Result = str(tp["Result"])
		if pid, ok := tp["MainPID"].(uint32); ok {
			s.MainPID = pid
		}
	}
	return s, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
