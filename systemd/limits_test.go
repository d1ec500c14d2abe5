package systemd

import (
	"errors"
	"os"
	"strconv"
	"testing"
)

// One case per row of the mapping table: flag value → D-Bus property value, unit
// directive, and what the cgroup file must read back.
func TestTableRows(t *testing.T) {
	page := uint64(os.Getpagesize())
	cases := []struct {
		flag, value string
		property    string
		dbus        any
		directive   string
		unit        string
		file, want  string
	}{
		{"memory", "64m", "MemoryMax", uint64(64 << 20), "MemoryMax", "67108864", "memory.max", "67108864"},
		{"memory", "1G", "MemoryMax", uint64(1 << 30), "MemoryMax", "1073741824", "memory.max", "1073741824"},
		{"memory", "100000", "MemoryMax", uint64(100000), "MemoryMax", "100000", "memory.max", strconv.FormatUint(100000/page*page, 10)},
		{"memory-high", "48M", "MemoryHigh", uint64(48 << 20), "MemoryHigh", "50331648", "memory.high", "50331648"},
		{"memory-swap", "0", "MemorySwapMax", uint64(0), "MemorySwapMax", "0", "memory.swap.max", "0"},
		{"cpu", "0.5", "CPUQuotaPerSecUSec", uint64(500000), "CPUQuota", "50%", "cpu.max", "50000 100000"},
		{"cpu", "2", "CPUQuotaPerSecUSec", uint64(2000000), "CPUQuota", "200%", "cpu.max", "200000 100000"},
		{"cpu", ".25", "CPUQuotaPerSecUSec", uint64(250000), "CPUQuota", "25%", "cpu.max", "25000 100000"},
		{"cpu-weight", "500", "CPUWeight", uint64(500), "CPUWeight", "500", "cpu.weight", "500"},
		{"cpuset", "3,0-1,1", "AllowedCPUs", []byte{0b1011}, "AllowedCPUs", "0-1,3", "cpuset.cpus", "0-1,3"},
		{"cpuset", "9", "AllowedCPUs", []byte{0, 0b10}, "AllowedCPUs", "9", "cpuset.cpus", "9"},
		{"pids", "20", "TasksMax", uint64(20), "TasksMax", "20", "pids.max", "20"},
		{"io-weight", "200", "IOWeight", uint64(200), "IOWeight", "200", "io.weight", "default 200"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		var l Limits
		if err := l.Set(c.flag, c.value); err != nil {
			t.Errorf("--%s %s: %v", c.flag, c.value, err)
			continue
		}
		seen[c.flag] = true
		act := l.Active()
		if len(act) != 1 || act[0].Flag != c.flag {
			t.Fatalf("--%s: active rows %v", c.flag, act)
		}
		r := act[0]
		props := l.Properties()
		if props[0].Name != c.property {
			t.Errorf("--%s: property %s, want %s", c.flag, props[0].Name, c.property)
		}
		if got := props[0].Value.Value(); !equal(got, c.dbus) {
			t.Errorf("--%s %s: D-Bus value %#v, want %#v", c.flag, c.value, got, c.dbus)
		}
		if d := l.Directives(); d[0][0] != c.directive || d[0][1] != c.unit {
			t.Errorf("--%s %s: directive %v, want %s=%s", c.flag, c.value, d[0], c.directive, c.unit)
		}
		if r.File != c.file || r.want(&l) != c.want {
			t.Errorf("--%s %s: reads back %s=%q, want %s=%q", c.flag, c.value, r.File, r.want(&l), c.file, c.want)
		}
	}
	for _, r := range Table {
		if !seen[r.Flag] {
			t.Errorf("row --%s has no test case", r.Flag)
		}
	}
}

func equal(a, b any) bool {
	ab, ok1 := a.([]byte)
	bb, ok2 := b.([]byte)
	if ok1 || ok2 {
		return string(ab) == string(bb)
	}
	return a == b
}

func TestAccountingFollowsLimits(t *testing.T) {
	var l Limits
	l.Set("memory", "64m")
	l.Set("pids", "20")
	names := map[string]bool{}
	for _, p := range l.Properties() {
		names[p.Name] = true
	}
	if !names["MemoryAccounting"] || !names["TasksAccounting"] || names["CPUAccounting"] {
		t.Errorf("accounting properties: %v", names)
	}
}

func TestBadLimits(t *testing.T) {
	bad := map[string][]string{
		"memory":      {"", "abc", "-1", "64x", "1e9", "0", "100", "99999999999999999999", "1.5.5m", "m"},
		"memory-swap": {"-5", "x"},
		"cpu":         {"0", "0.001", "-1", "abc", "1,5", "1e2", "", "1001"},
		"cpu-weight":  {"0", "10001", "x", "-1"},
		"cpuset":      {"", "a", "3-1", "-1", "1,,2", "5000"},
		"pids":        {"0", "-1", "x", "1.5"},
		"io-weight":   {"0", "10001"},
	}
	for flag, vals := range bad {
		for _, v := range vals {
			var l Limits
			if err := l.Set(flag, v); !errors.Is(err, ErrInvalidLimit) {
				t.Errorf("--%s %q: %v, want ErrInvalidLimit", flag, v, err)
			}
		}
	}
	if err := (&Limits{}).Set("nope", "1"); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("unknown flag accepted")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"64m": 64 << 20, "64M": 64 << 20, "64MiB": 64 << 20, "64mb": 64 << 20, "1g": 1 << 30, "512k": 512 << 10, "1.5g": 3 << 29, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int{`"252.39-1~deb12u2"`: 252, "255": 255, `"v1"`: 0} {
		if got := parseVersion(in); got != want {
			t.Errorf("parseVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzLimitParse(f *testing.F) {
	for _, s := range []string{"64m", "0.5", "0-3,5", "20", "1e9", "-1", "99999999999999999999k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Table {
			var l Limits
			if err := l.Set(r.Flag, s); err != nil {
				if !errors.Is(err, ErrInvalidLimit) {
					t.Fatalf("--%s %q: error %v is not ErrInvalidLimit", r.Flag, s, err)
				}
				continue
			}
			// Whatever parses renders to a directive and a readback value without panicking,
			// whatever the value.
			d := l.Directives()
			if len(d) != 1 || d[0][1] == "" || r.want(&l) == "" {
				t.Fatalf("--%s %q: directive %v", r.Flag, s, d)
			}
		}
	})
}
