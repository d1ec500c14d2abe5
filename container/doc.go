// Package container composes one verb — run, ps, inspect, stop, rm, logs — out of the
// image store, the container records, the launcher and systemd.
//
// It is where cleanup on every path is guaranteed: a failed start leaves no record, no
// layer, no mount and no scope. container never parses flags and never prints; the CLI
// does both.
package container
