package main

import (
	"context"
	"fmt"
	"github.com/thinbox/thinbox/internal/humanize"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/thinbox/thinbox/image"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage images (rootfs tarballs unpacked once into the store)",
		Subcommands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "import a rootfs tarball (plain, gzip, xz or zstd) as an image",
				ArgsUsage: "NAME FILE|-",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "replace", Usage: "replace an existing image of that name"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usagef("image import: NAME and FILE (or - for stdin) are required")
					}
					ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
					defer stop()
					var progress io.Writer
					if term.IsTerminal(int(os.Stderr.Fd())) {
						progress = os.Stderr
					}
					img, err := manager(c).ImportImage(ctx, c.Args().Get(0), c.Args().Get(1), c.Bool("replace"), os.Stdin, progress)
					if err != nil {
						return err
					}
					fmt.Printf("imported %s: %s, %d entries, %s", img.Name, humanize.Bytes(uint64(img.Size)), img.Entries, img.Digest)
					if img.Skipped > 0 {
						fmt.Printf(", %d skipped", img.Skipped)
					}
					fmt.Println()
					return nil
				},
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list images",
				Flags:   []cli.Flag{&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"}},
				Action: func(c *cli.Context) error {
					imgs, err := manager(c).Images.List()
					if err != nil {
						return err
					}
					switch c.String("format") {
					case "json":
						if imgs == nil {
							imgs = []*image.Image{}
						}
						return printJSON(imgs)
					case "table":
						w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
						fmt.Fprintln(w, "NAME\tSIZE\tCREATED\tDIGEST")
						for _, i := range imgs {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", i.Name, humanize.Bytes(uint64(i.Size)), i.Created.Local().Format("2006-01-02 15:04:05"), shortDigest(i.Digest))
						}
						return w.Flush()
					default:
						return usagef("image ls: --format %q: use table or json", c.String("format"))
					}
				},
			},
			{
				Name:      "rm",
				Usage:     "remove images no container uses",
				ArgsUsage: "NAME...",
				Action: func(c *cli.Context) error {
					if c.NArg() < 1 {
						return usagef("image rm: an image NAME is required")
					}
					for _, n := range c.Args().Slice() {
						if err := manager(c).RemoveImage(n); err != nil {
							return err
						}
					}
					return nil
				},
			},
		},
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
