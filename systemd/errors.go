package systemd

import "errors"

var (
	// ErrUnavailable: systemd is not PID 1 here, or its bus can't be reached.
	ErrUnavailable = errors.New("systemd is not available")
	// ErrLimitNotApplied: a limit was asked for but the cgroup does not carry it.
	ErrLimitNotApplied = errors.New("limit not applied")
	// ErrInvalidLimit: a limit value that can't be parsed or is out of range.
	ErrInvalidLimit = errors.New("invalid limit")
	// ErrUnitExists: a unit file of that name is installed already.
	ErrUnitExists = errors.New("unit already exists")
	// ErrNoUnit: no such unit.
	ErrNoUnit = errors.New("no such unit")
)
