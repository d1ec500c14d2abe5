package launcher

import (
	"errors"
	"strings"
	"testing"

	"github.com/thinbox/thinbox/launcher/seccomp"
	"golang.org/x/sys/unix"
)

// TestConfinementDefault: the zero Security is the default confinement, not none.
func TestConfinementDefault(t *testing.T) {
	for _, init := range []bool{false, true} {
		cfg := testConfig(t, "sh", "-c", `grep -E 'CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp:' /proc/self/status; cat /proc/keys | wc -c; unshare -U true 2>/dev/null || echo unshare-denied`)
		cfg.Init = init
		r := run(t, cfg)
		if r.err != nil || r.code != 0 {
			t.Fatalf("init=%v: %v %d %s", init, r.err, r.code, r.stderr)
		}
		for _, want := range []string{"CapInh:\t0000000000000000", "CapEff:\t00000000a80425fb", "CapBnd:\t00000000a80425fb", "CapAmb:\t0000000000000000",
			"NoNewPrivs:\t1", "Seccomp:\t2", "\n0\n", "unshare-denied"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("init=%v: lacks %q:\n%s", init, want, r.stdout)
			}
		}
	}
}

// TestConfinementStepReported: a failing security step comes back as its name.
func TestConfinementStepReported(t *testing.T) {
	// A profile denying capset, installed early because no_new_privs is off.
	p := &seccomp.Profile{DefaultAction: seccomp.ActAllow, Rules: []seccomp.Rule{{Names: []string{"capset"}, Action: seccomp.Errno(unix.EPERM)}}}
	f, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for init, step := range map[bool]string{false: "set capabilities", true: "drop capabilities"} {
		cfg := testConfig(t, "true")
		cfg.Init = init
		cfg.Security = Security{AllowNewPrivileges: true, Seccomp: f}
		r := run(t, cfg)
		var se *StepError
		if !errors.As(r.err, &se) || se.Step != step || !errors.Is(r.err, unix.EPERM) {
			t.Errorf("init=%v: %v, want step %q with EPERM", init, r.err, step)
		}
	}
}
