package launcher

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maskedPaths are Docker's and podman's: files and directories of the host's /proc and
// /sys that leak kernel memory (kcore), other users' keys, timers and scheduling of
// host processes (side channels), or firmware and power-meter interfaces (the
// Platypus attack read RAPL energy counters from powercap). Files get /dev/null bound
// over them, directories an empty read-only tmpfs.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// readOnlyPaths are kernel knobs that are not namespaced: writing them would change
// the host (sysctls, IRQ affinity, filesystems' tunables, SysRq).
var readOnlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// maskPaths hides maskedPaths and freezes readOnlyPaths under the container's fresh
// /proc and /sys. They are the kernel's own filesystems, mounted by us a moment ago,
// so no path of the image is involved. A path this kernel lacks is skipped.
func maskPaths(rootfs string) error {
	null := filepath.Join(rootfs, "dev", "null")
	for _, p := range maskedPaths {
		target := filepath.Join(rootfs, p)
		st, err := os.Lstat(target)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return stepErr("mask "+p, err)
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|noSuidDevExec, "")
		} else {
			err = unix.Mount(null, target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return stepErr("mask "+p, err)
		}
	}
	for _, p := range readOnlyPaths {
		target := filepath.Join(rootfs, p)
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return stepErr("make "+p+" read-only", err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|noSuidDevExec, ""); err != nil {
			return stepErr("make "+p+" read-only", err)
		}
	}
	return nil
}
