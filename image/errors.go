package image

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no image of that name in the store.
	ErrNotFound = errors.New("image not found")
	// ErrExists: an image of that name exists and ImportOptions.Replace was not set.
	ErrExists = errors.New("image already exists")
	// ErrInUse is for the inUse callbacks of Remove and ImportOptions: a container
	// still uses the image.
	ErrInUse = errors.New("image in use")
	// ErrBadArchive: the input is not a tar archive, is truncated or corrupt, or holds
	// an entry that must be refused (a path escaping the root, a hard link to
	// something outside the image).
	ErrBadArchive = errors.New("bad archive")
)

// archiveError carries ErrBadArchive without putting "bad archive" in every message:
// "not a tar archive (input starts with "PK\x03\x04", a zip file)" says it better.
type archiveError struct{ msg string }

func (e *archiveError) Error() string        { return e.msg }
func (e *archiveError) Is(target error) bool { return target == ErrBadArchive }

func badArchive(format string, args ...any) error {
	return &archiveError{msg: fmt.Sprintf(format, args...)}
}
