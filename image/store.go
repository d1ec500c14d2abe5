package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinbox/thinbox/internal/names"
)

// Store layout:
//
//	DIR/.lock                 store-wide flock (Acquire, Remove, publishing, sweeping)
//	DIR/NAME/image.json       metadata (Image)
//	DIR/NAME/rootfs/          the unpacked root, later an overlayfs lower layer
//	DIR/.tmp-NAME-XXXX/       an import in progress, flocked by it; or the leftover
//	                          of a killed one, swept by the next Import, List or Remove
//
// Directories are 0700: an image holds setuid binaries and device nodes of its own,
// which must not be reachable by host users.
const (
	lockFile  = ".lock"
	tmpPrefix = ".tmp-"
	metaFile  = "image.json"
	rootfsDir = "rootfs"
)

// syncImports is false only in the fuzz target, which would otherwise spend its time
// in syncfs.
var syncImports = true

// Store is a directory of unpacked images.
type Store struct {
	dir string
}

// NewStore returns the store in dir (e.g. /var/lib/thinbox/images), which is created,
// mode 0700, on first use.
func NewStore(dir string) *Store {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return &Store{dir: filepath.Clean(dir)}
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Image is the metadata of one unpacked image.
type Image struct {
	Name        string    `json:"name"`
	Digest      string    `json:"digest"` // "sha256:<hex>" of the input bytes as given (compressed)
	Size        int64     `json:"size"`   // bytes of file content unpacked
	Created     time.Time `json:"created"`
	Compression string    `json:"compression"` // none, gzip, xz, zstd, bzip2
	Entries     int       `json:"entries"`     // entries in the archive
	Skipped     int       `json:"skipped"`     // entries not created: device nodes without privilege, unknown types
	RootFS      string    `json:"-"`           // absolute path of the unpacked root
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Replace replaces an existing image of that name; without it Import returns
	// ErrExists.
	Replace bool
	// InUse, when set, is called before an existing image is replaced, with the store
	// lock held exclusively; an error (wrapping ErrInUse) stops the import and leaves
	// the old image. Replacing an image pulls the lower layer from under the overlay of
	// any container still running on it.
	InUse func(name string) error
	// Progress, when set (the CLI passes stderr on a terminal), gets one
	// self-overwriting line with bytes read, total when known and rate.
	Progress io.Writer
	// Total is the input's size when known (0: unknown), for the progress line.
	Total int64
}

// Import unpacks the tarball r (plain, gzip, xz, zstd or bzip2) as image name. It is
// atomic: on any failure, cancellation included, nothing of it is left in the store.
func (s *Store) Import(ctx context.Context, name string, r io.Reader, opt ImportOptions) (*Image, error) {
	if err := names.Check("image", name); err != nil {
		return nil, fmt.Errorf("image: import: %w", err)
	}
	img, err := s.importImage(ctx, name, r, opt)
	if err != nil {
		return nil, fmt.Errorf("image: import %s: %w", name, err)
	}
	return img, nil
}

func (s *Store) importImage(ctx context.Context, name string, r io.Reader, opt ImportOptions) (img *Image, err error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	s.sweep()
	if !opt.Replace {
		// Fail before reading a byte; publish checks again, atomically.
		if _, err := os.Lstat(s.imageDir(name)); err == nil {
			return nil, ErrExists
		}
	}
	tmp, lock, err := s.newTemp(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeAll(tmp)
		}
		lock.Close()
	}()

	// A reader blocked in Read (a pipe with nothing in it) never sees the context;
	// files and pipes opened non-blocking can be woken by a deadline.
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { d.SetReadDeadline(time.Now()) })
		defer stop()
	}
	a, err := openArchive(ctx, r)
	if err != nil {
		return nil, err
	}
	defer a.close()
	prog := startProgress(opt.Progress, name, opt.Total, &a.in.n)
	defer func() { prog.finish(err) }()

	root := filepath.Join(tmp, rootfsDir)
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	res, err := unpack(ctx, a, root)
	if err != nil {
		return nil, err
	}
	digest, err := a.finish()
	if err != nil {
		return nil, err
	}
	img = &Image{
		Name:        name,
		Digest:      digest,
		Size:        res.size,
		Created:     time.Now().UTC(),
		Compression: a.compression,
		Entries:     res.entries,
		Skipped:     res.skipped,
	}
	if err := writeMeta(filepath.Join(tmp, metaFile), img); err != nil {
		return nil, err
	}
	if syncImports {
		if err := syncFS(lock); err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.publish(tmp, name, opt); err != nil {
		return nil, err
	}
	img.RootFS = filepath.Join(s.imageDir(name), rootfsDir)
	return img, nil
}

// publish renames the finished temp directory into place under the exclusive lock
// (Acquire and Remove see either the old image or the new one, never a gap).
func (s *Store) publish(tmp, name string, opt ImportOptions) error {
	unlock, _, err := s.lockStore(unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("lock store: %w", err)
	}
	dst := s.imageDir(name)
	err = renameNoReplace(tmp, dst)
	if err != unix.EEXIST {
		unlock()
		return err
	}
	if !opt.Replace {
		unlock()
		return ErrExists
	}
	if opt.InUse != nil {
		if err := opt.InUse(name); err != nil {
			unlock()
			return err
		}
	}
	if err := renameExchange(tmp, dst, s.tempName(name)); err != nil {
		unlock()
		return err
	}
	// tmp now holds the old image. Claim it before the sweep can see it unlocked,
	// then delete it outside the lock: that may take a while.
	old, ok, _ := lockDir(tmp)
	unlock()
	removeAll(tmp)
	if ok {
		old.Close()
	}
	return nil
}

// Get returns the image called name, or ErrNotFound.
func (s *Store) Get(name string) (*Image, error) {
	if err := names.Check("image", name); err != nil {
		return nil, fmt.Errorf("image: get: %w", err)
	}
	img, err := s.load(name)
	if err != nil {
		return nil, fmt.Errorf("image: get %s: %w", name, err)
	}
	return img, nil
}

// List returns every image, sorted by name.
func (s *Store) List() ([]*Image, error) {
	if err := s.init(); err != nil {
		return nil, fmt.Errorf("image: list: %w", err)
	}
	s.sweep()
	ents, err := os.ReadDir(s.dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("image: list: %w", err)
	}
	imgs := []*Image{}
	for _, e := range ents {
		if !e.IsDir() || names.Check("image", e.Name()) != nil {
			continue // the lock file, temp directories
		}
		img, err := s.load(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("image: list: %s: %w", e.Name(), err)
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// Remove deletes image name. inUse, when set, is called with the store lock held
// exclusively, so no Acquire can start meanwhile; if it returns an error (wrapping
// ErrInUse), Remove returns it and removes nothing. inUse may call Get, not Acquire,
// Remove or Import, which would wait for the lock it runs under.
func (s *Store) Remove(name string, inUse func(name string) error) error {
	if err := names.Check("image", name); err != nil {
		return fmt.Errorf("image: remove: %w", err)
	}
	if err := s.remove(name, inUse); err != nil {
		return fmt.Errorf("image: remove %s: %w", name, err)
	}
	return nil
}

func (s *Store) remove(name string, inUse func(name string) error) error {
	if err := s.init(); err != nil {
		return err
	}
	unlock, _, err := s.lockStore(unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("lock store: %w", err)
	}
	leftovers := s.claimLeftovers()
	defer releaseLeftovers(leftovers)
	if _, err := s.load(name); err != nil {
		unlock()
		return err
	}
	if inUse != nil {
		if err := inUse(name); err != nil {
			unlock()
			return err
		}
	}
	// Move it out of sight first, so that the image is gone at once and a crash
	// while deleting leaves a leftover for the sweep, not a half image.
	trash := s.tempName(name)
	if err := renameNoReplace(s.imageDir(name), trash); err != nil {
		unlock()
		return err
	}
	claim, ok, _ := lockDir(trash)
	unlock()
	err = removeAll(trash)
	if ok {
		claim.Close()
	}
	return err
}

// Acquire returns image name with the store lock held shared until release is called,
// so that Remove cannot run between a caller looking the image up and recording a
// container that uses it (Remove's inUse then sees that container). Release before
// calling Remove or Import: they wait for the lock to be free. release may be called
// more than once.
func (s *Store) Acquire(name string) (img *Image, release func(), err error) {
	if err := names.Check("image", name); err != nil {
		return nil, nil, fmt.Errorf("image: acquire: %w", err)
	}
	if err := s.init(); err != nil {
		return nil, nil, fmt.Errorf("image: acquire %s: %w", name, err)
	}
	unlock, _, err := s.lockStore(unix.LOCK_SH)
	if err != nil {
		return nil, nil, fmt.Errorf("image: acquire %s: lock store: %w", name, err)
	}
	img, err = s.load(name)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("image: acquire %s: %w", name, err)
	}
	return img, sync.OnceFunc(unlock), nil
}

func (s *Store) init() error {
	return os.MkdirAll(s.dir, 0o700)
}

func (s *Store) imageDir(name string) string { return filepath.Join(s.dir, name) }

// tempName is a fresh name for a temp directory of image name.
func (s *Store) tempName(name string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return filepath.Join(s.dir, tmpPrefix+name+"-"+hex.EncodeToString(b))
}

// newTemp creates and flocks a temp directory for an import. The shared store lock
// keeps the sweep (exclusive) out between mkdir and flock, when the directory exists
// but is not yet locked.
func (s *Store) newTemp(name string) (string, *os.File, error) {
	unlock, _, err := s.lockStore(unix.LOCK_SH)
	if err != nil {
		return "", nil, fmt.Errorf("lock store: %w", err)
	}
	defer unlock()
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix+name+"-")
	if err != nil {
		return "", nil, err
	}
	lock, ok, err := lockDir(tmp)
	if !ok {
		os.Remove(tmp)
		return "", nil, fmt.Errorf("lock %s: %v", tmp, err)
	}
	return tmp, lock, nil
}

// sweep removes what killed imports and removals left, if it can get the store lock
// without waiting (a long Acquire must not block List); leftovers wait for next time
// otherwise.
func (s *Store) sweep() {
	unlock, ok, _ := s.lockStore(unix.LOCK_EX | unix.LOCK_NB)
	if !ok {
		return
	}
	claimed := s.claimLeftovers()
	unlock()
	releaseLeftovers(claimed)
}

type leftover struct {
	path string
	lock *os.File
}

// claimLeftovers flocks every temp directory no live import holds; the store lock
// must be held exclusively, so none is between mkdir and flock.
func (s *Store) claimLeftovers() []leftover {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	var out []leftover
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if f, ok, _ := lockDir(p); ok {
			out = append(out, leftover{p, f})
		}
	}
	return out
}

func releaseLeftovers(ls []leftover) {
	for _, l := range ls {
		removeAll(l.path)
		l.lock.Close()
	}
}

// removeAll is os.RemoveAll (which never follows symlinks) that also copes with
// directories an image made read-only, which stop a non-root owner from deleting
// their children.
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700) // a real directory: WalkDir does not follow symlinks
		}
		return nil
	})
	return os.RemoveAll(p)
}

func (s *Store) load(name string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(s.imageDir(name), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("read %s: %v", metaFile, err)
	}
	img.Name = name
	img.RootFS = filepath.Join(s.imageDir(name), rootfsDir)
	return &img, nil
}

func writeMeta(path string, img *Image) error {
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
