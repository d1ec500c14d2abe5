// Package userns decides how a container's user namespace is mapped: it parses
// /etc/subuid and /etc/subgid, detects rootless operation and what the kernel allows, and
// writes uid_map/gid_map (directly, or through newuidmap/newgidmap).
//
// userns never starts containers; it only answers "which ids" and writes maps for a pid
// it is given.
package userns
