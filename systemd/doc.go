// Package systemd talks to systemd over D-Bus: it starts transient scopes with cgroup v2
// limits around a container, reads the limits back from cgroupfs, installs, starts,
// enables, stops and removes thinbox-NAME.service units, and speaks sd_notify.
//
// One connection per command; every call carries a context with a deadline; job results
// are awaited with a timeout; every error names the unit. systemd never renders unit
// text (package units does) and never mocks the bus in integration tests.
package systemd
