// Package testenv lets a test state what it needs from the machine it runs on: root,
// namespaces, systemd as PID 1, a cgroup v2 controller, the built thinbox binary, the
// busybox test image.
//
// Outside CI a missing requirement skips the test with the reason. When CI=true (or
// THINBOX_TEST_STRICT=1) it fails the test instead: in CI a test that should run and
// cannot is a broken test bed, never a pass. testenv must never skip silently.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Requirement is one thing a test needs. Check returns "" when it is met, otherwise
// the reason it is not.
type Requirement struct {
	Name  string
	Check func() string
}

// Strict reports whether a missing requirement must fail the test rather than skip it.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("THINBOX_TEST_STRICT") == "1"
}

// Require fails (strict) or skips the test unless every requirement is met.
func Require(t testing.TB, reqs ...Requirement) {
	t.Helper()
	var missing []string
	for _, r := range reqs {
		if why := r.Check(); why != "" {
			missing = append(missing, r.Name+": "+why)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "requires " + strings.Join(missing, "; ")
	if Strict() {
		t.Fatalf("%s (CI=true: a missing requirement is a failure)", msg)
	}
	t.Skip(msg)
}

// Root needs euid 0.
var Root = Requirement{"root", func() string {
	if os.Geteuid() != 0 {
		return "running as uid " + strconv.Itoa(os.Geteuid())
	}
	return ""
}}

// NonRoot needs an unprivileged euid (for rootless tests run as an ordinary user).
var NonRoot = Requirement{"non-root", func() string {
	if os.Geteuid() == 0 {
		return "running as root"
	}
	return ""
}}

var nsOnce = sync.OnceValue(func() string {
	out, err := exec.Command("unshare", "--pid", "--mount", "--uts", "--net", "--ipc", "--fork", "true").CombinedOutput()
	if err != nil {
		return "unshare --pid --mount --uts --net --ipc failed: " + strings.TrimSpace(string(out)) + " " + err.Error()
	}
	return ""
})

// Namespaces needs the right to create pid, mount, uts, net and ipc namespaces.
var Namespaces = Requirement{"namespaces", nsOnce}

// Systemd needs systemd as PID 1 with the system bus reachable.
var Systemd = Requirement{"systemd", func() string {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "PID 1 is not systemd (no /run/systemd/system)"
	}
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
		return "no system bus at /run/dbus/system_bus_socket"
	}
	return ""
}}

// CgroupV2 needs a unified cgroup hierarchy at /sys/fs/cgroup whose root offers
// the named controllers (memory, cpu, pids, ...).
func CgroupV2(controllers ...string) Requirement {
	return Requirement{"cgroup v2 " + strings.Join(controllers, ","), func() string {
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return "no cgroup v2 hierarchy at /sys/fs/cgroup"
		}
		have := strings.Fields(string(b))
		for _, c := range controllers {
			if !slices.Contains(have, c) {
				return "controller " + c + " not in /sys/fs/cgroup/cgroup.controllers (" + strings.TrimSpace(string(b)) + ")"
			}
		}
		return ""
	}}
}

// Binary needs the thinbox binary under test, named by THINBOX_BIN.
var Binary = Requirement{"thinbox binary", func() string {
	p := os.Getenv("THINBOX_BIN")
	if p == "" {
		return "THINBOX_BIN is not set (make test sets it)"
	}
	if _, err := os.Stat(p); err != nil {
		return err.Error()
	}
	return ""
}}

// Image needs the busybox test image tarball, named by THINBOX_TEST_IMAGE.
var Image = Requirement{"busybox test image", func() string {
	p := os.Getenv("THINBOX_TEST_IMAGE")
	if p == "" {
		return "THINBOX_TEST_IMAGE is not set (make test builds it with integration/busybox-image.sh)"
	}
	if _, err := os.Stat(p); err != nil {
		return err.Error()
	}
	return ""
}}

// Command needs an executable on PATH.
func Command(name string) Requirement {
	return Requirement{name, func() string {
		if _, err := exec.LookPath(name); err != nil {
			return name + " not found on PATH"
		}
		return ""
	}}
}

// BinaryPath returns THINBOX_BIN as an absolute path; call Require(t, Binary) first.
func BinaryPath() string {
	p, _ := filepath.Abs(os.Getenv("THINBOX_BIN"))
	return p
}

// ImagePath returns THINBOX_TEST_IMAGE as an absolute path; call Require(t, Image) first.
func ImagePath() string {
	p, _ := filepath.Abs(os.Getenv("THINBOX_TEST_IMAGE"))
	return p
}
