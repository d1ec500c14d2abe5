package userns

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// AutoOwner is the /etc/subuid and /etc/subgid entry whose range --userns=auto carves
// into one block per container.
const AutoOwner = "thinbox"

// Allocator hands root's containers (--userns=auto) disjoint blocks of MinRange ids from
// AutoOwner's range, recorded in Dir (under /run/thinbox: allocations vanish with the
// containers at reboot). Two containers can never hold the same block: allocation is
// one file per container, chosen under a lock.
type Allocator struct {
	Dir   string
	Files Files
}

// Allocate reserves a block for container name (again the same one if it has one).
func (a Allocator) Allocate(name string) (*Mapping, error) {
	subu, err1 := subIDs(a.Files.SubUID, AutoOwner, -1)
	subg, err2 := subIDs(a.Files.SubGID, AutoOwner, -1)
	if err1 != nil || err2 != nil || len(subu) == 0 || len(subg) == 0 {
		return nil, fmt.Errorf("userns: --userns=auto needs a range for %q in %s and %s, e.g.: echo %s:2147483648:2147483648 | sudo tee -a %s %s", AutoOwner, a.Files.SubUID, a.Files.SubGID, AutoOwner, a.Files.SubUID, a.Files.SubGID)
	}
	blocks := min(subu[0].Count, subg[0].Count) / MinRange
	if blocks == 0 {
		return nil, fmt.Errorf("userns: the %s range for %q holds fewer than %d ids", a.Files.SubUID, AutoOwner, MinRange)
	}
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("userns: %w", err)
	}
	unlock, err := a.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	used := map[int64]bool{}
	ents, _ := os.ReadDir(a.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.Dir, e.Name()))
		if err != nil {
			continue
		}
		i, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			continue
		}
		if e.Name() == name {
			return a.mapping(subu[0], subg[0], i), nil
		}
		used[i] = true
	}
	for i := int64(0); i < blocks; i++ {
		if used[i] {
			continue
		}
		tmp := filepath.Join(a.Dir, "."+name)
		if err := os.WriteFile(tmp, []byte(strconv.FormatInt(i, 10)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("userns: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(a.Dir, name)); err != nil {
			return nil, fmt.Errorf("userns: %w", err)
		}
		return a.mapping(subu[0], subg[0], i), nil
	}
	return nil, fmt.Errorf("userns: all %d blocks of %d ids of %q's range are in use", blocks, MinRange, AutoOwner)
}

func (a Allocator) mapping(u, g user.SubID, i int64) *Mapping {
	return &Mapping{
		UIDs:       []IDMap{{0, uint32(u.SubID + i*MinRange), MinRange}},
		GIDs:       []IDMap{{0, uint32(g.SubID + i*MinRange), MinRange}},
		Privileged: true,
	}
}

// Release frees a container's block.
func (a Allocator) Release(name string) {
	_ = os.Remove(filepath.Join(a.Dir, name))
}

// Holders are the containers holding a block.
func (a Allocator) Holders() []string {
	var out []string
	ents, _ := os.ReadDir(a.Dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (a Allocator) lock() (func(), error) {
	fd, err := unix.Open(filepath.Join(a.Dir, ".lock"), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("userns: lock: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("userns: lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}
