package main

import (
	"time"

	"github.com/urfave/cli/v2"
)

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop a running container: SIGTERM, then SIGKILL after a timeout",
		ArgsUsage: "NAME...",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before SIGKILL"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("stop: a container NAME is required")
			}
			if c.Int("time") < 0 {
				return usagef("stop: --time must not be negative")
			}
			m := manager(c)
			for _, name := range c.Args().Slice() {
				if err := m.Stop(c.Context, name, time.Duration(c.Int("time"))*time.Second); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
