// Package integration holds thinbox's end-to-end tests: they run the built thinbox
// binary (THINBOX_BIN) as a user would, against the busybox test image
// (THINBOX_TEST_IMAGE), on the real kernel. Files tagged `integration` need root and
// namespaces and run on the host and in the guest; files tagged `integration && systemd`
// need systemd as PID 1 with cgroup v2 controllers and run in the qemu guest of
// integration/vm (or on a host that has them).
package integration
