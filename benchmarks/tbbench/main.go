// Command tbbench is the measuring half of thinbox's peer benchmarks (benchmarks/bench.sh
// drives it, on the host and in the qemu guest). It runs commands interleaved, round by
// round, and records each run's wall time, CPU time, peak RSS and exit status; it turns
// those records into medians and paired ratios; and it inspects what a running container
// leaves resident and which cgroup limits really apply to it.
//
// It never judges: the goals are compared in the report, by a reader. It is not part of
// `make test`.
//
//	tbbench run      -spec SPEC.json -rounds N -warmup W [-seed S] -out RUNS.csv [-errlog FILE]
//	tbbench report   -runs RUNS.csv -ref NAME [-base NAME]... [-derive NAME=A-B+C]... [-group G]... -md OUT.md [-json OUT.json]
//	tbbench procdiff -settle DUR [-payload CMDLINE] [-shared COMM]... -- CMD...
//	tbbench limits   -match CMDLINE
//	tbbench rss      PID...
//	go tool nm -size BINARY | tbbench nmsum
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "procdiff":
		err = cmdProcdiff(os.Args[2:])
	case "limits":
		err = cmdLimits(os.Args[2:])
	case "rss":
		err = cmdRSS(os.Args[2:])
	case "nmsum":
		err = cmdNmsum(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tbbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tbbench run|report|procdiff|limits|rss|nmsum ... (see the package comment)")
	os.Exit(2)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
