package seccomp

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// vm runs a compiled filter in x/net/bpf's interpreter, so the same tests check the
// amd64 and the arm64 layout on whatever machine runs them.
type vm struct {
	t  *testing.T
	vm *bpf.VM
}

func newVM(t *testing.T, f *Filter) *vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(f.Program))
	for i, s := range f.Program {
		raw[i] = bpf.RawInstruction{Op: s.Code, Jt: s.Jt, Jf: s.Jf, K: s.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	m, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("program rejected: %v", err)
	}
	return &vm{t, m}
}

// call builds struct seccomp_data. The interpreter loads words big-endian, the
// kernel native-endian; go-seccomp-bpf addresses an argument's low word by the host's
// byte order, so the words are laid out for this host and each encoded big-endian.
func (v *vm) call(a *arch.Info, name string, args ...uint64) Action {
	v.t.Helper()
	num, ok := a.SyscallNames[name]
	if !ok {
		v.t.Fatalf("%s has no syscall %s", a.Name, name)
	}
	return v.callNr(uint32(a.ID), uint32(num|a.SeccompMask), args...)
}

func (v *vm) callNr(auditArch, nr uint32, args ...uint64) Action {
	v.t.Helper()
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], auditArch)
	lo, hi := 0, 4
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		lo, hi = 4, 0
	}
	for i, x := range args {
		binary.BigEndian.PutUint32(data[16+8*i+lo:], uint32(x))
		binary.BigEndian.PutUint32(data[16+8*i+hi:], uint32(x>>32))
	}
	r, err := v.vm.Run(data)
	if err != nil {
		v.t.Fatal(err)
	}
	return Action(uint32(r))
}

var (
	eperm  = Errno(unix.EPERM)
	enosys = Errno(unix.ENOSYS)
)

func noCaps(string) bool { return false }

// decide is the profile's meaning, written plainly: the first rule naming the syscall
// whose comparisons hold decides; x32 gets ENOSYS; an architecture outside the filter
// is killed. The compiled program must agree with it everywhere.
func decide(p *Profile, host []*arch.Info, auditArch, nr uint32, args [6]uint64) Action {
	var a *arch.Info
	for _, h := range host {
		if uint32(h.ID) == auditArch && (p.Arches == nil || slices.Contains(p.Arches, h)) {
			a = h
			break
		}
	}
	if a == nil {
		return ActKillProcess
	}
	if a == arch.X86_64 && nr >= x32Bit {
		return enosys
	}
	name, ok := a.SyscallNumbers[int(nr)]
	if !ok {
		return p.DefaultAction
	}
	for _, r := range p.Rules {
		if !slices.Contains(r.Names, name) {
			continue
		}
		if argsMatch(r.Args, args) {
			return r.Action
		}
	}
	return p.DefaultAction
}

func argsMatch(cmp []Arg, args [6]uint64) bool {
	if len(cmp) == 0 {
		return true
	}
	byIndex := map[uint][]Arg{}
	for _, c := range cmp {
		byIndex[c.Index] = append(byIndex[c.Index], c)
	}
	or := false
	for _, cs := range byIndex {
		or = or || len(cs) > 1
	}
	for _, c := range cmp {
		v := args[c.Index]
		var m bool
		switch c.Op {
		case OpNotEqual:
			m = v != c.Value
		case OpLess:
			m = v < c.Value
		case OpLessOrEqual:
			m = v <= c.Value
		case OpEqual:
			m = v == c.Value
		case OpGreaterOrEqual:
			m = v >= c.Value
		case OpGreater:
			m = v > c.Value
		case OpMaskedEqual:
			m = v&c.Value == c.ValueTwo
		}
		if or && m {
			return true
		}
		if !or && !m {
			return false
		}
	}
	return !or
}

// agree runs every syscall number of every architecture, with argument values taken
// from the profile's own comparisons (and their neighbours), through both.
func agree(t *testing.T, p *Profile, host []*arch.Info, f *Filter) {
	t.Helper()
	v := newVM(t, f)
	vals := []uint64{0, 1, 0xffffffff, 1 << 32, ^uint64(0)}
	for _, r := range p.Rules {
		for _, c := range r.Args {
			vals = append(vals, c.Value, c.Value+1, c.Value-1, c.ValueTwo, c.Value|c.ValueTwo, c.Value&^1)
		}
	}
	for _, a := range append(host, arch.X32) {
		id := uint32(a.ID)
		for nr := range a.SyscallNumbers {
			n := uint32(nr) | uint32(a.SeccompMask)
			for i, x := range vals {
				args := [6]uint64{x, vals[(i+1)%len(vals)], x, vals[(i+2)%len(vals)], x, x}
				want := decide(p, host, id, n, args)
				if got := v.callNr(id, n, args[:]...); got != want {
					t.Fatalf("%s %s(%#x...): filter says %s, the profile %s", a.Name, a.SyscallNumbers[nr], args[0], got, want)
				}
			}
		}
	}
}

func TestDefaultProfileEveryArch(t *testing.T) {
	for _, host := range [][]*arch.Info{{arch.X86_64, arch.I386}, {arch.AARCH64, arch.ARM}} {
		f, err := Default(noCaps).compileFor(host)
		if err != nil {
			t.Fatal(err)
		}
		v := newVM(t, f)
		for _, a := range host {
			for _, name := range []string{"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "kexec_load",
				"init_module", "finit_module", "delete_module", "mount", "umount2", "unshare", "setns", "pivot_root",
				"userfaultfd", "swapon", "swapoff", "reboot", "syslog", "acct", "settimeofday", "clock_settime",
				"open_by_handle_at", "lookup_dcookie", "quotactl", "vhangup", "fsopen", "open_tree", "move_mount"} {
				if got := v.call(a, name); got != eperm {
					t.Errorf("%s %s: %s, want errno(EPERM)", a.Name, name, got)
				}
			}
			for _, name := range []string{"read", "write", "getpid", "execve", "ptrace", "wait4", "capset", "setuid", "io_uring_setup", "fchmodat2"} {
				if _, ok := a.SyscallNames[name]; !ok {
					continue
				}
				if got := v.call(a, name); got != ActAllow {
					t.Errorf("%s %s: %s, want allow", a.Name, name, got)
				}
			}
			if got := v.call(a, "clone3"); got != enosys {
				t.Errorf("%s clone3: %s, want ENOSYS", a.Name, got)
			}
			if got := v.call(a, "clone", uint64(unix.SIGCHLD)); got != ActAllow {
				t.Errorf("%s fork-like clone: %s", a.Name, got)
			}
			threads := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM)
			if got := v.call(a, "clone", threads); got != ActAllow {
				t.Errorf("%s thread clone: %s", a.Name, got)
			}
			for _, fl := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWNS | uint64(unix.SIGCHLD), unix.CLONE_NEWCGROUP, unix.CLONE_NEWNET | unix.CLONE_NEWPID} {
				if got := v.call(a, "clone", fl); got != eperm {
					t.Errorf("%s clone(%#x): %s, want EPERM", a.Name, fl, got)
				}
			}
			for _, per := range []uint64{0, 8, 0x20000, 0x20008, 0xffffffff} {
				if got := v.call(a, "personality", per); got != ActAllow {
					t.Errorf("%s personality(%#x): %s", a.Name, per, got)
				}
			}
			for _, per := range []uint64{0x0400000 /* READ_IMPLIES_EXEC */, 0x0040000 /* ADDR_NO_RANDOMIZE */, 6} {
				if got := v.call(a, "personality", per); got != eperm {
					t.Errorf("%s personality(%#x): %s, want EPERM", a.Name, per, got)
				}
			}
			if got := v.call(a, "socket", unix.AF_VSOCK); got != eperm {
				t.Errorf("%s socket(AF_VSOCK): %s", a.Name, got)
			}
			if got := v.call(a, "socket", unix.AF_INET); got != ActAllow {
				t.Errorf("%s socket(AF_INET): %s", a.Name, got)
			}
		}
		if host[0] == arch.X86_64 {
			// x32 numbers carry bit 30 under the x86_64 audit arch.
			if got := v.callNr(uint32(arch.X86_64.ID), x32Bit|250); got != enosys {
				t.Errorf("x32 keyctl: %s, want ENOSYS", got)
			}
			if got := v.call(arch.I386, "iopl"); got != eperm {
				t.Errorf("i386 iopl: %s", got)
			}
		}
		// An architecture the filter has no section for (i386 on an arm64 host).
		other := arch.I386
		if host[0] == arch.X86_64 {
			other = arch.ARM
		}
		if got := v.callNr(uint32(other.ID), 1); got != ActKillProcess {
			t.Errorf("foreign arch: %s, want kill_process", got)
		}
	}
}

func TestCompiledAgreesWithProfile(t *testing.T) {
	for _, host := range [][]*arch.Info{{arch.X86_64, arch.I386}, {arch.AARCH64, arch.ARM}} {
		for _, caps := range []func(string) bool{noCaps, func(string) bool { return true }} {
			p := Default(caps)
			f, err := p.compileFor(host)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, p, host, f)
		}
	}
}

func TestDefaultProfileFollowsCaps(t *testing.T) {
	has := map[string]bool{"CAP_SYS_ADMIN": true, "CAP_SYS_TIME": true}
	f, err := Default(func(c string) bool { return has[c] }).compileFor([]*arch.Info{arch.X86_64})
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, f)
	for _, name := range []string{"mount", "unshare", "setns", "bpf", "perf_event_open", "syslog", "clone3", "settimeofday"} {
		if got := v.call(arch.X86_64, name); got != ActAllow {
			t.Errorf("with SYS_ADMIN and SYS_TIME, %s: %s", name, got)
		}
	}
	if got := v.call(arch.X86_64, "clone", unix.CLONE_NEWUSER); got != ActAllow {
		t.Errorf("with SYS_ADMIN, clone(CLONE_NEWUSER): %s", got)
	}
	for _, name := range []string{"keyctl", "reboot", "init_module", "open_by_handle_at"} {
		if got := v.call(arch.X86_64, name); got != eperm {
			t.Errorf("with SYS_ADMIN, %s: %s, want EPERM", name, got)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	// An allow list in the shape of Docker's default profile.
	prof := `{
	  "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
	  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
	              {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
	              {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]}],
	  "syscalls": [
	    {"names": ["read", "write", "exit_group", "arch_prctl", "some_future_call"], "action": "SCMP_ACT_ALLOW"},
	    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
	    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
	     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
	     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
	    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
	    {"name": "getpid", "action": "SCMP_ACT_LOG", "comment": "legacy single name"}
	  ]
	}`
	p, err := Parse([]byte(prof), Env{HasCap: noCaps, GOARCH: "amd64", Kernel: [2]int{6, 1}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.compileFor([]*arch.Info{arch.X86_64, arch.I386})
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, f)
	a := arch.X86_64
	for name, want := range map[string]Action{"read": ActAllow, "arch_prctl": ActAllow, "ptrace": ActAllow,
		"mount": eperm, "clone3": enosys, "getpid": ActLog, "keyctl": eperm, "openat": eperm} {
		if got := v.call(a, name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if got := v.call(a, "clone", uint64(unix.SIGCHLD)); got != ActAllow {
		t.Errorf("clone: %s", got)
	}
	if got := v.call(a, "clone", unix.CLONE_NEWNS); got != eperm {
		t.Errorf("clone(NEWNS): %s", got)
	}
	if got := v.call(a, "personality", 8); got != ActAllow {
		t.Errorf("personality(8): %s", got)
	}
	if got := v.call(arch.I386, "read"); got != ActAllow {
		t.Errorf("i386 read: %s", got)
	}

	// Old kernel, SYS_ADMIN: ptrace drops out, mount and clone3 come in.
	p, err = Parse([]byte(prof), Env{HasCap: func(c string) bool { return c == "CAP_SYS_ADMIN" }, GOARCH: "amd64", Kernel: [2]int{4, 4}})
	if err != nil {
		t.Fatal(err)
	}
	f, _ = p.compileFor([]*arch.Info{arch.X86_64})
	v = newVM(t, f)
	for name, want := range map[string]Action{"ptrace": eperm, "mount": ActAllow, "clone3": eperm} {
		if got := v.call(a, name); got != want {
			t.Errorf("4.4 + SYS_ADMIN: %s: %s, want %s", name, got, want)
		}
	}
}

func TestMaskedEqual(t *testing.T) {
	prof := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
	  {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 240, "valueTwo": 80, "op": "SCMP_CMP_MASKED_EQ"}]}]}`
	p, err := Parse([]byte(prof), Env{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.compileFor([]*arch.Info{arch.AARCH64})
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, f)
	for arg, want := range map[uint64]Action{0x50: eperm, 0x5f: eperm, 0x150: eperm, 0x70: ActAllow, 0x40: ActAllow, 0x10: ActAllow, 0: ActAllow} {
		if got := v.call(arch.AARCH64, "ioctl", 0, arg); got != want {
			t.Errorf("ioctl(_, %#x): %s, want %s", arg, got, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ prof, msg string }{
		{`{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}`, "listenerPath"},
		{`{"defaultAction": "SCMP_ACT_NOTIFY"}`, "SCMP_ACT_NOTIFY"},
		{`{"defaultAction": "SCMP_ACT_BOGUS"}`, "SCMP_ACT_BOGUS"},
		{`{}`, "no action"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}`, "WAIT_KILLABLE"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}`, "SCMP_ARCH_VAX"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "bogus": 1}`, "bogus"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["frobnicate"], "action": "SCMP_ACT_ERRNO"}]}`, "frobnicate"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}`, "errnoRet 0"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]}`, "index 6"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_XX"}]}]}`, "SCMP_CMP_XX"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}`, "never matches"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}`, "no syscall names"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "five"}}]}`, "minKernel"},
		{`{"defaultAction": "SCMP_ACT_ALLOW"} {}`, "after the JSON"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}`, "covers none"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": "SCMP_ACT_KILL"}]}`, "conflicting"},
	} {
		p, err := Parse([]byte(tc.prof), Env{})
		if err == nil {
			_, err = p.Compile()
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v, want one naming %q", tc.prof, err, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", tc.prof, err)
		}
	}
}

func TestFilterBinary(t *testing.T) {
	f, err := Default(noCaps).Compile()
	if err != nil {
		t.Fatal(err)
	}
	f.Flags = unix.SECCOMP_FILTER_FLAG_LOG
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Filter
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.Flags != f.Flags || len(back.Program) != len(f.Program) {
		t.Fatalf("round trip: %d instructions flags %d, want %d and %d", len(back.Program), back.Flags, len(f.Program), f.Flags)
	}
	for i := range f.Program {
		if back.Program[i] != f.Program[i] {
			t.Fatalf("instruction %d differs", i)
		}
	}
	t.Logf("default filter: %d instructions, %d bytes", len(f.Program), len(b))
	for _, bad := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 0}, {0, 0, 0, 0, 1}} {
		if err := back.UnmarshalBinary(bad); err == nil {
			t.Errorf("%v decoded", bad)
		}
	}
}

func BenchmarkDefaultCompile(b *testing.B) {
	for b.Loop() {
		if _, err := Default(noCaps).Compile(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLargeAllowList: an allow list of every syscall but a few, per architecture, as
// long as Docker's and longer: jumps beyond BPF's 255 must still land right.
func TestLargeAllowList(t *testing.T) {
	for _, host := range [][]*arch.Info{{arch.X86_64, arch.I386}, {arch.AARCH64, arch.ARM}} {
		var names []string
		seen := map[string]bool{"keyctl": true, "ptrace": true}
		for _, a := range host {
			for _, n := range a.SyscallNumbers {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		p := &Profile{DefaultAction: eperm, Rules: []Rule{
			{Names: []string{"clone"}, Action: ActAllow, Args: []Arg{{Index: 0, Op: OpMaskedEqual, Value: nsFlags}}},
			{Names: names[:len(names)/2], Action: ActAllow},
			{Names: []string{"ptrace"}, Action: ActTrap},
			{Names: names[len(names)/2:], Action: ActLog},
		}}
		f, err := p.compileFor(host)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, p, host, f)
		t.Logf("%s: %d syscalls, %d instructions", host[0].Name, len(names), len(f.Program))
	}
}
