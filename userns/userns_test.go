package userns

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/user"
)

func files(t *testing.T, subuid, subgid string) Files {
	dir := t.TempDir()
	f := Files{SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"), NewUIDMap: "/nonexistent/newuidmap", NewGIDMap: "/nonexistent/newgidmap", Proc: "/proc"}
	os.WriteFile(f.SubUID, []byte(subuid), 0o644)
	os.WriteFile(f.SubGID, []byte(subgid), 0o644)
	return f
}

func TestForUserSingleWithoutRange(t *testing.T) {
	f := files(t, "other:100000:65536\n", "other:100000:65536\n")
	m, notice := f.ForUser("bob", 1001, 1001)
	if m.Helpers || len(m.UIDs) != 1 || m.UIDs[0] != (IDMap{0, 1001, 1}) || m.GIDs[0] != (IDMap{0, 1001, 1}) {
		t.Errorf("mapping %+v", m)
	}
	if !strings.Contains(notice, "no subordinate ids") || !strings.Contains(notice, "usermod --add-subuids") {
		t.Errorf("notice %q", notice)
	}
}

func TestForUserRangeNeedsHelpers(t *testing.T) {
	f := files(t, "alice:100000:65536\n", "1000:200000:65536\n")
	m, notice := f.ForUser("alice", 1000, 1000)
	// The helpers don't exist here: single id, and the notice says why.
	if m.Helpers || !strings.Contains(notice, "newuidmap") {
		t.Errorf("mapping %+v notice %q", m, notice)
	}
	if got := stack(mustSub(t, f.SubGID, "alice", 1000)); len(got) != 1 || got[0] != (IDMap{1, 200000, 65536}) {
		t.Errorf("gid ranges by uid: %+v", got)
	}
}

func mustSub(t *testing.T, file, name string, uid int) []user.SubID {
	s, err := subIDs(file, name, uid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTranslate(t *testing.T) {
	m := &Mapping{UIDs: []IDMap{{0, 1000, 1}, {1, 100000, 65536}}}
	for in, want := range map[uint32]uint32{0: 1000, 1: 100000, 1000: 100999, 65536: 165535} {
		if got, ok := m.HostUID(in); !ok || got != want {
			t.Errorf("HostUID(%d) = %d %v, want %d", in, got, ok, want)
		}
	}
	if _, ok := m.HostUID(65537); ok {
		t.Errorf("65537 mapped")
	}
	if m.Size() != 65537 {
		t.Errorf("Size %d", m.Size())
	}
}

// --userns=auto: concurrent allocations never share a block; a container keeps its
// block; a released block is reused.
func TestAllocator(t *testing.T) {
	f := files(t, "thinbox:1000000:327680\n", "thinbox:2000000:262144\n")
	a := Allocator{Dir: filepath.Join(t.TempDir(), "userns"), Files: f}
	var mu sync.Mutex
	seen := map[uint32]string{}
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := a.Allocate(n)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[m.UIDs[0].HostID]; dup {
				t.Errorf("%s and %s share block %d", n, other, m.UIDs[0].HostID)
			}
			seen[m.UIDs[0].HostID] = n
			if m.UIDs[0].Size != MinRange || m.GIDs[0].HostID-2000000 != m.UIDs[0].HostID-1000000 || !m.Privileged {
				t.Errorf("%s: %+v", n, m)
			}
		}()
	}
	wg.Wait()
	// The gid range has 4 blocks: a fifth container gets none.
	if _, err := a.Allocate("e"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("fifth allocation: %v", err)
	}
	again, _ := a.Allocate("b")
	b := again.UIDs[0].HostID
	if seen[b] != "b" {
		t.Errorf("b got another block on its second allocation")
	}
	a.Release("b")
	e, err := a.Allocate("e")
	if err != nil || e.UIDs[0].HostID != b {
		t.Errorf("released block not reused: %+v %v", e, err)
	}
	if len(a.Holders()) != 4 {
		t.Errorf("holders %v", a.Holders())
	}
	// No range for thinbox: the error says how to add one.
	none := Allocator{Dir: t.TempDir(), Files: files(t, "", "")}
	if _, err := none.Allocate("x"); err == nil || !strings.Contains(err.Error(), "tee -a") {
		t.Errorf("without a range: %v", err)
	}
}
