package main

import (
	"os"

	"github.com/thinbox/thinbox/container"
	"github.com/urfave/cli/v2"
)

func defaultPaths() container.Paths { return container.DefaultPaths() }

// manager opens the stores named by the global flags.
func manager(c *cli.Context) *container.Manager {
	m := container.New(container.Paths{Data: c.String("root"), Run: c.String("runroot")})
	m.Warn = os.Stderr
	return m
}
