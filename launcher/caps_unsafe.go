//go:build linux

package launcher

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// capsetAllThreads sets the sets of every thread of the process. Capabilities belong
// to threads; the --init PID 1 lowers its own after it started the payload, and a Go
// program runs its goroutines on several threads.
func capsetAllThreads(eff, perm, inh CapSet) error {
	hdr, data := capData(eff, perm, inh)
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno == syscall.ENOTSUP {
		// Go refuses AllThreadsSyscall in a binary linked with cgo.
		return fmt.Errorf("capset on every thread: %w (thinbox was built with cgo; build it with CGO_ENABLED=0)", errno)
	}
	if errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	return nil
}
