package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/thinbox/thinbox/packaging"
	"github.com/urfave/cli/v2"
)

// gendocsCommand is the hidden verb the package build runs to write the man pages and
// the shell completion from this very command tree (c.App), so they cannot drift from
// the flags the binary accepts.
func gendocsCommand() *cli.Command {
	return &cli.Command{
		Name:   "__gendocs",
		Usage:  "write the man pages and shell completion (used by the package build)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "man", Usage: "directory for the man pages (thinbox.1, thinbox-VERB.1)"},
			&cli.StringFlag{Name: "bash", Usage: "file for the bash completion"},
			&cli.StringFlag{Name: "zsh", Usage: "file for the zsh completion"},
			&cli.StringFlag{Name: "date", Usage: "date on the pages (default: SOURCE_DATE_EPOCH, else none)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("__gendocs: takes no arguments")
			}
			date := c.String("date")
			if date == "" {
				if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
					sec, err := strconv.ParseInt(s, 10, 64)
					if err != nil {
						return usagef("__gendocs: SOURCE_DATE_EPOCH %q: %v", s, err)
					}
					date = time.Unix(sec, 0).UTC().Format("2006-01-02")
				}
			}
			if dir := c.String("man"); dir != "" {
				pages, err := packaging.ManPages(c.App, packaging.ManOptions{Date: date, Version: c.App.Name + " " + c.App.Version})
				if err != nil {
					return err
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("__gendocs: %w", err)
				}
				for _, p := range pages {
					if err := os.WriteFile(filepath.Join(dir, p.File()), p.Text, 0o644); err != nil {
						return fmt.Errorf("__gendocs: %w", err)
					}
				}
			}
			for _, out := range []struct {
				file   string
				render func(*cli.App) ([]byte, error)
			}{{c.String("bash"), packaging.BashCompletion}, {c.String("zsh"), packaging.ZshCompletion}} {
				if out.file == "" {
					continue
				}
				b, err := out.render(c.App)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out.file, b, 0o644); err != nil {
					return fmt.Errorf("__gendocs: %w", err)
				}
			}
			return nil
		},
	}
}
