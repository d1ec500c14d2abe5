// Command thinbox runs containers as ordinary processes and systemd services, with no
// daemon. This package is the CLI only: flags, output and exit codes; the work is done
// by the packages it calls.
package main

import (
	"fmt"
	"os"

	"github.com/thinbox/thinbox/launcher"
	"github.com/urfave/cli/v2"
)

// version is stamped at build time: -ldflags "-X main.version=$(git describe)".
var version = "unknown"

func main() {
	// The container init path: before the CLI exists, so it adds nothing to start-up
	// and never shows in --help.
	if launcher.IsInit() {
		launcher.Init()
	}
	app := newApp()
	err := app.Run(os.Args)
	os.Exit(exitCode(err))
}

func newApp() *cli.App {
	return &cli.App{
		Name:                   "thinbox",
		Usage:                  "run containers as ordinary processes and systemd services, with no daemon",
		Version:                version,
		UseShortOptionHandling: true,
		HideHelpCommand:        true,
		// -e A=1,2 is one variable, not two.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "directory for images and container layers", Value: defaultPaths().Data, EnvVars: []string{"THINBOX_ROOT"}},
			&cli.StringFlag{Name: "runroot", Usage: "directory for container state (a tmpfs)", Value: defaultPaths().Run, EnvVars: []string{"THINBOX_RUNROOT"}},
		},
		Commands: []*cli.Command{
			runCommand(),
			psCommand(),
			inspectCommand(),
			stopCommand(),
			rmCommand(),
			imageCommand(),
			unitCommand(),
			logsCommand(),
			doctorCommand(),
			gendocsCommand(),
		},
		// Errors are printed once, by exitCode, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

// usageError is a bad flag or argument.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }
