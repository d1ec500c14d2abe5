package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/thinbox/thinbox/launcher"
	"github.com/urfave/cli/v2"
)

// Exit statuses of thinbox itself, as podman and docker use them; a container's own
// status passes through run unchanged.
const (
	exitFailure       = 125 // thinbox could not do what was asked
	exitNotExecutable = 126 // the command exists but can't be executed
	exitNotFound      = 127 // the command does not exist in the container
)

// exitStatus is returned by run to end thinbox with the container's status.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitCode is the one place errors become exit statuses and messages.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) && ce.ExitCode() == 0 {
		return 0
	}
	fmt.Fprintln(os.Stderr, "thinbox: "+oneLine(err))
	switch {
	case errors.Is(err, launcher.ErrCommandNotFound):
		return exitNotFound
	case errors.Is(err, launcher.ErrCommandNotExecutable):
		return exitNotExecutable
	}
	if errors.As(err, &ce) {
		return ce.ExitCode()
	}
	return exitFailure
}

// oneLine keeps every message on one line, whatever a lower layer wrapped in.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}
