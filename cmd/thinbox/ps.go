package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thinbox/thinbox/state"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include containers that have ended"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("ps: takes no arguments")
			}
			recs, err := manager(c).List(c.Bool("all"))
			if err != nil {
				return err
			}
			switch c.String("format") {
			case "json":
				if recs == nil {
					recs = []*state.Record{}
				}
				return printJSON(recs)
			case "table":
				return printPS(recs)
			default:
				return usagef("ps: --format %q: use table or json", c.String("format"))
			}
		},
	}
}

func printPS(recs []*state.Record) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tIMAGE\tSTATUS\tPID\tUPTIME\tCOMMAND")
	for _, r := range recs {
		pid, uptime := "-", "-"
		if r.Status == state.Running {
			pid = fmt.Sprint(r.Pid)
			uptime = time.Since(r.Started).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Image, statusText(r), pid, uptime, commandText(r.Command))
	}
	return w.Flush()
}

func statusText(r *state.Record) string {
	switch {
	case r.Status != state.Exited:
		return string(r.Status)
	case r.OOMKilled:
		return "exited (oom-killed)"
	case r.ExitCode != nil:
		return fmt.Sprintf("exited (%d)", *r.ExitCode)
	default:
		return "exited (unknown)"
	}
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
