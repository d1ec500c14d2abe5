package seccomp

import (
	"fmt"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// Action is what the kernel does when a rule matches: a SECCOMP_RET_* value, with the
// errno (ERRNO) or the tracer's data (TRACE) in the low 16 bits.
type Action uint32

// The actions, as defined by the kernel (include/uapi/linux/seccomp.h).
const (
	ActKillProcess = Action(unix.SECCOMP_RET_KILL_PROCESS)
	ActKillThread  = Action(unix.SECCOMP_RET_KILL_THREAD)
	ActTrap        = Action(unix.SECCOMP_RET_TRAP)
	ActLog         = Action(unix.SECCOMP_RET_LOG)
	ActAllow       = Action(unix.SECCOMP_RET_ALLOW)
)

// maxErrno is the largest errno a syscall can return (the kernel's MAX_ERRNO).
const maxErrno = 4095

// Errno is the action "fail with errno e".
func Errno(e unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA)
}

// Trace is the action "notify a ptrace tracer with data" (ENOSYS when there is none).
func Trace(data uint16) Action { return Action(unix.SECCOMP_RET_TRACE | uint32(data)) }

func (a Action) String() string {
	data := uint32(a) & unix.SECCOMP_RET_DATA
	switch uint32(a) & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill_process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill_thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("errno(%s)", unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("trace(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}

// Op compares one syscall argument with a rule's value.
type Op int

// The comparisons of the OCI profile format (libseccomp's SCMP_CMP_*).
const (
	OpNotEqual Op = iota + 1
	OpLess
	OpLessOrEqual
	OpEqual
	OpGreaterOrEqual
	OpGreater
	// OpMaskedEqual matches when arg & Value == ValueTwo.
	OpMaskedEqual
)

// Arg is one argument comparison of a rule.
type Arg struct {
	Index    uint // 0..5
	Op       Op
	Value    uint64
	ValueTwo uint64 // OpMaskedEqual only
}

// Rule gives the syscalls it names an action, optionally only when their arguments
// compare as Args say. Arguments at distinct indexes must all match; several
// comparisons of the same index match when any does (runc's reading of the OCI spec).
type Rule struct {
	Names  []string
	Action Action
	Args   []Arg
}

// Profile is a resolved seccomp profile: a Docker profile's includes and excludes have
// already been applied.
type Profile struct {
	// DefaultAction applies to every syscall no rule matches.
	DefaultAction Action
	// Rules are tried in order; the first whose syscall and arguments match decides.
	Rules []Rule
	// Arches restricts the filter to these architectures (a syscall of any other is
	// killed); nil means every architecture this machine runs.
	Arches []*arch.Info
	// Flags are SECCOMP_FILTER_FLAG_* values to load the filter with, beyond TSYNC.
	Flags uint32
}
