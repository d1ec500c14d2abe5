package image

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// flock locks f; LOCK_NB in how makes it return ok=false instead of waiting.
func flock(f *os.File, how int) (ok bool, err error) {
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

// lockStore takes the store-wide lock: shared by Acquire and by an import creating
// its temp directory, exclusive by Remove, publishing and the sweep of leftovers.
// Each call opens the file anew: flock conflicts between open file descriptions, so
// two holders in one process exclude each other as two processes do.
func (s *Store) lockStore(how int) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, false, err
	}
	ok, err = flock(f, how)
	if !ok {
		f.Close()
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}

// lockDir opens a directory and flocks it exclusively without waiting: an import
// holds its temp directory this way for as long as it lives, so the sweep can tell
// a live import's directory from the leftover of a killed one.
func lockDir(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, err
	}
	ok, err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if !ok {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// errNoRenameat2 means the file system cannot rename atomically without replacing;
// callers then rely on holding the store lock exclusively.
var errNoRenameat2 = errors.New("renameat2 not supported")

func renameat2(from, to string, flags uint) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, flags)
	if err == unix.EINVAL || err == unix.ENOSYS {
		return errNoRenameat2
	}
	return err
}

// renameNoReplace renames from to to unless to exists (EEXIST).
func renameNoReplace(from, to string) error {
	err := renameat2(from, to, unix.RENAME_NOREPLACE)
	if err != errNoRenameat2 {
		return err
	}
	if _, err := os.Lstat(to); err == nil {
		return unix.EEXIST
	}
	return os.Rename(from, to)
}

// renameExchange swaps from and to atomically, so a reader of to never finds it
// missing; without RENAME_EXCHANGE it moves to aside to old first.
func renameExchange(from, to, old string) error {
	err := renameat2(from, to, unix.RENAME_EXCHANGE)
	if err != errNoRenameat2 {
		return err
	}
	if err := os.Rename(to, old); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		os.Rename(old, to)
		return err
	}
	return os.Rename(old, from)
}

// syncFS flushes the file system holding f: one call instead of an fsync per file,
// so that a power cut (edge boards lose power) never leaves a published image whose
// files are empty.
func syncFS(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
