//go:build cgo

package launcher

// The --init PID 1 lowers its capabilities on every thread with
// syscall.AllThreadsSyscall, which Go refuses in a program linked with cgo (ENOTSUP at
// run time, after the container started). thinbox is a static, pure-Go binary: fail the
// build instead, with the fix in the error.
var _ = thinbox_must_be_built_with_CGO_ENABLED_0
