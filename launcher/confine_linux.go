package launcher

import (
	"github.com/moby/sys/capability"
	"github.com/thinbox/thinbox/launcher/seccomp"
	"golang.org/x/sys/unix"
)

// The init confines the payload last, in this order (runc's): the bounding set while
// it still holds CAP_SETPCAP, the uid change, the payload's own capability sets, then
// no_new_privs, then the seccomp filter right before exec, so the filter never has to
// allow the set-up calls. Each failure names its step.
//
// Without no_new_privs the kernel only lets a process holding CAP_SYS_ADMIN install a
// filter, so with AllowNewPrivileges the filter goes in first, while the init still
// holds it; the set-up calls after it (capset, setuid, prctl, execve) are ones every
// sensible profile allows.

// confineEarly is the part that precedes the uid change, for both modes.
func confineEarly(sec *Security, filter *seccomp.Filter, p *Process) error {
	if filter != nil && sec.AllowNewPrivileges {
		if err := filter.Install(); err != nil {
			return stepErr("install seccomp filter", err)
		}
	}
	if err := dropBounding(sec.caps()); err != nil {
		return stepErr("drop capabilities", err)
	}
	// A uid change clears the permitted set unless told to keep it; a non-root payload
	// needs its ambient capabilities in there to raise them.
	if p.UID != 0 && sec.Ambient != 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return stepErr("keep capabilities across setuid", err)
		}
	}
	return nil
}

// confineLate follows the uid change: the capability sets, no_new_privs, the filter.
// After it only exec may come.
func confineLate(sec *Security, filter *seccomp.Filter, p *Process) error {
	if err := capsAfterSetuid(sec, p.UID); err != nil {
		return stepErr("set capabilities", err)
	}
	if p.UID != 0 && sec.Ambient != 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
			return stepErr("set capabilities", err)
		}
	}
	return noNewPrivsAndFilter(sec, filter)
}

func noNewPrivsAndFilter(sec *Security, filter *seccomp.Filter) error {
	if sec.AllowNewPrivileges {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return stepErr("set no_new_privs", err)
	}
	if filter != nil {
		if err := filter.Install(); err != nil {
			return stepErr("install seccomp filter", err)
		}
	}
	return nil
}

// confinePID1 prepares the --init PID 1 to fork the payload: the payload inherits
// this thread's bounding set, inheritable set, no_new_privs and filter. The fork
// child changes uid itself (os.StartProcess), so this thread keeps CAP_SETUID and
// CAP_SETGID until then, and a permitted set no smaller than the payload's.
func confinePID1(sec *Security, filter *seccomp.Filter) error {
	if filter != nil && sec.AllowNewPrivileges {
		if err := filter.Install(); err != nil {
			return stepErr("install seccomp filter", err)
		}
	}
	if err := dropBounding(sec.caps()); err != nil {
		return stepErr("drop capabilities", err)
	}
	eff, perm, err := capget()
	if err != nil {
		return stepErr("drop capabilities", err)
	}
	// Inheritable empty: a root payload then gets exactly the bounding set on exec.
	if err := capset(eff, perm, 0); err != nil {
		return stepErr("drop capabilities", err)
	}
	if err := ignoreEINVAL(capability.ResetAmbient()); err != nil {
		return stepErr("drop capabilities", err)
	}
	return noNewPrivsAndFilter(sec, filter)
}

// pid1Caps is all the --init PID 1 keeps once the payload runs: CAP_KILL, to forward
// signals to a payload running as another uid. It can reach nothing outside the
// container's pid namespace.
var pid1Caps = capsOf(capability.CAP_KILL)

// lowerPID1 drops the init's own capabilities, on every thread, to pid1Caps.
func lowerPID1() error {
	_, perm, err := capget()
	if err != nil {
		return stepErr("lower the init's capabilities", err)
	}
	keep := pid1Caps & perm
	return stepErr("lower the init's capabilities", capsetAllThreads(keep, keep, 0))
}
