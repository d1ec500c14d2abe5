package container

import (
	"context"
	"fmt"

	"github.com/thinbox/thinbox/systemd"
)

// scoper puts a foreground container in its transient scope. It connects to systemd
// while the launcher clones the container, so the connection costs no start-up time.
type scoper struct {
	conn    chan connResult
	c       *systemd.Conn
	cgroup  string
	unit    string
	oom     *systemd.OOMWatch
	limits  *systemd.Limits
	slice   string
	enabled bool
}

type connResult struct {
	c   *systemd.Conn
	err error
}

// scopeFor decides whether the container gets a scope: always where systemd is PID 1
// with a unified cgroup hierarchy; nowhere else, and then asking for a limit is an
// error that says why, never a silent no-op.
func scopeFor(ctx context.Context, spec *Spec, user bool) (*scoper, error) {
	s := &scoper{limits: &spec.Limits, slice: spec.Slice}
	if s.slice == "" {
		s.slice = "thinbox.slice"
	}
	if !systemd.Booted() || !systemd.Unified() || (user && !systemd.UserManager()) {
		if act := spec.Limits.Active(); len(act) > 0 {
			why := "systemd is not PID 1 here"
			switch {
			case systemd.Booted() && !systemd.Unified():
				why = "/sys/fs/cgroup is not a unified cgroup v2 hierarchy (boot with systemd.unified_cgroup_hierarchy=1)"
			case systemd.Booted():
				why = "your systemd user manager can't be reached (log in through a session, or run `loginctl enable-linger` and set XDG_RUNTIME_DIR)"
			}
			return nil, fmt.Errorf("%w: --%s needs a systemd scope with cgroup v2, but %s", ErrInvalid, act[0].Flag, why)
		}
		return s, nil
	}
	s.enabled = true
	s.conn = make(chan connResult, 1)
	go func() {
		c, err := systemd.Connect(ctx, user)
		s.conn <- connResult{c, err}
	}()
	return s, nil
}

// place starts thinbox-NAME.scope around pid, with the limits read back.
func (s *scoper) place(ctx context.Context, name string, pid int) error {
	if !s.enabled {
		return nil
	}
	r := <-s.conn
	if r.err != nil {
		return r.err
	}
	s.c = r.c
	s.unit = "thinbox-" + name + ".scope"
	cg, err := s.c.StartScope(ctx, systemd.ScopeSpec{
		Unit: s.unit, Slice: s.slice, Pid: pid, Limits: s.limits,
		Description: "thinbox container " + name,
	})
	if err != nil {
		return err
	}
	s.cgroup = cg
	if w, err := systemd.WatchOOM(cg); err == nil {
		s.oom = w
	}
	return nil
}

// oomKilled reports, once the container has ended, whether the kernel OOM-killed in it.
func (s *scoper) oomKilled() bool {
	return s != nil && s.oom != nil && s.oom.Killed()
}

func (s *scoper) close() {
	if s != nil && s.c != nil {
		s.c.Close()
	} else if s != nil && s.conn != nil {
		go func() {
			if r := <-s.conn; r.c != nil {
				r.c.Close()
			}
		}()
	}
}
