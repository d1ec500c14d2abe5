package container

import (
	"path/filepath"

	"github.com/thinbox/thinbox/image"
	"github.com/thinbox/thinbox/state"
)

// Paths are the roots thinbox keeps its files under.
type Paths struct {
	Data string // images and container layers: /var/lib/thinbox
	Run  string // container records: /run/thinbox (a tmpfs)
}

// DefaultPaths are root's.
var DefaultPaths = Paths{Data: "/var/lib/thinbox", Run: "/run/thinbox"}

// Manager runs verbs against one set of stores.
type Manager struct {
	Paths  Paths
	Images *image.Store
	States *state.Store
	// Self is the thinbox binary the launcher re-executes as the container's init;
	// "" means /proc/self/exe.
	Self string
}

// New opens the stores under p; nothing is created until a verb needs it.
func New(p Paths) *Manager {
	return &Manager{
		Paths:  p,
		Images: image.NewStore(filepath.Join(p.Data, "images")),
		States: state.NewStore(p.Run, p.Data),
	}
}
