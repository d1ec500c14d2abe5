package systemd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// CgroupRoot is where the unified hierarchy is mounted.
const CgroupRoot = "/sys/fs/cgroup"

// Unified reports whether /sys/fs/cgroup is a pure cgroup v2 hierarchy.
func Unified() bool {
	var st unix.Statfs_t
	return unix.Statfs(CgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Verify reads each limit back from the unit's cgroup (a path such as
// /thinbox.slice/thinbox-web.scope) and fails, saying how to fix it, unless the
// kernel carries exactly what was asked: a limit that is not applied is never claimed.
func (l *Limits) Verify(cgroup string) error {
	dir := filepath.Join(CgroupRoot, cgroup)
	for _, r := range l.Active() {
		b, err := os.ReadFile(filepath.Join(dir, r.File))
		got := strings.TrimSpace(string(b))
		if err == nil && got == r.want(l) {
			continue
		}
		what := fmt.Sprintf("--%s: %s of %s", r.Flag, r.File, cgroup)
		if err != nil {
			what += " is missing"
		} else {
			what += fmt.Sprintf(" reads %q, not %q", got, r.want(l))
		}
		return fmt.Errorf("systemd: %w: %s; %s", ErrLimitNotApplied, what, ControllerHint(r.Controller, cgroup))
	}
	return nil
}

// ControllerHint says why a controller may be missing from a cgroup and how to get it.
func ControllerHint(controller, cgroup string) string {
	root, _ := os.ReadFile(filepath.Join(CgroupRoot, "cgroup.controllers"))
	if !hasWord(root, controller) {
		if controller == "memory" && raspberryPi() {
			return fmt.Sprintf("the kernel has the memory controller disabled, as Raspberry Pi OS does by default: add cgroup_enable=memory to the single line of %s and reboot", piCmdline())
		}
		if controller == "memory" && strings.Contains(readString("/proc/cmdline"), "cgroup_disable=memory") {
			return "the kernel command line has cgroup_disable=memory: add cgroup_enable=memory (or remove the former) and reboot"
		}
		return fmt.Sprintf("the %s controller is not enabled in this kernel (it is not in %s/cgroup.controllers)", controller, CgroupRoot)
	}
	if controller == "memory" && !fileExists(filepath.Join(CgroupRoot, cgroup, "memory.swap.max")) {
		return "swap accounting is off: add swapaccount=1 to the kernel command line and reboot, or leave out --memory-swap"
	}
	// Delegation: a user manager only gets the controllers user@.service delegates.
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("the %s controller is not delegated to your user manager: run as root `mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload`, then log in again", controller)
	}
	return fmt.Sprintf("the %s controller is not enabled for %s (see %s/%s/cgroup.controllers)", controller, cgroup, CgroupRoot, filepath.Dir(cgroup))
}

// raspberryPi reports whether the board is a Raspberry Pi (device tree model).
func raspberryPi() bool {
	return strings.Contains(readString("/proc/device-tree/model"), "Raspberry Pi")
}

// piCmdline is the kernel command line file the firmware reads: /boot/firmware on
// Raspberry Pi OS bookworm and Ubuntu, /boot on older releases.
func piCmdline() string {
	if fileExists("/boot/firmware/cmdline.txt") {
		return "/boot/firmware/cmdline.txt"
	}
	return "/boot/cmdline.txt"
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(bytes.TrimRight(b, "\x00\n"))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func hasWord(b []byte, w string) bool {
	for _, f := range strings.Fields(string(b)) {
		if f == w {
			return true
		}
	}
	return false
}

// OOMWatch follows a cgroup's memory.events so an OOM kill is known even though the
// cgroup itself is removed by systemd as soon as it empties. The kernel notifies
// memory.events when it kills, long before the victim has exited.
type OOMWatch struct {
	f    *os.File
	file string
	base uint64
	mu   sync.Mutex
	max  uint64
	done chan struct{}
}

// WatchOOM starts watching the cgroup (e.g. /thinbox.slice/thinbox-web.scope).
func WatchOOM(cgroup string) (*OOMWatch, error) {
	file := filepath.Join(CgroupRoot, cgroup, "memory.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Non-blocking, so reads go through Go's poller and Close wakes the reader.
	w := &OOMWatch{f: os.NewFile(uintptr(fd), "inotify"), file: file, done: make(chan struct{})}
	w.base = oomKills(file)
	w.max = w.base
	go w.loop()
	return w, nil
}

func (w *OOMWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		w.sample()
	}
}

func (w *OOMWatch) sample() {
	k := oomKills(w.file)
	w.mu.Lock()
	if k > w.max {
		w.max = k
	}
	w.mu.Unlock()
}

// Killed ends the watch and reports whether the kernel OOM-killed a process in the
// cgroup since WatchOOM.
func (w *OOMWatch) Killed() bool {
	w.sample()
	w.f.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max > w.base
}

func oomKills(file string) uint64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// ReadLimits reads back, for each limit flag in set, what the cgroup holds now.
func ReadLimits(cgroup string, set map[string]string) map[string]string {
	out := map[string]string{}
	for flag := range set {
		r := LookupLimit(flag)
		if r == nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(CgroupRoot, cgroup, r.File)); err == nil {
			out[flag] = strings.TrimSpace(string(b))
		}
	}
	return out
}
