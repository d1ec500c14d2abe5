package systemd

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Limits are the cgroup v2 resource limits of one container, as systemd applies them:
// to a transient scope over D-Bus, or to a service through its unit file. Zero means
// "not set".
type Limits struct {
	MemoryMax     uint64 // bytes
	MemoryHigh    uint64 // bytes
	MemorySwapMax uint64 // bytes; set means "set", so 0 swap is asked with SwapSet
	SwapSet       bool
	CPUPercent    uint64 // percent of one CPU: --cpu 0.5 is 50
	CPUWeight     uint64 // 1..10000
	AllowedCPUs   string // canonical list, "0-1,3"
	TasksMax      uint64
	IOWeight      uint64 // 1..10000

	// given keeps each value as the user wrote it, to hand the same flags on (a service's
	// ExecStart).
	given map[string]string
}

// Limit is one row of the mapping table: a thinbox flag, the D-Bus property a scope
// gets, the directive a unit file gets, and the cgroup file that must read back the
// value. Every limit thinbox knows is a row here and nowhere else.
type Limit struct {
	Flag       string
	Usage      string
	Property   string // D-Bus property of a transient unit
	Directive  string // unit file directive (systemd.resource-control(5))
	File       string // cgroup v2 file that holds it
	Controller string // cgroup v2 controller it needs
	MinSystemd int    // oldest systemd that knows Property

	parse func(l *Limits, s string) error
	isSet func(l *Limits) bool
	dbus  func(l *Limits) any    // value of Property
	unit  func(l *Limits) string // value of Directive
	want  func(l *Limits) string // expected content of File
}

// Table lists the limits in flag order.
var Table = []*Limit{
	{
		Flag: "memory", Usage: "memory limit (MemoryMax=), e.g. 64m, 1G or bytes; the container is OOM-killed above it",
		Property: "MemoryMax", Directive: "MemoryMax", File: "memory.max", Controller: "memory",
		parse: func(l *Limits, s string) error { return parseSizeInto(&l.MemoryMax, s, false) },
		isSet: func(l *Limits) bool { return l.MemoryMax != 0 },
		dbus:  func(l *Limits) any { return l.MemoryMax },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.MemoryMax, 10) },
		want:  func(l *Limits) string { return pageRounded(l.MemoryMax) },
	},
	{
		Flag: "memory-high", Usage: "memory throttling threshold (MemoryHigh=), e.g. 48m",
		Property: "MemoryHigh", Directive: "MemoryHigh", File: "memory.high", Controller: "memory",
		parse: func(l *Limits, s string) error { return parseSizeInto(&l.MemoryHigh, s, false) },
		isSet: func(l *Limits) bool { return l.MemoryHigh != 0 },
		dbus:  func(l *Limits) any { return l.MemoryHigh },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.MemoryHigh, 10) },
		want:  func(l *Limits) string { return pageRounded(l.MemoryHigh) },
	},
	{
		Flag: "memory-swap", Usage: "swap the container may use besides --memory (MemorySwapMax=), e.g. 0 or 128m",
		Property: "MemorySwapMax", Directive: "MemorySwapMax", File: "memory.swap.max", Controller: "memory",
		parse: func(l *Limits, s string) error { l.SwapSet = true; return parseSizeInto(&l.MemorySwapMax, s, true) },
		isSet: func(l *Limits) bool { return l.SwapSet },
		dbus:  func(l *Limits) any { return l.MemorySwapMax },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.MemorySwapMax, 10) },
		want:  func(l *Limits) string { return pageRounded(l.MemorySwapMax) },
	},
	{
		Flag: "cpu", Usage: "CPU time in CPUs (CPUQuota=): 0.5 is half of one CPU, 2 is two CPUs",
		Property: "CPUQuotaPerSecUSec", Directive: "CPUQuota", File: "cpu.max", Controller: "cpu",
		parse: parseCPU,
		isSet: func(l *Limits) bool { return l.CPUPercent != 0 },
		// systemd's property is CPU time per second of wall time; 1% is 10 ms.
		dbus: func(l *Limits) any { return l.CPUPercent * 10000 },
		unit: func(l *Limits) string { return strconv.FormatUint(l.CPUPercent, 10) + "%" },
		// systemd's default period is 100 ms: quota = percent * 1 ms.
		want: func(l *Limits) string { return strconv.FormatUint(l.CPUPercent*1000, 10) + " 100000" },
	},
	{
		Flag: "cpu-weight", Usage: "relative CPU weight, 1 to 10000, default 100 (CPUWeight=)",
		Property: "CPUWeight", Directive: "CPUWeight", File: "cpu.weight", Controller: "cpu",
		parse: func(l *Limits, s string) error { return parseRange(&l.CPUWeight, s, 1, 10000) },
		isSet: func(l *Limits) bool { return l.CPUWeight != 0 },
		dbus:  func(l *Limits) any { return l.CPUWeight },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.CPUWeight, 10) },
		want:  func(l *Limits) string { return strconv.FormatUint(l.CPUWeight, 10) },
	},
	{
		Flag: "cpuset", Usage: "CPUs the container may run on, e.g. 0-1,3 (AllowedCPUs=)",
		Property: "AllowedCPUs", Directive: "AllowedCPUs", File: "cpuset.cpus", Controller: "cpuset",
		MinSystemd: 244,
		parse:      parseCPUSet,
		isSet:      func(l *Limits) bool { return l.AllowedCPUs != "" },
		dbus:       func(l *Limits) any { return cpuMask(l.AllowedCPUs) },
		unit:       func(l *Limits) string { return l.AllowedCPUs },
		want:       func(l *Limits) string { return l.AllowedCPUs },
	},
	{
		Flag: "pids", Usage: "most tasks (processes and threads) in the container (TasksMax=)",
		Property: "TasksMax", Directive: "TasksMax", File: "pids.max", Controller: "pids",
		parse: func(l *Limits, s string) error { return parseRange(&l.TasksMax, s, 1, math.MaxInt32) },
		isSet: func(l *Limits) bool { return l.TasksMax != 0 },
		dbus:  func(l *Limits) any { return l.TasksMax },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.TasksMax, 10) },
		want:  func(l *Limits) string { return strconv.FormatUint(l.TasksMax, 10) },
	},
	{
		Flag: "io-weight", Usage: "relative block IO weight, 1 to 10000, default 100 (IOWeight=)",
		Property: "IOWeight", Directive: "IOWeight", File: "io.weight", Controller: "io",
		parse: func(l *Limits, s string) error { return parseRange(&l.IOWeight, s, 1, 10000) },
		isSet: func(l *Limits) bool { return l.IOWeight != 0 },
		dbus:  func(l *Limits) any { return l.IOWeight },
		unit:  func(l *Limits) string { return strconv.FormatUint(l.IOWeight, 10) },
		want:  func(l *Limits) string { return "default " + strconv.FormatUint(l.IOWeight, 10) },
	},
}

// LookupLimit returns the row for a flag name.
func LookupLimit(flag string) *Limit {
	for _, r := range Table {
		if r.Flag == flag {
			return r
		}
	}
	return nil
}

// Set parses value for the limit named by flag.
func (l *Limits) Set(flag, value string) error {
	r := LookupLimit(flag)
	if r == nil {
		return fmt.Errorf("systemd: %w: unknown limit %q", ErrInvalidLimit, flag)
	}
	value = strings.TrimSpace(value)
	if err := r.parse(l, value); err != nil {
		return fmt.Errorf("%w: --%s %q: %v", ErrInvalidLimit, flag, value, err)
	}
	if l.given == nil {
		l.given = map[string]string{}
	}
	l.given[flag] = value
	return nil
}

// Args are the limits as command-line flags, as the user gave them.
func (l *Limits) Args() []string {
	var out []string
	for _, r := range l.Active() {
		out = append(out, "--"+r.Flag+"="+l.given[r.Flag])
	}
	return out
}

// Active returns the rows that are set, in table order.
func (l *Limits) Active() []*Limit {
	var out []*Limit
	for _, r := range Table {
		if r.isSet(l) {
			out = append(out, r)
		}
	}
	return out
}

// Empty reports whether no limit is set.
func (l *Limits) Empty() bool { return len(l.Active()) == 0 }

// Properties are the D-Bus properties of a transient unit carrying the limits, with
// the accounting each one needs.
func (l *Limits) Properties() []sddbus.Property {
	var props []sddbus.Property
	accounting := map[string]bool{}
	for _, r := range l.Active() {
		props = append(props, sddbus.Property{Name: r.Property, Value: dbus.MakeVariant(r.dbus(l))})
		accounting[r.Controller] = true
	}
	for _, a := range []struct{ controller, prop string }{
		{"memory", "MemoryAccounting"}, {"cpu", "CPUAccounting"}, {"pids", "TasksAccounting"}, {"io", "IOAccounting"},
	} {
		if accounting[a.controller] {
			props = append(props, sddbus.Property{Name: a.prop, Value: dbus.MakeVariant(true)})
		}
	}
	return props
}

// Directives are the unit file lines carrying the limits, as name/value pairs.
func (l *Limits) Directives() [][2]string {
	var out [][2]string
	for _, r := range l.Active() {
		out = append(out, [2]string{r.Directive, r.unit(l)})
	}
	return out
}

// Summary maps each set flag to its value as given back by the unit directive, for the
// container's record.
func (l *Limits) Summary() map[string]string {
	m := map[string]string{}
	for _, r := range l.Active() {
		m[r.Flag] = r.unit(l)
	}
	return m
}

// parseSize reads 64m, 1G, 512k, 1.5g or plain bytes (binary units, as docker and
// systemd use them).
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := uint64(1)
	num := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(s), "b"), "i")
	if num == "" {
		return 0, fmt.Errorf("not a size (use e.g. 64m, 1G or bytes)")
	}
	switch num[len(num)-1] {
	case 'k':
		mult = 1 << 10
	case 'm':
		mult = 1 << 20
	case 'g':
		mult = 1 << 30
	case 't':
		mult = 1 << 40
	}
	if mult != 1 {
		num = num[:len(num)-1]
	}
	if strings.ContainsAny(num, "+-eE") || num == "" {
		return 0, fmt.Errorf("not a size (use e.g. 64m, 1G or bytes)")
	}
	if mult == 1 {
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a size (use e.g. 64m, 1G or bytes)")
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("not a size (use e.g. 64m, 1G or bytes)")
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("too large")
	}
	return uint64(v), nil
}

func parseSizeInto(dst *uint64, s string, zeroOK bool) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	// Below one page the kernel can't keep even the container's init.
	if v < 4096 && !(zeroOK && v == 0) {
		return fmt.Errorf("at least 4096 bytes")
	}
	*dst = v
	return nil
}

func parseRange(dst *uint64, s string, lo, hi uint64) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return fmt.Errorf("want a whole number from %d to %d", lo, hi)
	}
	*dst = v
	return nil
}

// parseCPU reads CPUs as a decimal with at most two places: systemd's CPUQuota= is in
// whole percent.
func parseCPU(l *Limits, s string) error {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 2 || strings.Trim(whole+frac, "0123456789") != "" {
		return fmt.Errorf("want CPUs with at most two decimals, e.g. 0.5 or 2")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	pct, err := strconv.ParseUint(whole+frac, 10, 64)
	if err != nil || pct == 0 || pct > 100000 {
		return fmt.Errorf("want CPUs from 0.01 to 1000")
	}
	l.CPUPercent = pct
	return nil
}

// parseCPUSet reads a CPU list ("0-3,5") into its canonical form.
func parseCPUSet(l *Limits, s string) error {
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b > 4095 {
			return fmt.Errorf("want a CPU list such as 0-1,3")
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	l.AllowedCPUs = formatCPUSet(set)
	return nil
}

func formatCPUSet(set map[int]bool) string {
	var cpus []int
	for c := range set {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i])+"-"+strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// cpuMask is AllowedCPUs as systemd's D-Bus wants it: a little-endian bit mask, bit N
// of byte N/8 for CPU N.
func cpuMask(list string) []byte {
	var l Limits
	_ = parseCPUSet(&l, list)
	var mask []byte
	for _, part := range strings.Split(l.AllowedCPUs, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if isRange {
			b, _ = strconv.Atoi(hi)
		}
		for c := a; c <= b; c++ {
			for len(mask) <= c/8 {
				mask = append(mask, 0)
			}
			mask[c/8] |= 1 << (c % 8)
		}
	}
	return mask
}

// pageRounded is what the kernel shows for a memory limit: rounded down to the page size.
func pageRounded(v uint64) string {
	ps := uint64(os.Getpagesize())
	return strconv.FormatUint(v/ps*ps, 10)
}
