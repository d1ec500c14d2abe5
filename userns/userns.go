package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// IDMap maps Size ids from ContainerID inside the namespace to HostID outside.
type IDMap struct {
	ContainerID uint32 `json:"container_id"`
	HostID      uint32 `json:"host_id"`
	Size        uint32 `json:"size"`
}

// Mapping is a container's user namespace: its uid and gid maps, and how they get
// written.
type Mapping struct {
	UIDs []IDMap `json:"uids"`
	GIDs []IDMap `json:"gids"`
	// Helpers: the maps go through the setuid newuidmap/newgidmap (a range beyond the
	// caller's own id); otherwise the caller writes its single id itself, which the
	// kernel allows only with setgroups denied.
	Helpers bool `json:"helpers"`
	// Privileged: root writes the maps itself, whatever they hold (--userns=auto), and
	// setgroups stays allowed.
	Privileged bool `json:"privileged,omitempty"`
}

// Size is the number of container ids mapped.
func (m *Mapping) Size() uint32 {
	var n uint32
	for _, r := range m.UIDs {
		n += r.Size
	}
	return n
}

// HostUID translates a container uid to the host, ok false when it is not mapped.
func (m *Mapping) HostUID(id uint32) (uint32, bool) { return translate(m.UIDs, id) }

// HostGID translates a container gid to the host.
func (m *Mapping) HostGID(id uint32) (uint32, bool) { return translate(m.GIDs, id) }

func translate(maps []IDMap, id uint32) (uint32, bool) {
	for _, r := range maps {
		if id >= r.ContainerID && id-r.ContainerID < r.Size {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}

// ErrUnavailable: the kernel or the system's configuration forbids the user namespace.
var ErrUnavailable = errors.New("user namespaces are not available")

// MinRange is the smallest subordinate range thinbox maps whole: what a Debian or
// Alpine image needs (nobody is 65534).
const MinRange = 65536

// Files is where subordinate ids and the helpers live; tests point it elsewhere.
type Files struct {
	SubUID, SubGID       string
	NewUIDMap, NewGIDMap string
	Proc                 string // /proc
}

// System are the real files.
var System = Files{SubUID: "/etc/subuid", SubGID: "/etc/subgid", NewUIDMap: "newuidmap", NewGIDMap: "newgidmap", Proc: "/proc"}

// ForUser decides the mapping for an unprivileged user: container root is the user,
// and with a subordinate range in /etc/subuid and /etc/subgid and the helpers
// installed, ids 1..N map to that range. Otherwise it is the single id, and notice says
// what that means and how to get the full range.
func (f Files) ForUser(name string, uid, gid int) (m *Mapping, notice string) {
	single := &Mapping{
		UIDs: []IDMap{{0, uint32(uid), 1}},
		GIDs: []IDMap{{0, uint32(gid), 1}},
	}
	subu, erru := subIDs(f.SubUID, name, uid)
	subg, errg := subIDs(f.SubGID, name, uid)
	fix := fmt.Sprintf("for the full range: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s, and install the uidmap package", name)
	switch {
	case erru != nil || errg != nil || len(subu) == 0 || len(subg) == 0:
		return single, fmt.Sprintf("thinbox: %s has no subordinate ids in %s and %s: the container has one user, root, which is you; files of other owners appear as nobody (%s)", name, f.SubUID, f.SubGID, fix)
	}
	if err := f.helpersUsable(); err != nil {
		return single, fmt.Sprintf("thinbox: %v: the container has one user, root, which is you (%s)", err, fix)
	}
	m = &Mapping{UIDs: []IDMap{{0, uint32(uid), 1}}, GIDs: []IDMap{{0, uint32(gid), 1}}, Helpers: true}
	m.UIDs = append(m.UIDs, stack(subu)...)
	m.GIDs = append(m.GIDs, stack(subg)...)
	if m.Size() < MinRange {
		notice = fmt.Sprintf("thinbox: %s has only %d subordinate ids; images that use ids above %d will show files as nobody", name, m.Size()-1, m.Size()-1)
	}
	return m, notice
}

// stack lays ranges one after another from container id 1.
func stack(ranges []user.SubID) []IDMap {
	var out []IDMap
	next := uint32(1)
	for _, r := range ranges {
		out = append(out, IDMap{ContainerID: next, HostID: uint32(r.SubID), Size: uint32(r.Count)})
		next += uint32(r.Count)
	}
	return out
}

// subIDs returns the ranges /etc/subuid (or subgid) gives a user, by name or uid.
func subIDs(file, name string, uid int) ([]user.SubID, error) {
	ids, err := user.ParseSubIDFileFilter(file, func(s user.SubID) bool {
		return s.Name == name || s.Name == strconv.Itoa(uid)
	})
	if err != nil {
		return nil, err
	}
	var out []user.SubID
	for _, s := range ids {
		if s.Count > 0 && s.SubID > 0 && s.SubID+s.Count <= 1<<32 {
			out = append(out, s)
		}
	}
	return out, nil
}

// helpersUsable checks that newuidmap and newgidmap exist and can do their job: setuid
// root, or carrying file capabilities (Fedora, Arch).
func (f Files) helpersUsable() error {
	for _, h := range []string{f.NewUIDMap, f.NewGIDMap} {
		p, err := exec.LookPath(h)
		if err != nil {
			return fmt.Errorf("%s is not installed (package uidmap)", h)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode()&os.ModeSetuid == 0 && !hasFileCaps(p) {
			return fmt.Errorf("%s is neither setuid root nor has file capabilities", p)
		}
	}
	return nil
}

func hasFileCaps(path string) bool {
	sz, err := unix.Getxattr(path, "security.capability", nil)
	return err == nil && sz > 0
}

// Apply writes the maps of the user namespace pid lives in. With helpers it runs
// newuidmap and newgidmap; otherwise it writes the single-id maps itself, denying
// setgroups first as the kernel requires.
func (f Files) Apply(m *Mapping, pid int) error {
	if m.Helpers {
		if err := runHelper(f.NewUIDMap, pid, m.UIDs); err != nil {
			return err
		}
		return runHelper(f.NewGIDMap, pid, m.GIDs)
	}
	base := f.Proc + "/" + strconv.Itoa(pid)
	if err := os.WriteFile(base+"/uid_map", []byte(format(m.UIDs)), 0); err != nil {
		return fmt.Errorf("userns: write uid_map: %w", err)
	}
	if !m.Privileged {
		if err := os.WriteFile(base+"/setgroups", []byte("deny"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("userns: deny setgroups: %w", err)
		}
	}
	if err := os.WriteFile(base+"/gid_map", []byte(format(m.GIDs)), 0); err != nil {
		return fmt.Errorf("userns: write gid_map: %w", err)
	}
	return nil
}

func runHelper(helper string, pid int, maps []IDMap) error {
	args := []string{strconv.Itoa(pid)}
	for _, r := range maps {
		args = append(args, strconv.FormatUint(uint64(r.ContainerID), 10), strconv.FormatUint(uint64(r.HostID), 10), strconv.FormatUint(uint64(r.Size), 10))
	}
	out, err := exec.Command(helper, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("userns: %s %s: %v: %s", helper, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func format(maps []IDMap) string {
	var b strings.Builder
	for _, r := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", r.ContainerID, r.HostID, r.Size)
	}
	return b.String()
}

// Check says whether an unprivileged user may create user namespaces here, and if not,
// exactly what forbids it and how to allow it.
func (f Files) Check() error {
	read := func(p string) string {
		b, _ := os.ReadFile(f.Proc + "/sys/" + p)
		return strings.TrimSpace(string(b))
	}
	if read("kernel/unprivileged_userns_clone") == "0" {
		return fmt.Errorf("%w: kernel.unprivileged_userns_clone is 0 (run: sudo sysctl -w kernel.unprivileged_userns_clone=1, and set it in /etc/sysctl.d/ to keep it)", ErrUnavailable)
	}
	if read("user/max_user_namespaces") == "0" {
		return fmt.Errorf("%w: user.max_user_namespaces is 0 (run: sudo sysctl -w user.max_user_namespaces=15000)", ErrUnavailable)
	}
	if read("kernel/apparmor_restrict_unprivileged_userns") == "1" && !apparmorProfileLoaded() {
		return fmt.Errorf("%w: AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+) and thinbox's profile is not loaded (install the thinbox package, or: sudo apparmor_parser -r /etc/apparmor.d/thinbox)", ErrUnavailable)
	}
	return nil
}

// apparmorProfileLoaded reports whether the thinbox AppArmor profile (which grants
// userns) is loaded.
func apparmorProfileLoaded() bool {
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	return err == nil && strings.Contains(string(b), "thinbox ")
}
