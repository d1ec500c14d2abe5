package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/thinbox/thinbox/internal/doctor"
	"github.com/thinbox/thinbox/systemd"
	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check that this machine can run thinbox, and say how to fix what it lacks",
		Description: "Prints one line per check: OK; WARN when thinbox works but a feature does not (limits,\n" +
			"services, rootless containers); FAIL when containers cannot run until it is fixed. Each\n" +
			"WARN and FAIL names the fix. Checks: kernel, namespaces, cgroup v2 and its controllers,\n" +
			"systemd and its bus, overlayfs on the store's filesystem, subordinate ids, newuidmap,\n" +
			"the user namespace sysctls and AppArmor restriction, the userland architecture, and\n" +
			"free space in the store. Run it with sudo: root can test mounts and namespaces, and\n" +
			"the subordinate ids are checked for the user who ran sudo. Exits 1 when a check fails.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("doctor: takes no arguments")
			}
			format := c.String("format")
			if format != "table" && format != "json" {
				return usagef("doctor: --format %q: use table or json", format)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			minSystemd := map[string]int{}
			for _, l := range systemd.Table {
				if l.MinSystemd > 0 {
					minSystemd[l.Flag] = l.MinSystemd
				}
			}
			results := doctor.Run(ctx, &doctor.Env{
				Root:       "/",
				Probe:      doctor.NewHost(),
				Euid:       os.Geteuid(),
				User:       invokingUser(),
				Store:      c.String("root"),
				MinSystemd: minSystemd,
			})
			n := doctor.Count(results)
			if format == "json" {
				if err := printJSON(struct {
					Checks  []doctor.Result       `json:"checks"`
					Summary map[doctor.Status]int `json:"summary"`
				}{results, n}); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					line := fmt.Sprintf("%-4s  %-18s  %s", r.Status, r.Check, r.Detail)
					if r.Fix != "" {
						line += "; fix: " + r.Fix
					}
					fmt.Println(line)
				}
				fmt.Printf("doctor: %d OK, %d WARN, %d FAIL\n", n[doctor.OK], n[doctor.Warn], n[doctor.Fail])
			}
			if n[doctor.Fail] > 0 {
				return cli.Exit(fmt.Sprintf("doctor: %d check(s) failed", n[doctor.Fail]), 1)
			}
			return nil
		},
	}
}

// invokingUser is who the subordinate-id check is for: the user behind sudo, else the
// caller.
func invokingUser() string {
	if os.Geteuid() == 0 {
		if u := os.Getenv("SUDO_USER"); u != "" {
			return u
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
