package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show a container's output from the journal (services, and foreground containers in a scope)",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new entries"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: -1, Usage: "show only the last N entries"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("logs: exactly one NAME is required")
			}
			matches, err := manager(c).LogMatches(c.Args().First())
			if err != nil {
				return err
			}
			args := append([]string{"journalctl", "--no-pager", "-o", "cat"}, matches...)
			if c.Bool("follow") {
				args = append(args, "-f")
			}
			if n := c.Int("lines"); n >= 0 {
				args = append(args, "-n", strconv.Itoa(n))
			}
			path, err := exec.LookPath("journalctl")
			if err != nil {
				return err
			}
			return syscall.Exec(path, args, os.Environ())
		},
	}
}
