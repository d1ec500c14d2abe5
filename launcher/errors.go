package launcher

import (
	"errors"
	"fmt"
	"syscall"
)

var (
	// ErrCommandNotFound: the payload command does not exist in the container (exit 127).
	ErrCommandNotFound = errors.New("command not found")
	// ErrCommandNotExecutable: the payload exists but can't be executed (exit 126).
	ErrCommandNotExecutable = errors.New("command cannot be executed")
)

// StepError is a failure of one step of container set-up, reported by the init half
// (or by the parent around it).
type StepError struct {
	Step  string
	Msg   string
	Errno syscall.Errno
	code  int
}

func (e *StepError) Error() string { return fmt.Sprintf("launcher: %s: %s", e.Step, e.Msg) }

// Unwrap lets errors.Is match the errno and the command sentinels.
func (e *StepError) Unwrap() []error {
	var errs []error
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	switch e.code {
	case 127:
		errs = append(errs, ErrCommandNotFound)
	case 126:
		errs = append(errs, ErrCommandNotExecutable)
	}
	return errs
}
