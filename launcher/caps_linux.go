package launcher

import (
	"fmt"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// dropBounding limits what this thread, and every program it forks or execs, can ever
// hold to set. It needs CAP_SETPCAP, so it runs while the init still has everything.
func dropBounding(set CapSet) error {
	last, err := capability.LastCap()
	if err != nil {
		return err
	}
	for c := capability.Cap(0); c <= last; c++ {
		if set.Has(c) {
			continue
		}
		if err := capability.DropBound(c); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", c, err)
		}
	}
	return nil
}

// capsAfterSetuid gives the payload's thread, once it has its uid, its final sets:
// for uid 0, effective and permitted are the set (exec recomputes them from the
// bounding set; they must not be smaller, or no_new_privs would cut the result
// down) and inheritable is empty, as Docker and podman keep it since CVE-2022-24769;
// for another uid, effective, permitted, inheritable and ambient are the added
// capabilities, the only way a non-root program keeps any across exec.
//
// Both are cut to what this thread is permitted: thinbox itself may run with fewer
// capabilities than the set names (inside another container, or --privileged on a
// host whose bounding set lacks some), and no process can gain any.
func capsAfterSetuid(sec *Security, uid uint32) error {
	_, perm, err := capget()
	if err != nil {
		return err
	}
	if uid == 0 {
		caps := sec.caps() & perm
		if err := capset(caps, caps, 0); err != nil {
			return err
		}
		return ignoreEINVAL(capability.ResetAmbient())
	}
	amb := sec.Ambient & perm
	if err := capset(amb, amb, amb); err != nil {
		return err
	}
	if err := ignoreEINVAL(capability.ResetAmbient()); err != nil {
		return err
	}
	if amb != 0 {
		if err := capability.SetAmbient(true, amb.List()...); err != nil {
			return fmt.Errorf("raise ambient capabilities: %w", err)
		}
	}
	return nil
}

// ignoreEINVAL: kernels before 4.3 have no ambient set; there is nothing to clear.
func ignoreEINVAL(err error) error {
	if err == unix.EINVAL {
		return nil
	}
	return err
}

// capset sets this thread's effective, permitted and inheritable sets.
func capset(eff, perm, inh CapSet) error {
	hdr, data := capData(eff, perm, inh)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// capget reads this thread's effective and permitted sets.
func capget() (eff, perm CapSet, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, fmt.Errorf("capget: %w", err)
	}
	eff = CapSet(data[0].Effective) | CapSet(data[1].Effective)<<32
	perm = CapSet(data[0].Permitted) | CapSet(data[1].Permitted)<<32
	return eff, perm, nil
}

func capData(eff, perm, inh CapSet) (unix.CapUserHeader, [2]unix.CapUserData) {
	return unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
}
