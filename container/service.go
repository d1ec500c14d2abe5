package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thinbox/thinbox/launcher"
	"github.com/thinbox/thinbox/state"
	"github.com/thinbox/thinbox/systemd"
	"github.com/thinbox/thinbox/units"
)

// UnitOptions are the service-only settings of `thinbox run --unit`.
type UnitOptions struct {
	Restart      string        // no, on-failure, always
	RestartSec   time.Duration // 0: systemd's default
	TimeoutStart time.Duration
	TimeoutStop  time.Duration
	WaitNetwork  bool
	Notify       string // launcher (default) or container
	Enable       bool
	Replace      bool
	// Command is how the user asked for it, for the unit's header.
	Command string
}

// Notify modes: who tells systemd the service is ready.
const (
	NotifyLauncher  = "launcher"  // thinbox, once the payload has been exec'd
	NotifyContainer = "container" // the payload itself, through NOTIFY_SOCKET
)

func (u *UnitOptions) validate() error {
	switch u.Restart {
	case "", "no", "on-failure", "always":
	default:
		return invalid("--restart %q: use no, on-failure or always", u.Restart)
	}
	switch u.Notify {
	case "", NotifyLauncher, NotifyContainer:
	default:
		return invalid("--notify %q: use launcher or container", u.Notify)
	}
	if u.RestartSec < 0 || u.TimeoutStart < 0 || u.TimeoutStop < 0 {
		return invalid("durations must not be negative")
	}
	return nil
}

// wantedBy is the target that starts an enabled service at boot: the system's, or for a
// user the user manager's own (which runs at boot only with lingering).
func (m *Manager) wantedBy() string {
	if m.User {
		return "default.target"
	}
	return "multi-user.target"
}

// ServiceUnit renders the unit of a container service without touching anything.
func (m *Manager) ServiceUnit(spec *Spec, uo *UnitOptions) (*units.Service, []byte, error) {
	if err := spec.validate(); err != nil {
		return nil, nil, err
	}
	if err := uo.validate(); err != nil {
		return nil, nil, err
	}
	if spec.Name == "" {
		return nil, nil, invalid("--unit needs a name")
	}
	if spec.TTY || spec.Interactive {
		return nil, nil, invalid("--unit runs without a terminal: leave out -t and -i")
	}
	self, err := m.self()
	if err != nil {
		return nil, nil, err
	}
	svc := &units.Service{
		Name:         spec.Name,
		Description:  "thinbox container " + spec.Name + " (" + spec.Image + ")",
		Command:      uo.Command,
		ExecStart:    append([]string{self}, m.serviceArgs(spec, uo)...),
		ExecStopPost: []string{self, "--root", m.Paths.Data, "--runroot", m.Paths.Run, "rm", "--force", "--from-unit", spec.Name},
		Limits:       spec.Limits.Directives(),
		Restart:      uo.Restart,
		RestartSec:   uo.RestartSec,
		TimeoutStart: orDefault(uo.TimeoutStart, 90*time.Second),
		TimeoutStop:  orDefault(uo.TimeoutStop, 10*time.Second),
		WaitNetwork:  uo.WaitNetwork,
		WantedBy:     m.wantedBy(),
		Hardening:    systemd.ServiceHardening(systemd.ServiceContainer{User: m.User, UserNS: spec.UserNS == "auto", Privileged: spec.Privileged, CapAdd: spec.CapAdd, Seccomp: spec.Seccomp, Volumes: spec.Volumes}),
	}
	text, err := svc.Render()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return svc, text, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (m *Manager) self() (string, error) {
	if m.Self != "" {
		return filepath.Abs(m.Self)
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("container: find the thinbox binary: %w", err)
	}
	return filepath.EvalSymlinks(p)
}

// serviceArgs is the container's spec as thinbox flags again: what ExecStart runs.
func (m *Manager) serviceArgs(spec *Spec, uo *UnitOptions) []string {
	a := []string{"--root", m.Paths.Data, "--runroot", m.Paths.Run, "run", "--service-mode"}
	if uo.Notify != "" {
		a = append(a, "--notify="+uo.Notify)
	}
	a = append(a, "--name="+spec.Name, "--net="+spec.net())
	if spec.UserNS != "" {
		a = append(a, "--userns="+spec.UserNS)
	}
	if !spec.Init {
		a = append(a, "--no-init")
	}
	if spec.Hostname != "" {
		a = append(a, "--hostname="+spec.Hostname)
	}
	if spec.User != "" {
		a = append(a, "--user="+spec.User)
	}
	if spec.Workdir != "" {
		a = append(a, "--workdir="+spec.Workdir)
	}
	if spec.ReadOnly {
		a = append(a, "--read-only")
	}
	for _, f := range spec.EnvFiles {
		abs, _ := filepath.Abs(f)
		a = append(a, "--env-file="+abs)
	}
	// Variables are resolved now (KEY alone takes the caller's value at install time),
	// so the service does not depend on systemd's environment.
	env, _ := spec.environment()
	for _, e := range env {
		a = append(a, "--env="+e)
	}
	for _, v := range spec.Volumes {
		a = append(a, "--volume="+v)
	}
	a = append(a, spec.securityArgs()...)
	a = append(a, spec.Limits.Args()...)
	a = append(a, "--", spec.Image)
	return append(a, spec.command()...)
}

// InstallUnit writes thinbox-NAME.service, reloads systemd, enables it if asked and
// starts it, waiting for READY. Nothing is installed when the input is bad.
func (m *Manager) InstallUnit(ctx context.Context, spec *Spec, uo *UnitOptions) error {
	_, text, err := m.ServiceUnit(spec, uo)
	if err != nil {
		return err
	}
	img, release, err := m.Images.Acquire(spec.Image)
	if err != nil {
		return err
	}
	release()
	_ = img
	if rec, err := m.States.Load(spec.Name); err == nil && rec.Status != state.Exited && !uo.Replace {
		return fmt.Errorf("container: %s: %w", spec.Name, state.ErrExists)
	}
	if uo.Enable && m.User && !lingering() {
		fmt.Fprintf(os.Stderr, "thinbox: warning: lingering is off for your user, so your services start only when you log in, not at boot: run `loginctl enable-linger` to change that\n")
	}
	c, err := systemd.Connect(ctx, m.User)
	if err != nil {
		return err
	}
	defer c.Close()
	unit := units.ServiceName(spec.Name)
	dir, err := systemd.UnitDir(m.User)
	if err != nil {
		return err
	}
	if uo.Replace {
		if err := c.Stop(ctx, unit); err != nil {
			return err
		}
	}
	if err := systemd.WriteUnit(dir, unit, text, uo.Replace); err != nil {
		if errors.Is(err, systemd.ErrUnitExists) {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return err
	}
	if err := c.Reload(ctx); err != nil {
		return err
	}
	if uo.Enable {
		if err := c.Enable(ctx, unit); err != nil {
			return err
		}
	}
	c.ResetFailed(ctx, unit)
	// Start waits for READY, which may take up to the unit's own start timeout.
	if err := c.Start(ctx, unit, orDefault(uo.TimeoutStart, 90*time.Second)+10*time.Second); err != nil {
		return fmt.Errorf("%w; the unit stays installed: see systemctl status %s, or remove it with thinbox rm %s", err, unit, spec.Name)
	}
	return nil
}

// RunService is ExecStart of a container service: it starts the container in the
// service's own (delegated) cgroup, hands MAINPID to the container's PID 1, tells
// systemd it is ready (or leaves that to the payload) and exits. No thinbox process
// stays behind: systemd supervises the container directly.
func (m *Manager) RunService(ctx context.Context, spec *Spec, notify string) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if spec.Name == "" {
		return invalid("--service-mode needs --name")
	}
	if systemd.NotifySocket() == "" {
		return invalid("--service-mode runs under systemd (Type=notify); use thinbox run --unit")
	}
	if err := m.gc(); err != nil {
		return err
	}
	// The previous instance of this service (a crash, a restart) makes way.
	if rec, err := m.States.Load(spec.Name); err == nil {
		if rec.Status != state.Exited {
			return fmt.Errorf("container: %s: %w", spec.Name, state.ErrExists)
		}
		if err := m.deleteContainer(spec.Name); err != nil {
			return err
		}
	}
	cg, err := ownCgroup()
	if err != nil {
		return err
	}
	if err := spec.Limits.Verify(cg); err != nil {
		return err
	}
	spec.Remove = true
	rec, img, err := m.create(ctx, spec)
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if !started {
			_ = m.deleteContainer(rec.Name)
		}
	}()
	cfg, err := m.config(spec, rec, img)
	if err != nil {
		return err
	}
	if notify == NotifyContainer {
		if err := passNotifySocket(cfg); err != nil {
			return err
		}
	}
	opt := launcher.Options{Stdout: os.Stdout, Stderr: os.Stderr, Self: m.Self, Detach: true}
	if err := m.userNS(cfg, &opt, spec, rec.Layer); err != nil {
		return err
	}
	c, err := launcher.Start(cfg, opt)
	if err != nil {
		return fmt.Errorf("container: run %s: %w", rec.Name, err)
	}
	started = true
	unit := units.ServiceName(spec.Name)
	if err := m.States.Update(rec.Name, func(r *state.Record) {
		r.Status, r.Pid, r.PidStart, r.Started = state.Running, c.Pid, state.StartTime(c.Pid), time.Now().UTC()
		r.Unit, r.Cgroup, r.Limits = unit, cg, spec.Limits.Summary()
	}); err != nil {
		_ = c.Signal(9)
		return err
	}
	msg := systemd.NotifyMainPID + strconv.Itoa(c.Pid)
	if notify != NotifyContainer {
		msg += "\n" + systemd.NotifyReady
	}
	if err := systemd.Notify(msg); err != nil {
		_ = c.Signal(9)
		return err
	}
	c.Release()
	return nil
}

// notifyTarget is where the payload finds the manager's socket with --notify=container.
const notifyTarget = "/run/thinbox/notify.sock"

// passNotifySocket bind-mounts the manager's notification socket into the container
// and points NOTIFY_SOCKET at it, so a payload that speaks sd_notify decides readiness.
func passNotifySocket(cfg *launcher.Config) error {
	sock := systemd.NotifySocket()
	if !strings.HasPrefix(sock, "/") {
		return fmt.Errorf("container: --notify=container needs NOTIFY_SOCKET to be a path, not %q (an abstract socket can't cross the network namespace)", sock)
	}
	cfg.Mounts = append(cfg.Mounts, launcher.Mount{Source: sock, Target: notifyTarget})
	cfg.Process.Env = append(cfg.Process.Env, "NOTIFY_SOCKET="+notifyTarget)
	return nil
}

// ownCgroup is the cgroup v2 path of this process: the service's, in service mode.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("container: read own cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("container: no cgroup v2 entry in /proc/self/cgroup")
}

// LogMatches are the journalctl arguments that select a container's output: a
// service's own lines, or what the launcher copied from a foreground container in a
// scope (not the scope's start and stop events).
func (m *Manager) LogMatches(name string) ([]string, error) {
	if _, ok := m.unitPath(name); ok {
		if m.User {
			return []string{"--user", "_SYSTEMD_USER_UNIT=" + units.ServiceName(name)}, nil
		}
		return []string{"_SYSTEMD_UNIT=" + units.ServiceName(name)}, nil
	}
	rec, err := m.States.Load(name)
	if err != nil {
		return nil, err
	}
	if rec.Unit == "" || m.User {
		return nil, fmt.Errorf("container: logs %s: its output went only to the terminal (it ran without a systemd scope, or rootless)", name)
	}
	return []string{"OBJECT_SYSTEMD_UNIT=" + rec.Unit, "_UID=0"}, nil
}

// lingering reports whether the user's manager runs from boot (loginctl enable-linger).
func lingering() bool {
	u, err := user.Current()
	if err != nil {
		return false
	}
	_, err = os.Stat("/var/lib/systemd/linger/" + u.Username)
	return err == nil
}
