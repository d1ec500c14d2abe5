package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateLoadDelete(t *testing.T) {
	s := NewStore(t.TempDir(), t.TempDir())
	rec := &Record{Name: "web", Image: "busybox", Status: Creating, LauncherPid: os.Getpid(), LauncherStart: StartTime(os.Getpid())}
	if err := s.Create(rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(&Record{Name: "web"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	got, err := s.Load("web")
	if err != nil || got.Status != Creating || got.Layer != filepath.Join(s.LayerDir, "web") {
		t.Fatalf("Load: %+v %v", got, err)
	}
	if err := s.Update("web", func(r *Record) { r.Status = Running; r.Pid = os.Getpid(); r.PidStart = StartTime(os.Getpid()) }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load("web"); got.Status != Running {
		t.Fatalf("status %s, want running", got.Status)
	}
	os.MkdirAll(filepath.Join(s.LayerDir, "web", "upper"), 0o755)
	if err := s.Delete("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.LayerDir, "web")); !os.IsNotExist(err) {
		t.Fatalf("layer left: %v", err)
	}
}

func TestInvalidNames(t *testing.T) {
	s := NewStore(t.TempDir(), t.TempDir())
	for _, n := range []string{"../x", "", "a/b", "-x"} {
		if err := s.Create(&Record{Name: n}); err == nil {
			t.Errorf("Create(%q) accepted", n)
		}
		if _, err := s.Load(n); err == nil {
			t.Errorf("Load(%q) accepted", n)
		}
	}
}

// A record whose processes are gone (the launcher was SIGKILLed) reads as exited, and
// GC removes it when it was --rm, along with layers that have no record.
func TestStaleRecordsAndGC(t *testing.T) {
	s := NewStore(t.TempDir(), t.TempDir())
	// A pid that can't be alive with that start time.
	dead := &Record{Name: "gone", Status: Running, Pid: os.Getpid(), PidStart: 1, Remove: true}
	kept := &Record{Name: "kept", Status: Running, Pid: os.Getpid(), PidStart: 1}
	for _, r := range []*Record{dead, kept} {
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Load("kept"); got.Status != Exited || got.Error == "" {
		t.Fatalf("stale record: %+v", got)
	}
	os.MkdirAll(filepath.Join(s.LayerDir, "orphan", "upper"), 0o755)
	os.MkdirAll(filepath.Join(s.LayerDir, "kept", "upper"), 0o755)
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("--rm record survived GC: %v", err)
	}
	if _, err := s.Load("kept"); err != nil {
		t.Errorf("kept record removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.LayerDir, "orphan")); !os.IsNotExist(err) {
		t.Errorf("orphan layer survived GC")
	}
	if _, err := os.Stat(filepath.Join(s.LayerDir, "kept")); err != nil {
		t.Errorf("kept layer removed")
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid(), StartTime(os.Getpid())) {
		t.Fatal("self not alive")
	}
	if Alive(os.Getpid(), StartTime(os.Getpid())+1) {
		t.Fatal("pid with another start time counted alive")
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Fatal("pid <= 0 alive")
	}
}
