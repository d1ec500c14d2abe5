// Package image is the image store: rootfs tarballs (plain, gzip, xz, zstd, detected by
// magic bytes) unpacked once, at import, into a directory per image.
//
// Every path in a tarball is resolved inside the image root; symlinks, absolute or
// relative, are never followed out of it, and hard links only reach entries inside.
// Import is atomic: a failed or interrupted import leaves nothing behind. image must
// never write outside its store.
package image
