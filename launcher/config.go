package launcher

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Config is everything the init half needs to build the container. The parent encodes it
// onto the sync socket; the child decodes it before touching anything.
type Config struct {
	// Root filesystem: an overlay of Lower (the image, never written) with Upper and
	// Work (the container's own layer) mounted at RootFS. With Upper empty, Lower is
	// bind-mounted read-only instead.
	Lower    string `json:"lower"`
	Upper    string `json:"upper,omitempty"`
	Work     string `json:"work,omitempty"`
	RootFS   string `json:"rootfs"`
	ReadOnly bool   `json:"readonly,omitempty"`

	Hostname string  `json:"hostname"`
	NetHost  bool    `json:"net_host,omitempty"`
	Mounts   []Mount `json:"mounts,omitempty"`
	// Files written into the container's layer before pivot_root, keyed by their
	// absolute path inside the container (/etc/hostname, /etc/hosts, /etc/resolv.conf).
	Files map[string]string `json:"files,omitempty"`

	Process Process `json:"process"`
	// Init keeps a minimal PID 1 that reaps zombies and forwards signals; without it
	// the payload is PID 1.
	Init bool `json:"init,omitempty"`
	// CgroupNS gives the container its own cgroup namespace, entered after the parent
	// has placed the child in its cgroup so that the container's root is that cgroup.
	CgroupNS bool `json:"cgroupns,omitempty"`
	// UserNS puts the container in a new user namespace, whose maps the parent writes
	// through Options.MapIDs before the init runs (rootless, or --userns=auto).
	UserNS bool `json:"userns,omitempty"`
	// LowerIDMapped (root's --userns=auto): the launcher mounts Lower at LowerMount
	// idmapped to the container's ids, and the overlay stacks on that, so the image's
	// root-owned files are the container root's without a chowned copy of the image.
	LowerIDMapped bool   `json:"lower_idmapped,omitempty"`
	LowerMount    string `json:"lower_mount,omitempty"`
	// Security confines the payload: capabilities, no_new_privs, seccomp, masked
	// paths. The zero value is the default confinement, never none.
	Security Security `json:"security"`
}

// Process is the payload.
type Process struct {
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// Terminal: stdio is a pty slave that becomes the payload's controlling terminal
	// and /dev/console.
	Terminal bool `json:"terminal,omitempty"`
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"` // absolute, inside the container
	ReadOnly bool   `json:"readonly,omitempty"`
}

// The sync protocol on the socketpair, in both directions, is length-prefixed frames:
// a 4-byte big-endian length, then that many bytes. Parent → child: the Config (JSON),
// then a "go" frame once the child sits in its cgroup: 'g', followed by the payload's
// seccomp filter (seccomp.Filter.MarshalBinary) unless it is unconfined. The parent
// builds the filter while the child mounts, so that work costs the start nothing.
// Child → parent: at most one failure frame (JSON syncError). A successful exec closes
// the child's end (close-on-exec), so the parent reads EOF.
const maxFrame = 16 << 20

func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("sync frame of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// syncError is what the child reports when a step fails.
type syncError struct {
	Step  string `json:"step"`
	Msg   string `json:"msg"`
	Errno int    `json:"errno,omitempty"`
	// Code is the exit status thinbox should end with: 127 command not found, 126 not
	// executable, 0 for "use the generic launcher failure code".
	Code int `json:"code,omitempty"`
}

func encodeSyncError(e syncError) []byte {
	b, _ := json.Marshal(e)
	return b
}
