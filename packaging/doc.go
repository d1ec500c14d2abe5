// Package packaging generates what the Debian package ships besides the binary: man
// pages and shell completion from the CLI's own definition (so they cannot drift), the
// tmpfiles.d entry, the user@.service delegation drop-in and the AppArmor profile.
package packaging
