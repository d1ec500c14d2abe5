package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/thinbox/thinbox/image"
)

// ImportImage imports a rootfs tarball from path ("-" for stdin) as name. progress,
// when non-nil, receives a live progress line (the CLI passes a terminal only).
func (m *Manager) ImportImage(ctx context.Context, name, path string, replace bool, stdin io.Reader, progress io.Writer) (*image.Image, error) {
	if m.User {
		if img, ok, err := m.importInUserNS(name, path, replace, stdin); ok {
			return img, err
		}
	}
	var r io.Reader = stdin
	var total int64
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%w: image import: %w", ErrInvalid, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			if st.IsDir() {
				return nil, fmt.Errorf("%w: image import: %s is a directory, not a tarball", ErrInvalid, path)
			}
			total = st.Size()
		}
		r = f
	}
	return m.Images.Import(ctx, name, r, image.ImportOptions{Replace: replace, InUse: m.imageInUse, Progress: progress, Total: total})
}

// imageInUse refuses to replace or remove an image a container record names.
func (m *Manager) imageInUse(name string) error {
	recs, err := m.States.List()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Image == name {
			return fmt.Errorf("%w: container %s uses it (remove it first)", image.ErrInUse, r.Name)
		}
	}
	return nil
}

// importInUserNS unpacks a user's image as root of their full-range user namespace, so
// the tarball's owners land on their subordinate ids (root's files on the user), and
// the image looks the same inside a container as it did in the tarball. ok is false
// for a single-id mapping: then the user unpacks it directly and owns every file.
func (m *Manager) importInUserNS(name, path string, replace bool, stdin io.Reader) (*image.Image, bool, error) {
	args := []string{"image", "import"}
	if replace {
		args = append(args, "--replace")
	}
	args = append(args, "--", name, path)
	if path != "-" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, true, err
		}
		args[len(args)-1] = abs
	}
	ok, err := m.inUserNS(args, stdin, io.Discard)
	if !ok || err != nil {
		return nil, ok, err
	}
	img, err := m.Images.Get(name)
	return img, true, err
}

// RemoveImage removes an image no container uses.
func (m *Manager) RemoveImage(name string) error {
	err := m.Images.Remove(name, m.imageInUse)
	if err != nil && m.User && errors.Is(err, os.ErrPermission) {
		if ok, uerr := m.inUserNS([]string{"image", "rm", name}, nil, io.Discard); ok {
			return uerr
		}
	}
	return err
}
