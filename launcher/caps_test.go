package launcher

import (
	"strings"
	"testing"

	"github.com/moby/sys/capability"
)

func TestResolveCaps(t *testing.T) {
	admin := capsOf(capability.CAP_NET_ADMIN)
	for _, tc := range []struct {
		add, drop  []string
		set, added CapSet
	}{
		{nil, nil, DefaultCaps, 0},
		{[]string{"NET_ADMIN"}, nil, DefaultCaps | admin, admin},
		{[]string{"cap_net_admin"}, nil, DefaultCaps | admin, admin},
		{[]string{"Cap_Net_Admin"}, []string{"chown", "CAP_MKNOD"}, DefaultCaps&^capsOf(capability.CAP_CHOWN, capability.CAP_MKNOD) | admin, admin},
		{nil, []string{"ALL"}, 0, 0},
		{[]string{"net_admin"}, []string{"all"}, admin, admin},
		// Docker: in the plain case, adding wins over dropping the same capability.
		{[]string{"CHOWN"}, []string{"CHOWN"}, DefaultCaps, capsOf(capability.CAP_CHOWN)},
		{[]string{"ALL"}, []string{"SYS_ADMIN"}, allCaps() &^ capsOf(capability.CAP_SYS_ADMIN), allCaps() &^ capsOf(capability.CAP_SYS_ADMIN)},
	} {
		set, added, err := ResolveCaps(tc.add, tc.drop)
		if err != nil || set != tc.set || added != tc.added {
			t.Errorf("add %v drop %v: %v %v %v, want %v %v", tc.add, tc.drop, set, added, err, tc.set, tc.added)
		}
	}
	for _, bad := range []string{"NET_FROB", "", "CAP_", "ALL,CHOWN", "sys admin"} {
		_, _, err := ResolveCaps([]string{bad}, nil)
		if err == nil || !strings.Contains(err.Error(), "unknown capability") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--cap-add %q: %v", bad, err)
		}
	}
}

func TestDefaultCapsAsDocker(t *testing.T) {
	// /proc/PID/status of a default Docker container: CapEff 00000000a80425fb.
	if DefaultCaps != 0xa80425fb {
		t.Errorf("DefaultCaps = %s", DefaultCaps)
	}
	if !DefaultCaps.HasName("CAP_SYS_CHROOT") || !DefaultCaps.HasName("net_raw") || DefaultCaps.HasName("CAP_SYS_ADMIN") {
		t.Errorf("HasName")
	}
}

func TestNewSecurity(t *testing.T) {
	s, err := NewSecurity(SecurityOptions{})
	if err != nil || s.caps() != DefaultCaps || s.Unconfined || s.Privileged || s.Ambient != 0 || s.Seccomp != nil {
		t.Errorf("defaults: %+v %v", s, err)
	}
	s, _ = NewSecurity(SecurityOptions{CapAdd: []string{"NET_ADMIN"}, NonRoot: true})
	if s.Ambient != capsOf(capability.CAP_NET_ADMIN) {
		t.Errorf("non-root ambient: %s", s.Ambient)
	}
	s, _ = NewSecurity(SecurityOptions{Privileged: true, CapDrop: []string{"ALL"}})
	if !s.Privileged || !s.Unconfined || s.caps() != allCaps() {
		t.Errorf("privileged: %+v", s)
	}
	s, _ = NewSecurity(SecurityOptions{Seccomp: "unconfined"})
	if !s.Unconfined {
		t.Errorf("unconfined: %+v", s)
	}
	_, err = NewSecurity(SecurityOptions{Seccomp: "/no/such/profile.json"})
	if err == nil || !strings.Contains(err.Error(), "--seccomp") {
		t.Errorf("missing profile: %v", err)
	}
}
