package seccomp

import (
	"runtime"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// hostArches are the architectures whose syscalls this machine's kernel runs: the
// native one first, then the 32-bit one a 64-bit kernel also runs (Docker's archMap
// pairs, minus x32, which the filter answers with ENOSYS).
func hostArches() []*arch.Info {
	switch runtime.GOARCH {
	case "amd64":
		return []*arch.Info{arch.X86_64, arch.I386}
	case "arm64":
		return []*arch.Info{arch.AARCH64, arch.ARM}
	}
	if a, err := arch.GetInfo(""); err == nil {
		return []*arch.Info{a}
	}
	return nil
}

// ociArches maps the OCI/libseccomp architecture names to go-seccomp-bpf's tables.
// x32 maps to nil: it is accepted and answered with ENOSYS (see compile.go).
var ociArches = map[string]*arch.Info{
	"SCMP_ARCH_X86":     arch.I386,
	"SCMP_ARCH_X86_64":  arch.X86_64,
	"SCMP_ARCH_X32":     nil,
	"SCMP_ARCH_ARM":     arch.ARM,
	"SCMP_ARCH_AARCH64": arch.AARCH64,
}

// foreignArches are valid OCI architectures no thinbox build runs on; a profile may
// list them (Docker's does) and they are ignored.
var foreignArches = map[string]bool{
	"SCMP_ARCH_MIPS": true, "SCMP_ARCH_MIPS64": true, "SCMP_ARCH_MIPS64N32": true,
	"SCMP_ARCH_MIPSEL": true, "SCMP_ARCH_MIPSEL64": true, "SCMP_ARCH_MIPSEL64N32": true,
	"SCMP_ARCH_PPC": true, "SCMP_ARCH_PPC64": true, "SCMP_ARCH_PPC64LE": true,
	"SCMP_ARCH_S390": true, "SCMP_ARCH_S390X": true, "SCMP_ARCH_PARISC": true,
	"SCMP_ARCH_PARISC64": true, "SCMP_ARCH_RISCV64": true, "SCMP_ARCH_LOONGARCH64": true,
	"SCMP_ARCH_M68K": true, "SCMP_ARCH_SH": true, "SCMP_ARCH_SHEB": true,
}

// allTables are the syscall tables a name is looked up in to tell a syscall of another
// architecture (skipped there) from a name no kernel has (an error).
var allTables = []*arch.Info{arch.X86_64, arch.I386, arch.X32, arch.AARCH64, arch.ARM}

func knownSyscall(name string) bool {
	for _, a := range allTables {
		if _, ok := a.SyscallNames[name]; ok {
			return true
		}
	}
	return false
}
