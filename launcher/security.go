package launcher

import (
	"fmt"
	"io"
	"os"

	"github.com/thinbox/thinbox/launcher/seccomp"
)

// Security is how the payload is confined beyond its namespaces. The zero value is
// thinbox's default: DefaultCaps, no_new_privs, the default seccomp profile, masked
// and read-only /proc and /sys paths.
type Security struct {
	// Caps is the payload's capability set: its bounding set, and its effective and
	// permitted sets when it runs as uid 0. Nil means DefaultCaps.
	Caps *CapSet `json:"caps,omitempty"`
	// Ambient are the capabilities a payload running as another uid keeps across
	// exec (inheritable, permitted, effective and ambient): podman's rule, which gives
	// a non-root user exactly what --cap-add named and none of the defaults.
	Ambient CapSet `json:"ambient,omitempty"`
	// AllowNewPrivileges leaves no_new_privs unset, so setuid binaries and file
	// capabilities work in the container (up to the bounding set).
	AllowNewPrivileges bool `json:"allow_new_privs,omitempty"`
	// Unconfined installs no seccomp filter.
	Unconfined bool `json:"unconfined,omitempty"`
	// Seccomp is a compiled profile from a file; nil (and not Unconfined) means the
	// default profile for Caps. It reaches the init in the "go" frame, not the JSON.
	Seccomp *seccomp.Filter `json:"-"`
	// Privileged mounts /sys read-write and masks nothing in /proc and /sys.
	Privileged bool `json:"privileged,omitempty"`
}

// SecurityOptions are the user's security flags.
type SecurityOptions struct {
	CapAdd, CapDrop []string
	// Privileged: every capability, no seccomp filter (unless Seccomp names a
	// profile), nothing masked, /sys writable. The namespaces, no_new_privs and the
	// standard /dev remain. A privileged container's root can load kernel modules,
	// mount the host's disks and so on: it is not a security boundary.
	Privileged bool
	// Seccomp is "" for the default profile, "unconfined", or a Docker/OCI JSON file.
	Seccomp            string
	AllowNewPrivileges bool
	// NonRoot: the payload runs as a uid other than 0 (it then keeps only the added
	// capabilities).
	NonRoot bool
}

// NewSecurity validates the options and resolves them into a Security, compiling a
// profile file so that a bad one fails before anything is created.
func NewSecurity(o SecurityOptions) (Security, error) {
	var s Security
	caps, added, err := ResolveCaps(o.CapAdd, o.CapDrop)
	if err != nil {
		return s, err
	}
	if o.Privileged {
		caps, added = allCaps(), allCaps()
		s.Privileged = true
		s.Unconfined = true
	}
	s.Caps = &caps
	if o.NonRoot {
		s.Ambient = added & caps
	}
	s.AllowNewPrivileges = o.AllowNewPrivileges
	switch o.Seccomp {
	case "":
	case "unconfined":
		s.Unconfined = true
	default:
		f, err := compileProfile(o.Seccomp, caps)
		if err != nil {
			return s, err
		}
		s.Unconfined, s.Seccomp = false, f
	}
	return s, nil
}

func compileProfile(path string, caps CapSet) (*seccomp.Filter, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("launcher: --seccomp: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, seccomp.MaxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("launcher: --seccomp %s: %w", path, err)
	}
	p, err := seccomp.Parse(data, seccomp.Env{HasCap: caps.HasName})
	if err != nil {
		return nil, fmt.Errorf("launcher: --seccomp %s: %w", path, err)
	}
	f, err := p.Compile()
	if err != nil {
		return nil, fmt.Errorf("launcher: --seccomp %s: %w", path, err)
	}
	return f, nil
}

// filter is the payload's seccomp filter: nil when unconfined; the default profile,
// built for the payload's capabilities (a deny list: no profile to parse, about 0.1 ms),
// unless a file's was compiled already.
func (s *Security) filter() (*seccomp.Filter, error) {
	if s.Unconfined {
		return nil, nil
	}
	if s.Seccomp != nil {
		return s.Seccomp, nil
	}
	return seccomp.Default(s.caps().HasName).Compile()
}

// caps is the payload's capability set.
func (s *Security) caps() CapSet {
	if s.Caps == nil {
		return DefaultCaps
	}
	return *s.Caps
}
