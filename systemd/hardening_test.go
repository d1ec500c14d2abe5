package systemd

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	"github.com/thinbox/thinbox/launcher"
)

// The default container (root, no flags) gets every option, and the bounding set
// drops every capability thinbox and the container don't use.
func TestServiceHardeningDefault(t *testing.T) {
	want := append(DeviceDirectives(),
		[2]string{"KeyringMode", "private"},
		[2]string{"PrivateMounts", "yes"},
		[2]string{"ProtectKernelTunables", "yes"},
		[2]string{"ProtectKernelModules", "yes"},
		[2]string{"ProtectKernelLogs", "yes"},
		[2]string{"ProtectControlGroups", "yes"},
		[2]string{"ProtectProc", "invisible"},
		[2]string{"RestrictRealtime", "yes"},
		[2]string{"CapabilityBoundingSet", "~CAP_AUDIT_CONTROL CAP_AUDIT_READ CAP_BLOCK_SUSPEND CAP_BPF CAP_CHECKPOINT_RESTORE " +
			"CAP_IPC_LOCK CAP_IPC_OWNER CAP_LEASE CAP_LINUX_IMMUTABLE CAP_MAC_ADMIN CAP_MAC_OVERRIDE CAP_NET_BROADCAST " +
			"CAP_PERFMON CAP_SYSLOG CAP_SYS_BOOT CAP_SYS_MODULE CAP_SYS_NICE CAP_SYS_PACCT CAP_SYS_RAWIO CAP_SYS_TIME " +
			"CAP_SYS_TTY_CONFIG CAP_WAKE_ALARM"},
	)
	if got := ServiceHardening(ServiceContainer{}); !reflect.DeepEqual(got, want) {
		t.Errorf("default container:\n got %q\nwant %q", got, want)
	}
}

// A user manager gets the device policy and KeyringMode only, whatever the flags.
func TestServiceHardeningUser(t *testing.T) {
	want := append(DeviceDirectives(), [2]string{"KeyringMode", "private"})
	for _, c := range []ServiceContainer{{User: true}, {User: true, CapAdd: []string{"NET_ADMIN"}, Volumes: []string{"/home/a:/a"}}} {
		if got := ServiceHardening(c); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v:\n got %q\nwant %q", c, got, want)
		}
	}
}

// Each flag leaves out exactly the options that would take something from the container.
func TestServiceHardeningLeavesOut(t *testing.T) {
	all := []string{"PrivateMounts", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectProc", "RestrictRealtime"}
	cases := []struct {
		name     string
		c        ServiceContainer
		without  []string // options left out
		keepCaps []string // capabilities the bounding set must keep (nil: no bounding set at all)
	}{
		{"userns", ServiceContainer{UserNS: true}, []string{"ProtectKernelTunables", "ProtectKernelLogs"}, []string{}},
		{"privileged", ServiceContainer{Privileged: true},
			[]string{"ProtectKernelModules", "ProtectKernelLogs", "RestrictRealtime"}, nil},
		{"cap-add ALL", ServiceContainer{CapAdd: []string{"all"}},
			[]string{"ProtectKernelModules", "ProtectKernelLogs", "RestrictRealtime"}, nil},
		{"cap-add SYS_TIME", ServiceContainer{CapAdd: []string{"SYS_TIME"}}, nil, []string{"SYS_TIME"}},
		{"cap-add cap_sys_module", ServiceContainer{CapAdd: []string{"cap_sys_module"}}, []string{"ProtectKernelModules"}, []string{"SYS_MODULE"}},
		{"cap-add CAP_SYSLOG", ServiceContainer{CapAdd: []string{"CAP_SYSLOG"}}, []string{"ProtectKernelLogs"}, []string{"SYSLOG"}},
		{"cap-add SYS_ADMIN", ServiceContainer{CapAdd: []string{"SYS_ADMIN"}}, []string{"ProtectKernelLogs"}, []string{}},
		{"cap-add SYS_NICE", ServiceContainer{CapAdd: []string{" sys_nice "}}, []string{"RestrictRealtime"}, []string{"SYS_NICE"}},
		{"cap-add NET_ADMIN", ServiceContainer{CapAdd: []string{"NET_ADMIN"}}, nil, []string{}},
		{"seccomp unconfined", ServiceContainer{Seccomp: "unconfined"}, []string{"ProtectKernelLogs"}, []string{}},
		{"seccomp file", ServiceContainer{Seccomp: "/etc/profile.json"}, []string{"ProtectKernelLogs"}, []string{}},
		{"volume from /home and /tmp", ServiceContainer{Volumes: []string{"/home/pi/data:/data", "/tmp/x:/x:ro"}}, nil, []string{}},
		{"volume of the host's root", ServiceContainer{Volumes: []string{"/:/host:ro"}},
			[]string{"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc"}, []string{}},
		{"volume from /sys", ServiceContainer{Volumes: []string{"/sys/class/gpio:/sys/class/gpio"}}, []string{"ProtectKernelTunables"}, []string{}},
		{"volume of /sys/fs/cgroup", ServiceContainer{Volumes: []string{"/sys/fs/cgroup/x:/cg"}}, []string{"ProtectKernelTunables", "ProtectControlGroups"}, []string{}},
		{"volume of /proc", ServiceContainer{Volumes: []string{"/proc:/host/proc:ro"}}, []string{"ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc"}, []string{}},
		{"volume of /lib", ServiceContainer{Volumes: []string{"/lib/:/lib:ro"}}, []string{"ProtectKernelModules"}, []string{}},
		{"volume of the modules", ServiceContainer{Volumes: []string{"/usr/lib/modules/6.1:/m"}}, []string{"ProtectKernelModules"}, []string{}},
		{"volume beside", ServiceContainer{Volumes: []string{"/usr/lib/modulesx:/m", "/process:/p", "/system:/s"}}, nil, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, d := range ServiceHardening(tc.c) {
				got[d[0]] = d[1]
			}
			for _, o := range all {
				_, has := got[o]
				if want := !slices.Contains(tc.without, o); has != want {
					t.Errorf("%s: present %v, want %v", o, has, want)
				}
			}
			if got["DevicePolicy"] != "closed" || got["KeyringMode"] != "private" {
				t.Errorf("lost the device policy or the keyring: %q", got)
			}
			bset, has := got["CapabilityBoundingSet"]
			if tc.keepCaps == nil {
				if has {
					t.Errorf("a container that may hold every capability gets CapabilityBoundingSet=%s", bset)
				}
				return
			}
			dropped := strings.Fields(strings.TrimPrefix(bset, "~"))
			for _, cp := range tc.keepCaps {
				if slices.Contains(dropped, "CAP_"+cp) {
					t.Errorf("CapabilityBoundingSet=%s drops CAP_%s, which the container asked for", bset, cp)
				}
			}
			if want := len(unusedCaps) - len(tc.keepCaps); len(dropped) != want {
				t.Errorf("CapabilityBoundingSet=%s drops %d, want %d", bset, len(dropped), want)
			}
		})
	}
}

// The bounding set never drops a default container capability, and names only
// capabilities there are.
func TestUnusedCapsAreNotDefaults(t *testing.T) {
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known[strings.ToUpper(c.String())] = c
	}
	for _, name := range unusedCaps {
		c, ok := known[name]
		if !ok {
			t.Errorf("%s is not a capability", name)
			continue
		}
		if launcher.DefaultCaps.Has(c) {
			t.Errorf("CAP_%s is a default container capability; the bounding set must keep it", name)
		}
	}
	for _, o := range serviceOptions {
		for _, cp := range o.caps {
			if _, ok := known[cp]; !ok {
				t.Errorf("%s: %s is not a capability", o.key, cp)
			}
		}
	}
}

func TestOverlaps(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"/proc", "/proc", true}, {"/proc/", "/proc", true}, {"/proc/1/net", "/proc", true}, {"/", "/proc", true},
		{"/sys", "/sys/fs/cgroup", true}, {"/sys/fs", "/sys/fs/cgroup", true}, {"/sys/kernel", "/sys/fs/cgroup", false},
		{"/processes", "/proc", false}, {"/home/proc", "/proc", false}, {"/usr/lib/../lib/modules", "/usr/lib/modules", true},
	} {
		if got := overlaps(c.a, c.b); got != c.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
