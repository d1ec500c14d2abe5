package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// MaxProfileSize bounds a profile file; Docker's default profile is about 20 KiB.
const MaxProfileSize = 1 << 20

// Env is what a Docker profile's "includes" and "excludes" are decided against, as
// dockerd decides them before runc sees the profile.
type Env struct {
	// HasCap reports whether the container holds a capability ("CAP_SYS_ADMIN").
	HasCap func(string) bool
	// GOARCH names the machine as Docker's "arches" do (amd64, arm64); "" is this one.
	GOARCH string
	// Kernel is the running kernel's major and minor version; zero means uname's.
	Kernel [2]int
}

// The OCI runtime-spec seccomp object (config.md, "Seccomp") with Docker's additions
// (archMap, includes, excludes, comment, the legacy single "name").
type jsonProfile struct {
	DefaultAction    string        `json:"defaultAction"`
	DefaultErrnoRet  *uint         `json:"defaultErrnoRet"`
	Architectures    []string      `json:"architectures"`
	ArchMap          []jsonArchMap `json:"archMap"`
	Flags            []string      `json:"flags"`
	ListenerPath     string        `json:"listenerPath"`
	ListenerMetadata string        `json:"listenerMetadata"`
	Syscalls         []jsonSyscall `json:"syscalls"`
}

type jsonArchMap struct {
	Arch    string   `json:"architecture"`
	SubArch []string `json:"subArchitectures"`
}

type jsonSyscall struct {
	Name     string      `json:"name"`
	Names    []string    `json:"names"`
	Action   string      `json:"action"`
	ErrnoRet *uint       `json:"errnoRet"`
	Args     []jsonArg   `json:"args"`
	Comment  string      `json:"comment"`
	Includes *jsonFilter `json:"includes"`
	Excludes *jsonFilter `json:"excludes"`
}

type jsonArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

type jsonFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

var ops = map[string]Op{
	"SCMP_CMP_NE": OpNotEqual, "SCMP_CMP_LT": OpLess, "SCMP_CMP_LE": OpLessOrEqual,
	"SCMP_CMP_EQ": OpEqual, "SCMP_CMP_GE": OpGreaterOrEqual, "SCMP_CMP_GT": OpGreater,
	"SCMP_CMP_MASKED_EQ": OpMaskedEqual,
}

// Flags the kernel takes (SECCOMP_FILTER_FLAG_*); TSYNC is always used.
var flags = map[string]uint32{
	"SECCOMP_FILTER_FLAG_TSYNC":      0,
	"SECCOMP_FILTER_FLAG_LOG":        unix.SECCOMP_FILTER_FLAG_LOG,
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW": unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

// Parse reads a profile in the Docker/OCI JSON format. It implements defaultAction,
// defaultErrnoRet, architectures and archMap, flags (TSYNC, LOG, SPEC_ALLOW), and
// syscalls with names, action, errnoRet, args (all comparisons) and Docker's includes
// and excludes (caps, arches, minKernel). It refuses, naming what, a notify listener,
// SCMP_ACT_NOTIFY, unknown fields, actions, comparisons and architectures, and a
// syscall no kernel table knows in a rule that does not allow it (a deny thinbox could
// not enforce).
func Parse(data []byte, env Env) (*Profile, error) {
	if len(data) > MaxProfileSize {
		return nil, fmt.Errorf("seccomp: profile of %d bytes is larger than %d", len(data), MaxProfileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var jp jsonProfile
	if err := dec.Decode(&jp); err != nil {
		return nil, fmt.Errorf("seccomp: profile: %w", err)
	}
	if dec.More() {
		return nil, errors.New("seccomp: profile: data after the JSON object")
	}
	if env.HasCap == nil {
		env.HasCap = func(string) bool { return false }
	}
	if env.GOARCH == "" {
		env.GOARCH = runtime.GOARCH
	}
	if env.Kernel == [2]int{} {
		env.Kernel = kernelVersion()
	}
	if jp.ListenerPath != "" || jp.ListenerMetadata != "" {
		return nil, fmt.Errorf("%w: listenerPath (SCMP_ACT_NOTIFY needs a supervisor thinbox does not run)", ErrUnsupported)
	}
	p := &Profile{}
	var err error
	if p.DefaultAction, err = action(jp.DefaultAction, jp.DefaultErrnoRet); err != nil {
		return nil, fmt.Errorf("seccomp: defaultAction: %w", err)
	}
	for _, f := range jp.Flags {
		v, ok := flags[f]
		if !ok {
			return nil, fmt.Errorf("%w: flag %q", ErrUnsupported, f)
		}
		p.Flags |= v
	}
	if p.Arches, err = arches(&jp); err != nil {
		return nil, err
	}
	for i, sc := range jp.Syscalls {
		r, keep, err := rule(sc, p.DefaultAction, env)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d]: %w", i, err)
		}
		if keep {
			p.Rules = append(p.Rules, r)
		}
	}
	return p, nil
}

// arches is the union of "architectures" and every archMap entry, kept to the ones
// thinbox knows tables for; nil (the machine's own) when the profile lists none.
func arches(jp *jsonProfile) ([]*arch.Info, error) {
	names := append([]string{}, jp.Architectures...)
	for _, m := range jp.ArchMap {
		names = append(names, m.Arch)
		names = append(names, m.SubArch...)
	}
	if len(names) == 0 {
		return nil, nil
	}
	out := []*arch.Info{}
	for _, n := range names {
		a, ok := ociArches[n]
		switch {
		case !ok && !foreignArches[n]:
			return nil, fmt.Errorf("seccomp: unknown architecture %q", n)
		case a != nil:
			out = append(out, a)
		}
	}
	return out, nil
}

// rule resolves one syscalls entry; keep is false when its includes/excludes leave it
// out for this container.
func rule(sc jsonSyscall, def Action, env Env) (r Rule, keep bool, err error) {
	r.Names = sc.Names
	if sc.Name != "" {
		r.Names = append([]string{sc.Name}, r.Names...)
	}
	if len(r.Names) == 0 {
		return r, false, errors.New("no syscall names")
	}
	if r.Action, err = action(sc.Action, sc.ErrnoRet); err != nil {
		return r, false, err
	}
	for _, a := range sc.Args {
		op, ok := ops[a.Op]
		if !ok {
			return r, false, fmt.Errorf("%w: comparison %q", ErrUnsupported, a.Op)
		}
		r.Args = append(r.Args, Arg{Index: a.Index, Op: op, Value: a.Value, ValueTwo: a.ValueTwo})
	}
	// Compile the comparisons once now so a bad one is reported for every container.
	if _, _, err := conditions(r.Args); err != nil {
		return r, false, err
	}
	for _, n := range r.Names {
		if n == "" {
			return r, false, errors.New("empty syscall name")
		}
		// A name no table knows may be a syscall newer than thinbox: leaving it to the
		// default is safe when the rule allows, not when it denies.
		if !knownSyscall(n) && r.Action != ActAllow && r.Action != def {
			return r, false, fmt.Errorf("%w: syscall %q is not in thinbox's tables, so %s cannot be enforced for it", ErrUnsupported, n, r.Action)
		}
	}
	in, err := applies(sc.Includes, env, true)
	if err != nil {
		return r, false, err
	}
	out, err := applies(sc.Excludes, env, false)
	if err != nil {
		return r, false, err
	}
	return r, in && !out, nil
}

// applies evaluates a Docker includes (every condition must hold) or excludes (any
// condition excludes) filter.
func applies(f *jsonFilter, env Env, include bool) (bool, error) {
	if f == nil {
		return include, nil
	}
	var kernelOK bool
	if f.MinKernel != "" {
		min, err := parseKernel(f.MinKernel)
		if err != nil {
			return false, err
		}
		kernelOK = env.Kernel[0] > min[0] || env.Kernel[0] == min[0] && env.Kernel[1] >= min[1]
	}
	if include {
		for _, c := range f.Caps {
			if !env.HasCap(strings.ToUpper(c)) {
				return false, nil
			}
		}
		if len(f.Arches) > 0 && !contains(f.Arches, env.GOARCH) {
			return false, nil
		}
		return f.MinKernel == "" || kernelOK, nil
	}
	for _, c := range f.Caps {
		if env.HasCap(strings.ToUpper(c)) {
			return true, nil
		}
	}
	return contains(f.Arches, env.GOARCH) || f.MinKernel != "" && kernelOK, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// action maps an OCI action name; errnoRet defaults to EPERM as the spec says.
func action(name string, errnoRet *uint) (Action, error) {
	switch name {
	case "SCMP_ACT_ALLOW":
		return ActAllow, nil
	case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD":
		return ActKillThread, nil
	case "SCMP_ACT_KILL_PROCESS":
		return ActKillProcess, nil
	case "SCMP_ACT_TRAP":
		return ActTrap, nil
	case "SCMP_ACT_LOG":
		return ActLog, nil
	case "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE":
		e := uint(unix.EPERM)
		if errnoRet != nil {
			e = *errnoRet
		}
		if e == 0 || e > maxErrno {
			return 0, fmt.Errorf("%w: errnoRet %d (want 1 to %d; 0 would fake success)", ErrUnsupported, e, maxErrno)
		}
		if name == "SCMP_ACT_TRACE" {
			return Trace(uint16(e)), nil
		}
		return Errno(unix.Errno(e)), nil
	case "SCMP_ACT_NOTIFY":
		return 0, fmt.Errorf("%w: SCMP_ACT_NOTIFY needs a supervisor thinbox does not run", ErrUnsupported)
	case "":
		return 0, errors.New("no action")
	}
	return 0, fmt.Errorf("%w: action %q", ErrUnsupported, name)
}

// parseKernel reads "4.8" or "5.10.0" as major and minor.
func parseKernel(s string) ([2]int, error) {
	parts := strings.SplitN(s, ".", 3)
	var v [2]int
	for i := 0; i < 2 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return v, fmt.Errorf("minKernel %q: want MAJOR.MINOR", s)
		}
		v[i] = n
	}
	if len(parts) < 2 {
		return v, fmt.Errorf("minKernel %q: want MAJOR.MINOR", s)
	}
	return v, nil
}

// kernelVersion is the running kernel's major.minor (0.0 if unreadable, which makes
// every minKernel include false: the conservative reading).
func kernelVersion() [2]int {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return [2]int{}
	}
	rel := unix.ByteSliceToString(u.Release[:])
	if i := strings.IndexFunc(rel, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		rel = rel[:i]
	}
	v, _ := parseKernel(rel)
	return v
}
