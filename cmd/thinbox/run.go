package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/thinbox/thinbox/container"
	"github.com/thinbox/thinbox/systemd"
	"github.com/thinbox/thinbox/units"
	"github.com/urfave/cli/v2"
)

func runFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "container name (A-Z a-z 0-9 _ . -, at most 63; generated when absent)"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the container's layer and record when it ends"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a pseudo-terminal"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "pass standard input to the command"},
		// KeepSpace: a value is data, byte for byte; urfave/cli trims it otherwise.
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, KeepSpace: true, Usage: "set KEY=VALUE in the container (KEY alone passes the caller's value)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read KEY=VALUE lines from a file"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container (created if missing)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "uid[:gid] or name[:group] from the image's /etc/passwd"},
		&cli.StringFlag{Name: "hostname", Usage: "hostname inside the container (default: the name)"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the container's root read-only"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind-mount SRC:DST[:ro] from the host"},
		&cli.BoolFlag{Name: "init", Value: true, Usage: "run a minimal init as PID 1 that reaps zombies and forwards signals (default)"},
		&cli.BoolFlag{Name: "no-init", Usage: "make the command itself PID 1"},
		&cli.StringFlag{Name: "net", Value: "none", Usage: "network: none (own namespace, lo only) or host"},
		&cli.StringFlag{Name: "userns", Usage: "auto: as root, give the container its own block of 65536 ids (from the \"thinbox\" entry of /etc/subuid), so its root is not the host's"},
		&cli.StringFlag{Name: "slice", Usage: "systemd slice for the container's scope (default thinbox.slice)"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a capability (NET_ADMIN or CAP_NET_ADMIN; ALL); a non-root --user keeps only these", Category: "Security"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a capability from the default set (ALL drops every one)", Category: "Security"},
		&cli.BoolFlag{Name: "privileged", Usage: "DANGEROUS: every capability, no seccomp, nothing masked; root in the container is root on the host", Category: "Security"},
		&cli.StringFlag{Name: "seccomp", Usage: "seccomp profile: unconfined, or a Docker/OCI JSON file (default: thinbox's, like Docker's)", Category: "Security"},
		&cli.BoolFlag{Name: "allow-new-privileges", Usage: "leave no_new_privs unset so setuid binaries and file capabilities work", Category: "Security"},
	}
	flags = append(flags, serviceFlags()...)
	// One flag per row of the limits table, so flags, D-Bus properties and unit
	// directives cannot drift apart.
	for _, l := range systemd.Table {
		flags = append(flags, &cli.StringFlag{Name: l.Flag, Usage: l.Usage, Category: "Limits (cgroup v2, through systemd)"})
	}
	return flags
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a new container",
		ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		Description: "Creates a container from IMAGE with its own pid, mount, uts, ipc, net and cgroup\n" +
			"namespaces and a copy-on-write layer, runs COMMAND (default /bin/sh) in it, and exits\n" +
			"with its status (128+N when killed by signal N; 127 command not found; 126 not\n" +
			"executable; 125 thinbox itself failed).",
		Flags: runFlags(),
		Action: func(c *cli.Context) error {
			spec, err := specFromFlags(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			m := manager(c)
			switch {
			case c.Bool("service-mode"):
				return m.RunService(ctx, spec, c.String("notify"))
			case c.IsSet("unit"):
				uo, err := unitOptions(c, spec)
				if err != nil {
					return err
				}
				if err := m.InstallUnit(ctx, spec, uo); err != nil {
					return err
				}
				fmt.Printf("%s started", units.ServiceName(spec.Name))
				if uo.Enable {
					fmt.Print(" and enabled")
				}
				fmt.Printf(" (systemctl status %s)\n", units.ServiceName(spec.Name))
				return nil
			}
			code, err := m.Run(ctx, spec, container.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			if err != nil {
				return err
			}
			return exitStatus(code)
		},
	}
}

func specFromFlags(c *cli.Context) (*container.Spec, error) {
	if c.NArg() < 1 {
		return nil, usagef("run: an IMAGE is required")
	}
	if c.IsSet("init") && c.IsSet("no-init") {
		return nil, usagef("run: --init and --no-init contradict each other")
	}
	spec := &container.Spec{
		Slice:       c.String("slice"),
		Name:        c.String("name"),
		Image:       c.Args().First(),
		Args:        c.Args().Tail(),
		Env:         c.StringSlice("env"),
		EnvFiles:    c.StringSlice("env-file"),
		Workdir:     c.String("workdir"),
		User:        c.String("user"),
		Hostname:    c.String("hostname"),
		ReadOnly:    c.Bool("read-only"),
		Volumes:     c.StringSlice("volume"),
		TTY:         c.Bool("tty"),
		Interactive: c.Bool("interactive"),
		Remove:      c.Bool("rm"),
		Init:        c.Bool("init") && !c.Bool("no-init"),
		Net:         c.String("net"),
		UserNS:      c.String("userns"),

		CapAdd:             c.StringSlice("cap-add"),
		CapDrop:            c.StringSlice("cap-drop"),
		Privileged:         c.Bool("privileged"),
		Seccomp:            c.String("seccomp"),
		AllowNewPrivileges: c.Bool("allow-new-privileges"),
	}
	for _, l := range systemd.Table {
		if c.IsSet(l.Flag) {
			if err := spec.Limits.Set(l.Flag, c.String(l.Flag)); err != nil {
				return nil, usageError{err}
			}
		}
	}
	return spec, nil
}
