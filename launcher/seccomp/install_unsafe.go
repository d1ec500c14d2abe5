//go:build linux

package seccomp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompSetFilter is seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog).
func seccompSetFilter(flags uintptr, prog Program) (uintptr, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}
