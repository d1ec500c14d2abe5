package container

import (
	"errors"
	"fmt"
	"time"

	"github.com/thinbox/thinbox/state"
	"golang.org/x/sys/unix"
)

// List returns the containers, running ones only unless all.
func (m *Manager) List(all bool) ([]*state.Record, error) {
	if err := m.States.GC(); err != nil {
		return nil, err
	}
	recs, err := m.States.List()
	if err != nil {
		return nil, err
	}
	var out []*state.Record
	for _, r := range recs {
		if all || r.Status != state.Exited {
			out = append(out, r)
		}
	}
	return out, nil
}

// Inspect returns one container's record.
func (m *Manager) Inspect(name string) (*state.Record, error) {
	return m.States.Load(name)
}

// Stop asks a running container to end with SIGTERM to its PID 1 and kills it after
// timeout. It returns once the container is gone.
func (m *Manager) Stop(name string, timeout time.Duration) error {
	rec, err := m.States.Load(name)
	if err != nil {
		return err
	}
	if rec.Status != state.Running {
		return nil
	}
	if err := signalRecord(rec, unix.SIGTERM); err != nil {
		return err
	}
	if waitGone(rec, timeout) {
		return nil
	}
	if err := signalRecord(rec, unix.SIGKILL); err != nil {
		return err
	}
	if !waitGone(rec, 10*time.Second) {
		return fmt.Errorf("container: stop %s: still running 10s after SIGKILL", name)
	}
	return nil
}

// signalRecord signals the container's PID 1 through a pidfd checked against the
// recorded start time, so a reused pid is never signalled.
func signalRecord(rec *state.Record, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(rec.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("container: signal %s: %w", rec.Name, err)
	}
	defer unix.Close(fd)
	if !state.Alive(rec.Pid, rec.PidStart) {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("container: signal %s: %w", rec.Name, err)
	}
	return nil
}

func waitGone(rec *state.Record, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !state.Alive(rec.Pid, rec.PidStart) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Remove deletes a container's layer and record; a running one only with force, which
// kills it first.
func (m *Manager) Remove(name string, force bool) error {
	rec, err := m.States.Load(name)
	if err != nil {
		return err
	}
	if rec.Status != state.Exited {
		if !force {
			return fmt.Errorf("container: rm %s: %w (stop it first, or use -f)", name, state.ErrRunning)
		}
		if err := m.Stop(name, 0); err != nil {
			return err
		}
		// Give the launcher a moment to record the end before the record goes.
		waitLauncher(rec, 2*time.Second)
	}
	return m.States.Delete(name)
}

func waitLauncher(rec *state.Record, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for state.Alive(rec.LauncherPid, rec.LauncherStart) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}
