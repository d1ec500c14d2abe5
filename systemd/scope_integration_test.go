//go:build integration && systemd

package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thinbox/thinbox/internal/testenv"
)

// The test bed's proof: a transient scope started over D-Bus holds a helper process and
// carries MemoryMax=64M in its cgroup.
func TestScopeMemoryMaxReadBack(t *testing.T) {
	testenv.Require(t, testenv.Root, testenv.Systemd, testenv.CgroupV2("memory", "pids", "cpu"))
	// The bus by default; the private socket when asked for, and where the bus daemon
	// can't be reached.
	for _, bus := range []string{"bus", "private", "no-bus-fallback"} {
		t.Run(bus, func(t *testing.T) {
			switch bus {
			case "private":
				t.Setenv("THINBOX_SYSTEMD_PRIVATE", "1")
			case "no-bus-fallback":
				t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/thinbox-test-bus")
			}
			ctx := context.Background()
			c, err := Connect(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Private != (bus != "bus") {
				t.Fatalf("connected privately=%v, want %s", c.Private, bus)
			}
			helper := exec.Command("sleep", "300")
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { helper.Process.Kill(); helper.Wait() }()
			var l Limits
			l.Set("memory", "64M")
			l.Set("pids", "20")
			l.Set("cpu", "0.5")
			unit := "thinbox-test-" + bus + ".scope"
			cg, err := c.StartScope(ctx, ScopeSpec{Unit: unit, Slice: "thinbox.slice", Description: "thinbox test", Pid: helper.Process.Pid, Limits: &l})
			if err != nil {
				t.Fatal(err)
			}
			if cg != "/thinbox.slice/"+unit {
				t.Errorf("cgroup %s", cg)
			}
			for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "20", "cpu.max": "50000 100000"} {
				b, err := os.ReadFile(filepath.Join(CgroupRoot, cg, file))
				if err != nil || strings.TrimSpace(string(b)) != want {
					t.Errorf("%s = %q (%v), want %s", file, b, err, want)
				}
			}
			procs, _ := os.ReadFile(filepath.Join(CgroupRoot, cg, "cgroup.procs"))
			if strings.TrimSpace(string(procs)) != strconv.Itoa(helper.Process.Pid) {
				t.Errorf("scope holds %q, want the helper %d", procs, helper.Process.Pid)
			}
			if err := c.Stop(ctx, unit); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { helper.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("stopping the scope did not end the helper")
			}
			if _, err := os.Stat(filepath.Join(CgroupRoot, cg)); !os.IsNotExist(err) {
				t.Errorf("scope cgroup left after stop: %v", err)
			}
		})
	}
}
