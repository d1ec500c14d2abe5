package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Install loads the filter into every thread of the calling process
// (SECCOMP_FILTER_FLAG_TSYNC: a Go program has several, and the filter must hold
// whichever of them runs next), where children and exec'd programs inherit it.
// The kernel requires no_new_privs or CAP_SYS_ADMIN first.
func (f *Filter) Install() error {
	if len(f.Program) == 0 {
		return fmt.Errorf("seccomp: empty program")
	}
	tid, err := seccompSetFilter(unix.SECCOMP_FILTER_FLAG_TSYNC|uintptr(f.Flags), f.Program)
	if err != nil {
		return fmt.Errorf("seccomp: install filter: %w", err)
	}
	if tid != 0 {
		// TSYNC reports the thread it could not synchronise instead of failing.
		return fmt.Errorf("seccomp: install filter: thread %d cannot take it", tid)
	}
	return nil
}
