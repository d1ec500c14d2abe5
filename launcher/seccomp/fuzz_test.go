package seccomp

import (
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// FuzzParse feeds arbitrary profiles to the parser and the compiler: neither may panic,
// and whatever compiles must be a program the kernel would accept (every jump inside
// it, ending in a return, at most 4096 instructions) for both thinbox architectures.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"defaultAction": "SCMP_ACT_ALLOW"}`,
		`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
		  "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
		               {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
		  "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}, {"index": 1, "value": 3, "op": "SCMP_CMP_GT"}]}]}`,
		`{"defaultAction": "SCMP_ACT_KILL_PROCESS", "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
		  "syscalls": [{"name": "exit", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}, "excludes": {"arches": ["s390x"]}}]}`,
		`{"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 4095, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25,
		  "args": [{"index": 1, "value": 18446744073709551615, "valueTwo": 21505, "op": "SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}`,
		`[]`, `{`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, Env{HasCap: func(c string) bool { return len(c)%2 == 0 }, GOARCH: "arm64", Kernel: [2]int{5, 10}})
		if err != nil {
			return
		}
		for _, host := range [][]*arch.Info{{arch.X86_64, arch.I386}, {arch.AARCH64, arch.ARM}} {
			f, err := p.compileFor(host)
			if err != nil {
				continue
			}
			if len(f.Program) > maxInsns {
				t.Fatalf("%d instructions", len(f.Program))
			}
			agree(t, p, host, f) // checks jumps, the final return, and the meaning
		}
	})
}
