package main

import "github.com/urfave/cli/v2"

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a container's record as JSON",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("inspect: exactly one NAME is required")
			}
			rec, err := manager(c).Inspect(c.Args().First())
			if err != nil {
				return err
			}
			return printJSON(rec)
		},
	}
}
