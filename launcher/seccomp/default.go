package seccomp

import "golang.org/x/sys/unix"

// denied is what Docker's default profile (moby profiles/seccomp/default.json) refuses,
// by the capabilities that make Docker allow it again: a container holding any of
// unlockedBy may make these calls, as far as seccomp is concerned (the kernel still
// checks the capability itself). nil means never.
var denied = []struct {
	unlockedBy []string
	names      []string
}{
	// Kernel keyrings are not namespaced; a container could read or fill the host's.
	{nil, []string{"add_key", "keyctl", "request_key"}},
	// Replacing the running kernel, swap, userfaultfd (a tool for kernel exploits),
	// and calls the kernel removed long ago that nothing in a container needs.
	{nil, []string{"kexec_load", "kexec_file_load", "swapon", "swapoff", "userfaultfd",
		"create_module", "get_kernel_syms", "query_module", "nfsservctl", "uselib", "ustat",
		"sysfs", "_sysctl", "vm86", "vm86old", "move_pages", "migrate_pages"}},
	// Mounts and namespaces: the container's own tree stays as the launcher built it.
	{[]string{"CAP_SYS_ADMIN"}, []string{"mount", "umount", "umount2", "unshare", "setns", "pivot_root",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr",
		"fanotify_init", "lookup_dcookie", "quotactl", "quotactl_fd", "sethostname", "setdomainname"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_BPF"}, []string{"bpf"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_PERFMON"}, []string{"perf_event_open"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_SYSLOG"}, []string{"syslog"}},
	{[]string{"CAP_SYS_BOOT"}, []string{"reboot"}},
	{[]string{"CAP_SYS_MODULE"}, []string{"init_module", "finit_module", "delete_module"}},
	{[]string{"CAP_SYS_PACCT"}, []string{"acct"}},
	{[]string{"CAP_SYS_TIME"}, []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{[]string{"CAP_SYS_RAWIO"}, []string{"iopl", "ioperm"}},
	{[]string{"CAP_SYS_TTY_CONFIG"}, []string{"vhangup"}},
	// The "shocker" escape: open any host file by its handle.
	{[]string{"CAP_DAC_READ_SEARCH"}, []string{"open_by_handle_at"}},
	// ptrace itself is allowed, as Docker does on kernels ≥ 4.8 where seccomp can no
	// longer be bypassed with it; these compare or steal other processes' resources.
	{[]string{"CAP_SYS_PTRACE"}, []string{"kcmp", "pidfd_getfd", "process_madvise"}},
	{[]string{"CAP_SYS_NICE"}, []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
	{[]string{"CAP_SYS_CHROOT"}, []string{"chroot"}},
}

// Personalities (include/uapi/linux/personality.h).
const (
	perLinux32 = 0x0008
	uname26    = 0x0020000
)

// nsFlags are the clone flags that make namespaces.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// Default is thinbox's default profile for a container that holds the capabilities
// hasCap reports (names like "CAP_SYS_ADMIN"): everything is allowed but what Docker's
// default profile denies, which fails with EPERM — except clone3, which fails with
// ENOSYS so that libc falls back to clone, whose flags a filter can see.
func Default(hasCap func(string) bool) *Profile {
	p := &Profile{DefaultAction: ActAllow}
	eperm := Errno(unix.EPERM)
	for _, d := range denied {
		if anyCap(hasCap, d.unlockedBy) {
			continue
		}
		p.Rules = append(p.Rules, Rule{Names: d.names, Action: eperm})
	}
	if !hasCap("CAP_SYS_ADMIN") {
		p.Rules = append(p.Rules,
			// clone without a namespace flag, then every other clone. Its flags are the
			// first argument on x86 and arm (s390 differs; not a thinbox architecture).
			Rule{Names: []string{"clone"}, Action: ActAllow, Args: []Arg{{Index: 0, Op: OpMaskedEqual, Value: nsFlags, ValueTwo: 0}}},
			Rule{Names: []string{"clone"}, Action: eperm},
			// clone3 passes its flags in memory, out of a filter's sight.
			Rule{Names: []string{"clone3"}, Action: Errno(unix.ENOSYS)},
		)
	}
	p.Rules = append(p.Rules,
		// Only the personalities Docker allows: Linux, 32-bit Linux, UNAME26, and the
		// query. Comparisons of one argument match when any does.
		Rule{Names: []string{"personality"}, Action: ActAllow, Args: []Arg{
			{Index: 0, Op: OpEqual, Value: 0},
			{Index: 0, Op: OpEqual, Value: perLinux32},
			{Index: 0, Op: OpEqual, Value: uname26},
			{Index: 0, Op: OpEqual, Value: uname26 | perLinux32},
			{Index: 0, Op: OpEqual, Value: 0xffffffff},
		}},
		Rule{Names: []string{"personality"}, Action: eperm},
		// vsock reaches the hypervisor's host, past the container's network namespace.
		Rule{Names: []string{"socket"}, Action: eperm, Args: []Arg{{Index: 0, Op: OpEqual, Value: unix.AF_VSOCK}}},
	)
	return p
}

func anyCap(hasCap func(string) bool, caps []string) bool {
	for _, c := range caps {
		if hasCap(c) {
			return true
		}
	}
	return false
}
