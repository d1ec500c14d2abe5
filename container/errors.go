package container

import "errors"

// ErrInvalid marks bad input from the user: a flag value, a volume, an environment
// entry, a user spec. Nothing has been created when it is returned.
var ErrInvalid = errors.New("invalid argument")
