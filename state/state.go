package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/thinbox/thinbox/internal/names"
	"golang.org/x/sys/unix"
)

// Status of a container as recorded, refined by liveness checks on load.
type Status string

const (
	Creating Status = "creating" // name reserved, launcher setting up
	Running  Status = "running"
	Exited   Status = "exited"
)

// Record is what thinbox knows about one container. The launcher writes it; every
// other command only reads it, except rm, which deletes it.
type Record struct {
	Name        string    `json:"name"`
	Image       string    `json:"image"`
	ImageDigest string    `json:"image_digest,omitempty"`
	Command     []string  `json:"command"`
	Hostname    string    `json:"hostname"`
	Net         string    `json:"net"`
	Init        bool      `json:"init"`
	Remove      bool      `json:"remove"` // --rm: record and layer go when it ends
	Status      Status    `json:"status"`
	Created     time.Time `json:"created"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	ExitCode    *int      `json:"exit_code,omitempty"`
	OOMKilled   bool      `json:"oom_killed,omitempty"`
	// Error says why a container ended other than by its payload (start failure, launcher
	// lost).
	Error string `json:"error,omitempty"`

	// Pid is the container's PID 1 on the host; PidStart its start time (clock ticks
	// since boot, /proc/PID/stat field 22), so a reused pid is never mistaken for it.
	Pid           int    `json:"pid,omitempty"`
	PidStart      uint64 `json:"pid_start,omitempty"`
	LauncherPid   int    `json:"launcher_pid,omitempty"`
	LauncherStart uint64 `json:"launcher_start,omitempty"`

	// Unit is the systemd unit the container runs in (thinbox-NAME.scope or .service),
	// empty without systemd.
	Unit   string            `json:"unit,omitempty"`
	Cgroup string            `json:"cgroup,omitempty"`
	Limits map[string]string `json:"limits,omitempty"`
	Layer  string            `json:"layer"`
}

// Store holds records under Dir (/run/thinbox/containers) and layers under LayerDir
// (/var/lib/thinbox/containers).
type Store struct {
	Dir      string
	LayerDir string
}

// NewStore returns the store for a state root (/run/thinbox) and a data root
// (/var/lib/thinbox).
func NewStore(runRoot, dataRoot string) *Store {
	return &Store{Dir: filepath.Join(runRoot, "containers"), LayerDir: filepath.Join(dataRoot, "containers")}
}

func (s *Store) dir(name string) string    { return filepath.Join(s.Dir, name) }
func (s *Store) file(name string) string   { return filepath.Join(s.Dir, name, "state.json") }
func (s *Store) layer(name string) string  { return filepath.Join(s.LayerDir, name) }
func (s *Store) lockfile(n string) string  { return filepath.Join(s.Dir, n, "lock") }
func (s *Store) LayerPath(n string) string { return s.layer(n) }

// Create reserves rec.Name atomically (mkdir) and writes the record. A name whose
// record says it is gone for good (a --rm container whose launcher died) is reclaimed.
func (s *Store) Create(rec *Record) error {
	if err := names.Check("container", rec.Name); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Mkdir(s.dir(rec.Name), 0o700); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("state: create %s: %w", rec.Name, err)
		}
		old, lerr := s.Load(rec.Name)
		if lerr == nil && old.Remove && old.Status == Exited {
			if err := s.Delete(rec.Name); err != nil {
				return err
			}
			return s.Create(rec)
		}
		return fmt.Errorf("state: %s: %w", rec.Name, ErrExists)
	}
	rec.Layer = s.layer(rec.Name)
	if rec.Created.IsZero() {
		rec.Created = time.Now().UTC()
	}
	if err := s.write(rec); err != nil {
		os.RemoveAll(s.dir(rec.Name))
		return err
	}
	return nil
}

// write replaces the record atomically, so a reader sees the old or the new one.
func (s *Store) write(rec *Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", rec.Name, err)
	}
	tmp := s.file(rec.Name) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state: write %s: %w", rec.Name, err)
	}
	if err := os.Rename(tmp, s.file(rec.Name)); err != nil {
		return fmt.Errorf("state: write %s: %w", rec.Name, err)
	}
	return nil
}

// Update changes a record under its lock.
func (s *Store) Update(name string, change func(*Record)) error {
	unlock, err := s.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := s.read(name)
	if err != nil {
		return err
	}
	change(rec)
	return s.write(rec)
}

func (s *Store) lock(name string) (func(), error) {
	fd, err := unix.Open(s.lockfile(name), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("state: %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("state: lock %s: %w", name, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("state: lock %s: %w", name, err)
	}
	return func() { unix.Close(fd) }, nil
}

func (s *Store) read(name string) (*Record, error) {
	if err := names.Check("container", name); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	b, err := os.ReadFile(s.file(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("state: %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", name, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("state: decode %s: %w", name, err)
	}
	return &rec, nil
}

// Load returns the record with its status checked against the processes it names: a
// container whose PID 1 is gone while the record says running (its launcher was
// killed) is reported exited, with the reason.
func (s *Store) Load(name string) (*Record, error) {
	rec, err := s.read(name)
	if err != nil {
		return nil, err
	}
	rec.refresh()
	return rec, nil
}

func (r *Record) refresh() {
	switch r.Status {
	case Running:
		if !Alive(r.Pid, r.PidStart) {
			r.Status = Exited
			if r.Error == "" && r.ExitCode == nil {
				r.Error = "container ended while its launcher was gone; exit status unknown"
			}
		}
	case Creating:
		if !Alive(r.LauncherPid, r.LauncherStart) {
			r.Status = Exited
			if r.Error == "" {
				r.Error = "launcher died while starting the container"
			}
		}
	}
}

// List returns every record, by name.
func (s *Store) List() ([]*Record, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: list: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		if !e.IsDir() || names.Check("container", e.Name()) != nil {
			continue
		}
		rec, err := s.Load(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // being created or deleted right now
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes the container's layer, then its record: a crash in between leaves an
// orphan layer, which GC collects, never a record without its layer.
func (s *Store) Delete(name string) error {
	if err := names.Check("container", name); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := removeLayer(s.layer(name)); err != nil {
		return fmt.Errorf("state: remove layer of %s: %w", name, err)
	}
	if err := os.RemoveAll(s.dir(name)); err != nil {
		return fmt.Errorf("state: remove %s: %w", name, err)
	}
	return nil
}

// GC removes layers that have no record (their record vanished with a reboot of /run,
// or a crash came between the two removals of Delete) and the records of --rm
// containers that ended without their launcher. What it may not remove (a rootless
// container's files owned by subordinate ids) it leaves, and names in the returned
// list for the caller to remove another way.
func (s *Store) GC() (denied []string, err error) {
	recs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Remove && r.Status == Exited {
			if err := s.Delete(r.Name); err != nil {
				if !errors.Is(err, os.ErrPermission) {
					return nil, err
				}
				denied = append(denied, r.Name)
			}
		}
	}
	ents, err := os.ReadDir(s.LayerDir)
	if errors.Is(err, os.ErrNotExist) {
		return denied, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: gc: %w", err)
	}
	for _, e := range ents {
		if _, err := os.Stat(s.dir(e.Name())); errors.Is(err, os.ErrNotExist) {
			if err := removeLayer(filepath.Join(s.LayerDir, e.Name())); err != nil {
				if !errors.Is(err, os.ErrPermission) {
					return nil, fmt.Errorf("state: gc layer %s: %w", e.Name(), err)
				}
				denied = append(denied, e.Name())
			}
		}
	}
	return denied, nil
}

// removeLayer deletes a container's layer directory. Its rootfs mount point only ever
// carried a mount inside the container's own mount namespace, gone with the container;
// if something still is mounted there, RemoveAll fails with EBUSY rather than
// descending into it.
func removeLayer(dir string) error {
	err := os.RemoveAll(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
