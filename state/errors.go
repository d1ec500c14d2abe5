package state

import "errors"

var (
	// ErrNotFound: no container of that name.
	ErrNotFound = errors.New("no such container")
	// ErrExists: the name is taken.
	ErrExists = errors.New("container name already in use")
	// ErrRunning: the operation needs a container that is not running.
	ErrRunning = errors.New("container is running")
)
