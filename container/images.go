package container

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/thinbox/thinbox/image"
)

// ImportImage imports a rootfs tarball from path ("-" for stdin) as name. progress,
// when non-nil, receives a live progress line (the CLI passes a terminal only).
func (m *Manager) ImportImage(ctx context.Context, name, path string, replace bool, stdin io.Reader, progress io.Writer) (*image.Image, error) {
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

// RemoveImage removes an image no container uses.
func (m *Manager) RemoveImage(name string) error {
	return m.Images.Remove(name, m.imageInUse)
}
