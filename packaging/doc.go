// Package packaging generates what the Debian package ships besides the binary: the
// manual pages and the bash and zsh completion, rendered from the CLI's own command
// tree (the *cli.App the binary runs), so they cannot drift from the flags. The hidden
// verb `thinbox __gendocs` calls it at package build time.
//
// The static files the package installs live beside it: files/ holds the tmpfiles.d
// entry, the example user@.service delegation drop-in and the AppArmor profile, and
// build-deb.sh turns a checkout into a .deb with dpkg-buildpackage.
//
// packaging never runs containers and never touches the system: it renders bytes.
package packaging
