package systemd

import (
	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Devices are the only device nodes a container may open or create, enforced by
// systemd's device controller (DevicePolicy=closed) on its scope or service, on top of
// the launcher's nodev mounts: the standard set every container gets in /dev, its
// terminal (/dev/ptmx of its devpts, and the pts slaves), nothing of the host.
var Devices = [][2]string{
	{"/dev/null", "rwm"}, {"/dev/zero", "rwm"}, {"/dev/full", "rwm"},
	{"/dev/random", "rwm"}, {"/dev/urandom", "rwm"}, {"/dev/tty", "rwm"},
	{"/dev/ptmx", "rwm"}, {"char-pts", "rwm"},
}

// DeviceProperties are Devices as transient unit properties.
func DeviceProperties() []sddbus.Property {
	type allow struct {
		Path, Perm string
	}
	var list []allow
	for _, d := range Devices {
		list = append(list, allow{d[0], d[1]})
	}
	return []sddbus.Property{
		{Name: "DevicePolicy", Value: dbus.MakeVariant("closed")},
		{Name: "DeviceAllow", Value: dbus.MakeVariant(list)},
	}
}

// DeviceDirectives are Devices as unit file lines.
func DeviceDirectives() [][2]string {
	out := [][2]string{{"DevicePolicy", "closed"}}
	for _, d := range Devices {
		out = append(out, [2]string{"DeviceAllow", d[0] + " " + d[1]})
	}
	return out
}
