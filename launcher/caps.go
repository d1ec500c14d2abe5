package launcher

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/moby/sys/capability"
)

// CapSet is a set of capabilities, bit n for capability n (CAP_CHOWN is 0): the kernel
// numbers them up to 40 today and its ABI takes 64.
type CapSet uint64

// DefaultCaps is the set Docker and podman give a container.
var DefaultCaps = capsOf(
	capability.CAP_CHOWN, capability.CAP_DAC_OVERRIDE, capability.CAP_FOWNER, capability.CAP_FSETID,
	capability.CAP_KILL, capability.CAP_SETGID, capability.CAP_SETUID, capability.CAP_SETPCAP,
	capability.CAP_NET_BIND_SERVICE, capability.CAP_NET_RAW, capability.CAP_SYS_CHROOT, capability.CAP_MKNOD,
	capability.CAP_AUDIT_WRITE, capability.CAP_SETFCAP,
)

func capsOf(caps ...capability.Cap) CapSet {
	var s CapSet
	for _, c := range caps {
		s |= 1 << uint(c)
	}
	return s
}

// Has reports whether c is in the set.
func (s CapSet) Has(c capability.Cap) bool { return c >= 0 && c < 64 && s&(1<<uint(c)) != 0 }

// HasName reports whether the capability called name ("CAP_SYS_ADMIN") is in the set.
func (s CapSet) HasName(name string) bool {
	c, ok := capByName[strings.TrimPrefix(strings.ToUpper(name), "CAP_")]
	return ok && s.Has(c)
}

// List is the set's capabilities in kernel order.
func (s CapSet) List() []capability.Cap {
	var out []capability.Cap
	for v := uint64(s); v != 0; v &= v - 1 {
		out = append(out, capability.Cap(bits.TrailingZeros64(v)))
	}
	return out
}

// String names the set as /proc/PID/status's CapEff does (hex) and by name.
func (s CapSet) String() string {
	names := make([]string, 0, bits.OnesCount64(uint64(s)))
	for _, c := range s.List() {
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	return fmt.Sprintf("%016x (%s)", uint64(s), strings.Join(names, " "))
}

// capByName maps "NET_ADMIN" to its number, from the library's own table so a
// capability it knows is one thinbox accepts.
var capByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m[strings.ToUpper(c.String())] = c
	}
	return m
}()

// allCaps is every capability the running kernel has: what --privileged and
// --cap-add ALL give.
func allCaps() CapSet {
	caps, err := capability.ListSupported()
	if err != nil {
		caps = capability.ListKnown()
	}
	return capsOf(caps...)
}

// ResolveCaps applies --cap-add and --cap-drop to DefaultCaps as Docker does: ALL in
// --cap-add means every capability but the dropped ones; ALL in --cap-drop means only
// the added ones; otherwise drop, then add. Names are case-insensitive, with or
// without CAP_. added is what --cap-add named (a non-root payload keeps exactly these).
func ResolveCaps(add, drop []string) (set, added CapSet, err error) {
	addSet, addAll, err := parseCaps("--cap-add", add)
	if err != nil {
		return 0, 0, err
	}
	dropSet, dropAll, err := parseCaps("--cap-drop", drop)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case addAll:
		set = allCaps() &^ dropSet
		added = set
	case dropAll:
		set = addSet
		added = addSet
	default:
		set = DefaultCaps&^dropSet | addSet
		added = addSet
	}
	return set, added, nil
}

func parseCaps(flag string, names []string) (set CapSet, all bool, err error) {
	for _, n := range names {
		key := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(n)), "CAP_")
		if key == "ALL" {
			all = true
			continue
		}
		c, ok := capByName[key]
		if !ok {
			return 0, false, fmt.Errorf("launcher: %s %q: unknown capability (see capabilities(7); ALL for every one)", flag, n)
		}
		set |= 1 << uint(c)
	}
	return set, all, nil
}
