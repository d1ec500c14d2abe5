package main

import "github.com/urfave/cli/v2"

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers (a running one only with -f); a service is stopped, disabled and its unit deleted",
		ArgsUsage: "NAME...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
			&cli.BoolFlag{Name: "from-unit", Hidden: true, Usage: "a service's own clean-up: remove only the layer and record"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("rm: a container NAME is required")
			}
			m := manager(c)
			for _, name := range c.Args().Slice() {
				if err := m.Remove(c.Context, name, c.Bool("force"), c.Bool("from-unit")); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
