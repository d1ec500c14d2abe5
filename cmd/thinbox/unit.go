package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/thinbox/thinbox/container"
	"github.com/urfave/cli/v2"
)

// serviceFlags are the run flags that make a container a systemd service.
func serviceFlags() []cli.Flag {
	cat := "Service (--unit)"
	return []cli.Flag{
		&cli.StringFlag{Name: "unit", Usage: "install and start the container as the service thinbox-NAME.service", Category: cat},
		&cli.StringFlag{Name: "restart", Value: "no", Usage: "restart policy: no, on-failure or always (Restart=)", Category: cat},
		&cli.DurationFlag{Name: "restart-sec", Usage: "wait before a restart (RestartSec=), e.g. 2s", Category: cat},
		&cli.BoolFlag{Name: "enable", Usage: "start the service at boot", Category: cat},
		&cli.BoolFlag{Name: "replace", Usage: "replace an existing service of that name", Category: cat},
		&cli.BoolFlag{Name: "wait-network", Usage: "start after network-online.target", Category: cat},
		&cli.StringFlag{Name: "notify", Value: container.NotifyLauncher, Usage: "who reports readiness: launcher (once the command runs) or container (the command, through NOTIFY_SOCKET)", Category: cat},
		&cli.DurationFlag{Name: "timeout-start", Value: 90e9, Usage: "TimeoutStartSec=", Category: cat},
		&cli.DurationFlag{Name: "timeout-stop", Value: 10e9, Usage: "TimeoutStopSec=: SIGKILL this long after SIGTERM", Category: cat},
		&cli.BoolFlag{Name: "service-mode", Hidden: true, Usage: "run as the ExecStart of a thinbox service"},
	}
}

func unitOptions(c *cli.Context, spec *container.Spec) (*container.UnitOptions, error) {
	name := c.String("unit")
	if spec.Name != "" && spec.Name != name {
		return nil, usagef("--unit %s and --name %s differ: the unit names the container", name, spec.Name)
	}
	spec.Name = name
	return &container.UnitOptions{
		Restart:      c.String("restart"),
		RestartSec:   c.Duration("restart-sec"),
		TimeoutStart: c.Duration("timeout-start"),
		TimeoutStop:  c.Duration("timeout-stop"),
		WaitNetwork:  c.Bool("wait-network"),
		Notify:       c.String("notify"),
		Enable:       c.Bool("enable"),
		Replace:      c.Bool("replace"),
		Command:      "thinbox " + strings.Join(os.Args[1:], " "),
	}, nil
}

func unitCommand() *cli.Command {
	flags := append([]cli.Flag{}, runFlags()...)
	return &cli.Command{
		Name:      "unit",
		Usage:     "print the service unit `thinbox run --unit NAME` would install, without installing it",
		ArgsUsage: "--unit NAME [RUN FLAGS] IMAGE [COMMAND [ARG...]]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if !c.IsSet("unit") {
				return usagef("unit: --unit NAME is required")
			}
			spec, err := specFromFlags(c)
			if err != nil {
				return err
			}
			uo, err := unitOptions(c, spec)
			if err != nil {
				return err
			}
			_, text, err := manager(c).ServiceUnit(spec, uo)
			if err != nil {
				return err
			}
			fmt.Print(string(text))
			return nil
		},
	}
}
