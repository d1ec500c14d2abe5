package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// ScopeSpec describes the transient scope a container runs in.
type ScopeSpec struct {
	Unit        string // thinbox-NAME.scope
	Slice       string // thinbox.slice unless overridden
	Description string
	Pid         int
	Limits      *Limits
}

// StartScope asks systemd for a transient scope holding pid, with Delegate=yes and the
// limits, waits for the job, reads every limit back from the scope's cgroup, and returns
// that cgroup's path (/thinbox.slice/thinbox-web.scope). A scope whose limits don't
// read back is stopped again before the error is returned.
func (c *Conn) StartScope(ctx context.Context, s ScopeSpec) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := c.checkVersion(ctx, s.Limits); err != nil {
		return "", err
	}
	props := []sddbus.Property{
		sddbus.PropDescription(s.Description),
		sddbus.PropSlice(s.Slice),
		sddbus.PropPids(uint32(s.Pid)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		// A failed scope (its payload OOM-killed, say) is collected like a finished one,
		// so the next container of that name gets the name.
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
	}
	props = append(props, DeviceProperties()...)
	if s.Limits != nil {
		props = append(props, s.Limits.Properties()...)
	}
	if err := c.startTransient(ctx, s.Unit, props); err != nil {
		return "", err
	}
	cg, err := c.controlGroup(ctx, s.Unit, "Scope")
	if err == nil && s.Limits != nil {
		err = s.Limits.Verify(cg)
	}
	if err != nil {
		_ = c.Stop(context.Background(), s.Unit)
		return "", err
	}
	return cg, nil
}

// checkVersion refuses limits this systemd does not know, rather than letting them be
// dropped.
func (c *Conn) checkVersion(ctx context.Context, l *Limits) error {
	if l == nil {
		return nil
	}
	for _, r := range l.Active() {
		if r.MinSystemd == 0 {
			continue
		}
		v, err := c.Version(ctx)
		if err != nil {
			return err
		}
		if v < r.MinSystemd {
			return fmt.Errorf("systemd: %w: --%s needs systemd %d or newer, this is %d", ErrLimitNotApplied, r.Flag, r.MinSystemd, v)
		}
	}
	return nil
}

// startTransient starts a transient unit and waits for its job. A unit of that name
// left failed from an earlier run is reset and the start retried once, as runc does.
func (c *Conn) startTransient(ctx context.Context, unit string, props []sddbus.Property) error {
	for attempt := 0; ; attempt++ {
		ch := make(chan string, 1)
		_, err := c.c.StartTransientUnitContext(ctx, unit, "fail", props, ch)
		if err != nil {
			var de dbus.Error
			if attempt == 0 && errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.UnitExists" {
				_ = c.c.ResetFailedUnitContext(ctx, unit)
				continue
			}
			return fmt.Errorf("systemd: start %s: %w", unit, err)
		}
		return waitJob(ctx, "start", unit, ch)
	}
}

func waitJob(ctx context.Context, verb, unit string, ch <-chan string) error {
	select {
	case res := <-ch:
		return jobResult(verb, unit, res)
	case <-ctx.Done():
		return fmt.Errorf("systemd: %s %s: no job result: %w", verb, unit, ctx.Err())
	}
}

func jobResult(verb, unit, res string) error {
	if res != "done" {
		return fmt.Errorf("systemd: %s %s: job %s (see journalctl -u %s)", verb, unit, res, unit)
	}
	return nil
}

// controlGroup returns a unit's cgroup path.
func (c *Conn) controlGroup(ctx context.Context, unit, typ string) (string, error) {
	p, err := c.c.GetUnitTypePropertyContext(ctx, unit, typ, "ControlGroup")
	if err != nil {
		return "", fmt.Errorf("systemd: %s: read ControlGroup: %w", unit, err)
	}
	cg, ok := p.Value.Value().(string)
	if !ok || !strings.HasPrefix(cg, "/") {
		return "", fmt.Errorf("systemd: %s: no control group (is the unit running?)", unit)
	}
	return cg, nil
}

// Stop stops a unit and waits for the job. A unit that is not loaded counts as stopped.
func (c *Conn) Stop(ctx context.Context, unit string) error {
	return c.StopWithin(ctx, unit, 0)
}

// StopWithin stops a unit (a stop job: no Restart= fires) and, if grace > 0 and the job
// is not done within it, SIGKILLs every process of the unit, which ends the job. With
// grace 0 the unit's own TimeoutStopSec= applies.
func (c *Conn) StopWithin(ctx context.Context, unit string, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout+grace)
	defer cancel()
	ch := make(chan string, 1)
	if _, err := c.c.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("systemd: stop %s: %w", unit, err)
	}
	if grace > 0 {
		select {
		case res := <-ch:
			return jobResult("stop", unit, res)
		case <-time.After(grace):
			_ = c.c.KillUnitWithTarget(ctx, unit, sddbus.All, int32(unix.SIGKILL))
		}
	}
	return waitJob(ctx, "stop", unit, ch)
}
