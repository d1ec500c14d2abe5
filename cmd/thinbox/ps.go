package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thinbox/thinbox/container"
	"github.com/thinbox/thinbox/state"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list containers: foreground ones, their scopes, and services",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include containers that have ended and services that are stopped"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("ps: takes no arguments")
			}
			format := c.String("format")
			if format != "table" && format != "json" {
				return usagef("ps: --format %q: use table or json", format)
			}
			entries, err := manager(c).List(c.Context, c.Bool("all"))
			if err != nil {
				return err
			}
			if format == "json" {
				if entries == nil {
					entries = []*container.Entry{}
				}
				return printJSON(entries)
			}
			return printPS(entries)
		},
	}
}

func printPS(entries []*container.Entry) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tIMAGE\tSTATUS\tPID\tUPTIME\tLIMITS\tCOMMAND")
	for _, e := range entries {
		pid, uptime := "-", "-"
		if e.Status == state.Running {
			pid = fmt.Sprint(e.Pid)
			uptime = time.Since(e.Started).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Image, statusText(e), pid, uptime, limitsText(e.Applied), commandText(e.Command))
	}
	return w.Flush()
}

func statusText(e *container.Entry) string {
	var s string
	switch {
	case e.Status != state.Exited:
		s = string(e.Status)
	case e.OOMKilled:
		s = "exited (oom-killed)"
	case e.ExitCode != nil:
		s = fmt.Sprintf("exited (%d)", *e.ExitCode)
	case e.Service:
		s = "stopped"
	default:
		s = "exited (unknown)"
	}
	if e.Systemd != nil {
		kind := "scope"
		if e.Service {
			kind = "service"
		}
		s += fmt.Sprintf(", %s %s (%s)", kind, e.Systemd.Active, e.Systemd.Sub)
	}
	return s
}

func limitsText(applied map[string]string) string {
	if len(applied) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range applied {
		parts = append(parts, k+"="+strings.ReplaceAll(v, " ", "/"))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func commandText(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
