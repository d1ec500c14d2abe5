// Package seccomp turns a seccomp profile — thinbox's default, or a Docker/OCI JSON
// profile — into a classic BPF program and installs it. It never decides which profile a
// container gets: the launcher does.
//
// github.com/elastic/go-seccomp-bpf provides the per-architecture syscall tables and
// assembles the argument comparisons (a 64-bit argument as two 32-bit words). This package
// lays the program out: one section per architecture, because a 64-bit kernel also runs
// 32-bit code (i386 on amd64, AArch32 on arm64) whose syscalls carry other numbers and
// another audit arch — a filter that checked the native numbers only could be walked
// around with `int 0x80`; unknown architectures are killed, x32 gets ENOSYS. Within a
// section, the rules with argument comparisons come first, then a binary search over
// the syscall numbers (compile.go says why it is not left to the library's assembler).
//
// The default profile is a deny list: what Docker's default profile denies, each group
// allowed again only when the container holds the capability Docker ties it to (see
// default.go). Syscalls newer than Docker's list are allowed, so that a new libc does
// not break on EPERM where it expects ENOSYS; that is the trade-off of a deny list,
// chosen for a small filter that is cheap to build and install on every start.
package seccomp
