package container

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/thinbox/thinbox/image"
	"github.com/thinbox/thinbox/state"
	"github.com/thinbox/thinbox/userns"
)

// Paths are the roots thinbox keeps its files under.
type Paths struct {
	Data string // images and container layers: /var/lib/thinbox
	Run  string // container records: /run/thinbox (a tmpfs)
}

// RootPaths are root's.
var RootPaths = Paths{Data: "/var/lib/thinbox", Run: "/run/thinbox"}

// DefaultPaths are root's, or for an ordinary user $XDG_DATA_HOME/thinbox (default
// ~/.local/share/thinbox) and $XDG_RUNTIME_DIR/thinbox.
func DefaultPaths() Paths {
	if os.Geteuid() == 0 {
		return RootPaths
	}
	p := Paths{}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		p.Data = filepath.Join(d, "thinbox")
	} else if home, err := os.UserHomeDir(); err == nil {
		p.Data = filepath.Join(home, ".local", "share", "thinbox")
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		p.Run = filepath.Join(d, "thinbox")
	} else {
		p.Run = filepath.Join(os.TempDir(), "thinbox-"+strconv.Itoa(os.Geteuid()))
	}
	return p
}

// Manager runs verbs against one set of stores.
type Manager struct {
	Paths  Paths
	Images *image.Store
	States *state.Store
	// User: an ordinary user's containers, in user namespaces, under the user's own
	// systemd manager.
	User bool
	// Warn receives one-line notices (a single-id user namespace, ...); nil drops them.
	Warn io.Writer

	mapOnce sync.Once
	mapping *userns.Mapping
	mapErr  error

	// Self is the thinbox binary the launcher re-executes as the container's init;
	// "" means /proc/self/exe.
	Self string
}

// New opens the stores under p; nothing is created until a verb needs it.
func New(p Paths) *Manager {
	return &Manager{
		User:   os.Geteuid() != 0,
		Paths:  p,
		Images: image.NewStore(filepath.Join(p.Data, "images")),
		States: state.NewStore(p.Run, p.Data),
	}
}
