package seccomp

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
const maxInsns = 4096

// Offsets into struct seccomp_data (include/uapi/linux/seccomp.h).
const (
	offNr   = 0
	offArch = 4
)

// x32Bit marks an x32 syscall number on x86_64 (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// Compile assembles the profile into one filter for every architecture this machine
// runs (or those of Arches that it runs).
func (p *Profile) Compile() (*Filter, error) {
	return p.compileFor(hostArches())
}

// compileFor lays the program out as
//
//	A = arch
//	for each architecture: if A != its audit arch, skip its section;
//	    section: A = nr; [x32 → ENOSYS]; the rules, first match returns; default
//	kill the process (an architecture the profile does not cover)
//
// Every section ends in a return, so skipping one lands on the next comparison with
// the arch still in A.
func (p *Profile) compileFor(host []*arch.Info) (*Filter, error) {
	arches := host
	if p.Arches != nil {
		arches = nil
		for _, a := range host {
			if slices.Contains(p.Arches, a) {
				arches = append(arches, a)
			}
		}
		if len(arches) == 0 {
			names := make([]string, len(host))
			for i, a := range host {
				names[i] = a.Name
			}
			return nil, fmt.Errorf("seccomp: the profile covers none of this machine's architectures (%s)", strings.Join(names, ", "))
		}
	}
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: offArch, Size: 4}}
	for _, a := range arches {
		body, err := p.section(a)
		if err != nil {
			return nil, err
		}
		if len(body) <= 255 {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(a.ID), SkipTrue: uint8(len(body))})
		} else {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(a.ID), SkipTrue: 1}, bpf.Jump{Skip: uint32(len(body))})
		}
		prog = append(prog, body...)
	}
	prog = append(prog, bpf.RetConstant{Val: uint32(ActKillProcess)})
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: the profile needs %d BPF instructions, more than the kernel's %d", len(prog), maxInsns)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	f := &Filter{Program: make(Program, len(raw)), Flags: p.Flags}
	for i, r := range raw {
		f.Program[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return f, nil
}

// seen is what the rules so far decided for one syscall number of one architecture.
type seen struct {
	unconditional bool
	action        Action
}

// section is one architecture's part of the program, built with go-seccomp-bpf's
// assembler where it can be trusted. Rules with argument comparisons come first, in the profile's order, each
// syscall in a block of its own followed by a reload of the syscall number (the
// comparisons load arguments into the accumulator, and go-seccomp-bpf does not load
// the number back for what follows). The unconditional rules then become one binary
// search over syscall numbers: an allow list the size of Docker's is decided in nine
// comparisons instead of hundreds, which also makes the kernel's per-syscall result
// cache, computed when the filter is installed, several times cheaper to build.
//
// Reordering keeps the first-match meaning: for any one syscall, its conditional rules
// still come before its unconditional one, because a rule after an unconditional one
// for the same syscall is redundant (same action, dropped) or a conflict (an error).
func (p *Profile) section(a *arch.Info) ([]bpf.Instruction, error) {
	body := []bpf.Instruction{loadNr}
	if a == arch.X86_64 {
		// x32 syscalls share the x86_64 audit arch and differ by one bit of the number;
		// without this they would slip past every x86_64 rule.
		body = append(body,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: uint32(Errno(unix.ENOSYS))})
	}
	decided := map[uint32]seen{}
	var table []decision
	for _, r := range p.Rules {
		conds, always, err := conditions(r.Args)
		if err != nil {
			return nil, err
		}
		for _, name := range r.Names {
			num, ok := a.SyscallNames[name]
			if !ok {
				continue // a syscall of other architectures; Parse rejected unknown names
			}
			nr := uint32(num | a.SeccompMask)
			prev, dup := decided[nr]
			switch {
			case dup && prev.unconditional && prev.action == r.Action:
				continue // redundant
			case dup && prev.unconditional:
				return nil, fmt.Errorf("seccomp: conflicting rules for %s: %s, then %s", name, prev.action, r.Action)
			}
			decided[nr] = seen{unconditional: always, action: r.Action}
			if always {
				table = append(table, decision{nr, r.Action})
				continue
			}
			block := libseccomp.NewProgram()
			match, next := block.NewLabel(), block.NewLabel()
			libseccomp.SyscallWithConditions{Num: nr, Conditions: conds}.Assemble(&block, false, match, next)
			block.SetLabel(match)
			block.Ret(libseccomp.Action(r.Action))
			block.SetLabel(next)
			insns, err := block.Assemble()
			if err != nil {
				return nil, fmt.Errorf("seccomp: assemble %s: %w", a.Name, err)
			}
			body = append(append(body, insns...), loadNr)
		}
	}
	return append(body, search(table, p.DefaultAction)...), nil
}

// decision is an unconditional rule for one syscall number.
type decision struct {
	nr     uint32
	action Action
}

// search decides the table by binary search on the syscall number in the accumulator,
// returning def for numbers it does not hold. It is laid out by hand rather than with
// go-seccomp-bpf's labels: that assembler does not relocate the long jumps it inserts
// when it later inserts more instructions before their target, and a search tree over
// hundreds of syscalls needs such jumps. Here every offset is a subtree's exact size,
// and every match returns in place.
func search(table []decision, def Action) []bpf.Instruction {
	sort.Slice(table, func(i, j int) bool { return table[i].nr < table[j].nr })
	return searchTree(table, def)
}

// leafSize is how many syscalls a leaf of the search compares one after another.
const leafSize = 8

func searchTree(t []decision, def Action) []bpf.Instruction {
	if len(t) <= leafSize {
		return leaf(t, def)
	}
	mid := len(t) / 2
	left, right := searchTree(t[:mid], def), searchTree(t[mid:], def)
	var out []bpf.Instruction
	if len(left) <= 255 {
		out = append(out, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: t[mid].nr, SkipTrue: uint8(len(left))})
	} else {
		out = append(out, bpf.JumpIf{Cond: bpf.JumpLessThan, Val: t[mid].nr, SkipTrue: 1}, bpf.Jump{Skip: uint32(len(left))})
	}
	return append(append(out, left...), right...)
}

// leaf compares each number in turn, then returns: one return per distinct action,
// and the default last.
func leaf(t []decision, def Action) []bpf.Instruction {
	var actions []Action
	at := map[Action]int{}
	for _, d := range t {
		if _, ok := at[d.action]; !ok {
			at[d.action] = len(actions)
			actions = append(actions, d.action)
		}
	}
	out := make([]bpf.Instruction, 0, len(t)+len(actions)+1)
	for i, d := range t {
		j := bpf.JumpIf{Cond: bpf.JumpEqual, Val: d.nr, SkipTrue: uint8(len(t) - i - 1 + at[d.action])}
		if i == len(t)-1 {
			j.SkipFalse = uint8(len(actions))
		}
		out = append(out, j)
	}
	for _, a := range actions {
		out = append(out, ret(a))
	}
	return append(out, ret(def))
}

// ret returns an action. A bare ERRNO would return 0, faking success without running
// the syscall; like go-seccomp-bpf, treat it as EPERM.
func ret(a Action) bpf.RetConstant {
	if a == Action(unix.SECCOMP_RET_ERRNO) {
		a = Errno(unix.EPERM)
	}
	return bpf.RetConstant{Val: uint32(a)}
}

var loadNr = bpf.LoadAbsolute{Off: offNr, Size: 4}

// conditions turns a rule's comparisons into go-seccomp-bpf condition sets (one set
// must match entirely; any set will do). always reports a rule that matches whatever
// the arguments.
func conditions(args []Arg) (sets []libseccomp.ArgumentConditions, always bool, err error) {
	if len(args) == 0 {
		return nil, true, nil
	}
	count := map[uint]int{}
	for _, a := range args {
		count[a.Index]++
	}
	or := false
	for _, n := range count {
		if n > 1 {
			or = true
		}
	}
	var and libseccomp.ArgumentConditions
	for _, a := range args {
		c, err := condition(a)
		if err != nil {
			return nil, false, err
		}
		if or {
			if len(c) == 0 {
				return nil, true, nil
			}
			sets = append(sets, c)
			continue
		}
		and = append(and, c...)
	}
	if or {
		return sets, false, limit(len(args), sets...)
	}
	if len(and) == 0 {
		return nil, true, nil
	}
	return []libseccomp.ArgumentConditions{and}, false, limit(len(args), and)
}

// maxConditions keeps one syscall's block of comparisons (about three instructions
// each) within a BPF conditional jump's reach of 255 instructions.
const maxConditions = 48

func limit(args int, sets ...libseccomp.ArgumentConditions) error {
	n := 0
	for _, s := range sets {
		n += len(s)
	}
	if n > maxConditions {
		return fmt.Errorf("%w: %d argument comparisons (%d after expanding masks) for one syscall; at most %d", ErrUnsupported, args, n, maxConditions)
	}
	return nil
}

// condition expresses one comparison; an empty result always matches. go-seccomp-bpf
// has no masked equality, so arg&mask == want becomes "the bits of mask not in want
// are clear" and "each bit of want is set".
func condition(a Arg) (libseccomp.ArgumentConditions, error) {
	if a.Index > 5 {
		return nil, fmt.Errorf("seccomp: argument index %d: a syscall has 6 arguments (0-5)", a.Index)
	}
	c := libseccomp.Condition{Argument: uint32(a.Index), Value: a.Value}
	switch a.Op {
	case OpNotEqual:
		c.Operation = libseccomp.NotEqual
	case OpLess:
		c.Operation = libseccomp.LessThan
	case OpLessOrEqual:
		c.Operation = libseccomp.LessOrEqual
	case OpEqual:
		c.Operation = libseccomp.Equal
	case OpGreaterOrEqual:
		c.Operation = libseccomp.GreaterOrEqual
	case OpGreater:
		c.Operation = libseccomp.GreaterThan
	case OpMaskedEqual:
		mask, want := a.Value, a.ValueTwo
		if want&^mask != 0 {
			return nil, fmt.Errorf("%w: SCMP_CMP_MASKED_EQ with valueTwo %#x outside the mask %#x never matches", ErrUnsupported, want, mask)
		}
		var out libseccomp.ArgumentConditions
		if clear := mask &^ want; clear != 0 {
			out = append(out, libseccomp.Condition{Argument: uint32(a.Index), Operation: libseccomp.BitsNotSet, Value: clear})
		}
		for w := want; w != 0; w &= w - 1 {
			bit := uint64(1) << bits.TrailingZeros64(w)
			out = append(out, libseccomp.Condition{Argument: uint32(a.Index), Operation: libseccomp.BitsSet, Value: bit})
		}
		return out, nil
	default:
		return nil, fmt.Errorf("seccomp: unknown comparison %d", a.Op)
	}
	return libseccomp.ArgumentConditions{c}, nil
}
