// Package launcher makes the container itself: it clones a child into new pid, mount,
// uts, ipc, net and cgroup namespaces, and that child — thinbox re-executed as
// "thinbox-init" — makes the mount tree private, mounts the copy-on-write root, /proc,
// /sys, /dev and volumes, pivot_roots, drops into the payload's user and execs it, or
// stays as a minimal PID 1 that reaps zombies and forwards signals. The parent side
// forwards signals, drives the pty and turns the payload's end into an exit status.
//
// The init half runs before the CLI parses anything and reports each failed step to the
// parent over a sync socket, so the user sees which step failed and why.
//
// launcher never talks to systemd and knows nothing of images or container records: it
// gets a Config and a hook to run once the child exists (where the caller puts it in a
// cgroup).
package launcher
