// Package state keeps the records of containers on this host under /run/thinbox (a
// tmpfs, so records vanish at reboot): one directory per container, reserved atomically
// so names are unique, with its record, and the liveness checks that tell a running
// container from one whose launcher died.
//
// state never mounts, starts or signals anything; it only records and answers.
package state
