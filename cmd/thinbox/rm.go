package main

import "github.com/urfave/cli/v2"

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers (a running one only with -f)",
		ArgsUsage: "NAME...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("rm: a container NAME is required")
			}
			m := manager(c)
			for _, name := range c.Args().Slice() {
				if err := m.Remove(name, c.Bool("force")); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
