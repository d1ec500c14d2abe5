// Package image is the image store: rootfs tarballs (plain, gzip, xz, zstd, bzip2,
// detected by magic bytes) unpacked once, at import, into a directory per image,
// which containers later mount read-only as the lower layer of an overlayfs.
//
// Every path in a tarball is resolved inside the image root, by the kernel
// (openat2 RESOLVE_IN_ROOT), as the container will resolve it: absolute entry names
// and absolute or relative symlinks land inside the root, ".." that climbs out of it
// is refused, and the last component of a name is never followed, so nothing is
// written through a symlink. Hard links only reach entries already inside.
// unpack.go and unpack_linux.go say why this and not os.Root.
//
// Import is atomic: it unpacks into a flocked temp directory in the store and
// renames it into place; a failed, cancelled or refused import leaves nothing
// behind, and what a killed one leaves is swept by the next Import, List or Remove.
// image must never write outside its store.
package image
