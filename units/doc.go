// Package units renders thinbox-NAME.service unit files from a container spec with
// go-systemd's unit serializer, quoting arguments and environment so that they reach the
// payload byte-exact through systemd's quoting and specifier rules.
//
// units is pure: it never touches the filesystem, the bus or the clock. Writing,
// daemon-reload and start live in package systemd.
package units
