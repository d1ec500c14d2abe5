package seccomp

import "errors"

// ErrUnsupported marks a profile feature thinbox does not implement (a notify listener,
// a comparison it cannot express, an unknown action). The message names it.
var ErrUnsupported = errors.New("unsupported seccomp profile feature")
