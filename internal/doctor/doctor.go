// Package doctor checks whether a machine can run thinbox, and says for each thing that
// is missing how to fix it: kernel and namespaces, cgroup v2 and its controllers,
// systemd and its bus, overlayfs, subordinate ids and newuidmap, the user-namespace
// sysctls and Ubuntu's AppArmor restriction, a 32-bit userland on a 64-bit kernel, and
// free space in the store.
//
// Checks read files through Env.Root (a fake /proc, /sys and /etc in tests) and ask
// Env.Probe for what only the live kernel can answer (creating a namespace, mounting an
// overlay, calling systemd). doctor never changes the machine: a probe that mounts or
// unshares does so in a private namespace that ends with it.
package doctor

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "OK"   // nothing to do
	Warn Status = "WARN" // thinbox works, but a feature does not (limits, services, rootless)
	Fail Status = "FAIL" // thinbox cannot run a container here until this is fixed
)

// Result is one check's line.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Namespace is a kind of namespace a container gets.
type Namespace string

// The namespaces thinbox creates for every container (launcher/start_linux.go and the
// init's cgroup unshare), and the user namespace rootless operation needs.
var (
	Required = []Namespace{"pid", "mount", "uts", "ipc", "net", "cgroup"}
	UserNS   = Namespace("user")
)

// Probe answers what files cannot: each method asks the live kernel or a service.
type Probe interface {
	Uname() (release, machine string, err error)
	// Unshare creates a namespace of that kind in a child process that exits at once.
	Unshare(ctx context.Context, ns Namespace) error
	// MountOverlay mounts a small overlay with its layers in dir, in a private mount
	// namespace, and unmounts it.
	MountOverlay(ctx context.Context, dir string) error
	// Systemd connects to the system manager and returns its version.
	Systemd(ctx context.Context) (int, error)
	// DpkgArch is `dpkg --print-architecture`, "" where there is no dpkg.
	DpkgArch(ctx context.Context) (string, error)
	// Free is the space an unprivileged writer may still use on path's filesystem.
	Free(path string) (uint64, error)
	// FileCaps reports whether path carries file capabilities (security.capability).
	FileCaps(path string) (bool, error)
	// ControllerHint says how to get a cgroup controller that is missing at the root.
	ControllerHint(controller string) string
}

// Env is what the checks look at.
type Env struct {
	Root  string // "/" on a real machine
	Probe Probe
	Euid  int
	// User is the person the check is for: SUDO_USER under sudo, else the caller.
	User string
	// Store is the image store (--root), /var/lib/thinbox for root.
	Store string
	// MinSystemd is, per thinbox flag, the oldest systemd that can apply it.
	MinSystemd map[string]int
}

// GiB is the free space below which the store gets a warning: an image of a Debian
// minbase rootfs is ~150-650 MB, and each container's writes land there too.
const GiB = 1 << 30

// Run runs every check in order.
func Run(ctx context.Context, e *Env) []Result {
	checks := []func(context.Context, *Env) Result{
		checkKernel, checkNamespaces, checkCgroup, checkControllers, checkSystemd,
		checkOverlay, checkStore, checkSubids, checkNewuidmap, checkUserns, checkArch,
	}
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, c(ctx, e))
	}
	return out
}

// Count tallies the verdicts.
func Count(rs []Result) map[Status]int {
	n := map[Status]int{OK: 0, Warn: 0, Fail: 0}
	for _, r := range rs {
		n[r.Status]++
	}
	return n
}

func (e *Env) path(p string) string { return filepath.Join(e.Root, p) }

func (e *Env) read(p string) (string, error) {
	b, err := os.ReadFile(e.path(p))
	return strings.TrimSpace(string(b)), err
}

func (e *Env) stat(p string) (fs.FileInfo, error) { return os.Stat(e.path(p)) }

func (e *Env) exists(p string) bool {
	_, err := e.stat(p)
	return err == nil
}

// sysctl reads /proc/sys/a/b for a.b; ok is false where the kernel has no such knob.
func (e *Env) sysctl(name string) (v int, ok bool) {
	s, err := e.read("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	return n, true
}

func ok(check, detail string) Result { return Result{Check: check, Status: OK, Detail: detail} }

func warn(check, detail, fix string) Result {
	return Result{Check: check, Status: Warn, Detail: detail, Fix: fix}
}

func fail(check, detail, fix string) Result {
	return Result{Check: check, Status: Fail, Detail: detail, Fix: fix}
}
