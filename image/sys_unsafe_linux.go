package image

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimens sets the times of an open fd with nanosecond precision. x/sys/unix has
// only Futimes, which goes through /proc in microseconds; utimensat with a NULL
// path is the fd form.
func futimens(fd int, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// timespec avoids UnixNano, which overflows for dates outside 1678-2262 that a tar
// header can carry.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
