package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec is the list of commands one interleaved run measures.
type Spec struct {
	Rows []Row `json:"rows"`
}

// Row is one command. Pre and Post run untimed before and after every timed run (fresh
// directories, cleanup, sync); a failing Pre or Post stops the benchmark, since every
// later number would be suspect.
type Row struct {
	Group string   `json:"group"` // rows are compared within a group ("true", "echo")
	Name  string   `json:"name"`  // the tool, unique within the group
	Label string   `json:"label"` // how the report names it
	Argv  []string `json:"argv"`
	Env   []string `json:"env,omitempty"` // added to the harness's environment
	Pre   []string `json:"pre,omitempty"`
	Post  []string `json:"post,omitempty"`
}

// expand substitutes {n}, a counter unique to every run, in each argument.
func expand(argv []string, n int) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, "{n}", strconv.Itoa(n))
	}
	return out
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	specPath := fs.String("spec", "", "spec JSON")
	rounds := fs.Int("rounds", 20, "measured rounds")
	warmup := fs.Int("warmup", 3, "unrecorded rounds first")
	seed := fs.Uint64("seed", 1, "seed of the order of the commands in each round")
	outPath := fs.String("out", "", "CSV of every measured run")
	errPath := fs.String("errlog", "", "stderr of the commands (default: discarded)")
	quiet := fs.Bool("q", false, "no progress on stderr")
	gnutime := fs.String("gnutime", "", "run every command under this GNU time and record its %M as the peak RSS")
	timeout := fs.Duration("timeout", 0, "kill a command (its process group) that runs longer, and record exit 124")
	_ = fs.Parse(args)
	if *specPath == "" || *outPath == "" {
		return errors.New("run: -spec and -out are required")
	}
	b, err := os.ReadFile(*specPath)
	if err != nil {
		return err
	}
	var spec Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", *specPath, err)
	}
	if len(spec.Rows) == 0 {
		return fmt.Errorf("%s: no rows", *specPath)
	}
	out, err := os.Create(*outPath)
	if err != nil {
		return err
	}
	defer out.Close()
	w := csv.NewWriter(out)
	_ = w.Write([]string{"round", "group", "name", "wall_us", "cpu_us", "maxrss_kb", "rc"})
	var errlog io.Writer = io.Discard
	if *errPath != "" {
		f, err := os.Create(*errPath)
		if err != nil {
			return err
		}
		defer f.Close()
		errlog = f
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()

	n := 0
	total := *warmup + *rounds
	failures := 0
	for r := 1; r <= total; r++ {
		measured := r > *warmup
		// Each round runs the commands in a new order: a command that always ran right
		// after the same neighbour would inherit its after-effects (evicted page cache,
		// systemd still collecting the unit before) in every round. Seeded, so a rerun
		// repeats the orders.
		for _, i := range rand.New(rand.NewPCG(*seed, uint64(r))).Perm(len(spec.Rows)) {
			row := spec.Rows[i]
			n++
			if len(row.Pre) > 0 {
				if err := untimed(expand(row.Pre, n), errlog); err != nil {
					return fmt.Errorf("%s/%s: pre: %w", row.Group, row.Name, err)
				}
			}
			fmt.Fprintf(errlog, "=== round %d %s/%s: %s\n", r, row.Group, row.Name, strings.Join(expand(row.Argv, n), " "))
			argv := expand(row.Argv, n)
			var rssFile string
			if *gnutime != "" {
				rssFile = fmt.Sprintf("%s.rss.%d", *outPath, n)
				argv = append([]string{*gnutime, "-f", "%M", "-o", rssFile}, argv...)
			}
			res := timed(argv, row.Env, devnull, errlog, *timeout)
			if rssFile != "" {
				res.maxrss = readKiB(rssFile)
				os.Remove(rssFile)
			}
			if len(row.Post) > 0 {
				if err := untimed(expand(row.Post, n), errlog); err != nil {
					return fmt.Errorf("%s/%s: post: %w", row.Group, row.Name, err)
				}
			}
			if res.rc != 0 {
				failures++
				fmt.Fprintf(errlog, "=== exit %d\n", res.rc)
				if res.timedOut {
					fmt.Fprintf(os.Stderr, "\ntbbench: %s/%s timed out after %s and was killed\n", row.Group, row.Name, *timeout)
				}
			}
			if measured {
				_ = w.Write([]string{strconv.Itoa(r - *warmup), row.Group, row.Name,
					strconv.FormatInt(res.wall.Microseconds(), 10), strconv.FormatInt(res.cpu.Microseconds(), 10),
					strconv.FormatInt(res.maxrss, 10), strconv.Itoa(res.rc)})
			}
		}
		w.Flush()
		if !*quiet {
			what := "measured"
			if !measured {
				what = "warm-up"
			}
			fmt.Fprintf(os.Stderr, "\rtbbench: round %d/%d (%s), %d failed runs ", r, total, what, failures)
		}
	}
	if !*quiet {
		fmt.Fprintln(os.Stderr)
	}
	w.Flush()
	return w.Error()
}

type result struct {
	wall time.Duration
	cpu  time.Duration
	// maxrss is ru_maxrss of the waited-for child, in KiB. Without -gnutime it is not
	// the command's own: Go starts children with CLONE_VM|CLONE_VFORK, and exec records
	// the shared (harness's) memory's high-water mark in the child first, so every
	// command shows at least the harness's few MiB. GNU time forks a copy of its small
	// self instead, the floor the published figures have.
	maxrss   int64
	rc       int
	timedOut bool
}

// readKiB reads the number GNU time -f %M wrote (the last line: time writes a
// "Command exited with non-zero status" line before it).
func readKiB(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Fields(strings.TrimSpace(string(b)))
	if len(lines) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	return v
}

// timed runs argv once. The clock brackets fork to reap, as a shell's `time` would;
// the harness's own fork+exec costs the same for every row.
func timed(argv, env []string, devnull *os.File, errlog io.Writer, timeout time.Duration) result {
	cmd := exec.Command(argv[0], argv[1:]...)
	// Its own process group, so that a hung command is killed with all it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if f, ok := errlog.(*os.File); ok {
		cmd.Stderr = f // a file, not a pipe: no copying goroutine in the timed path
	}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var timedOut atomic.Bool
	t0 := time.Now()
	err := cmd.Start()
	if err == nil {
		if timeout > 0 {
			pid := cmd.Process.Pid
			stop := time.AfterFunc(timeout, func() {
				timedOut.Store(true)
				fmt.Fprintf(errlog, "=== timed out after %s: killing process group %d\n", timeout, pid)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			})
			defer stop.Stop()
		}
		err = cmd.Wait()
	}
	wall := time.Since(t0)
	res := result{wall: wall, rc: 0}
	if cmd.ProcessState != nil {
		res.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.maxrss = ru.Maxrss
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Exited():
			res.rc = ws.ExitStatus()
		case ws.Signaled():
			res.rc = 128 + int(ws.Signal())
		}
		if timedOut.Load() {
			res.rc, res.timedOut = 124, true
		}
	} else if err != nil {
		fmt.Fprintf(errlog, "=== cannot start: %v\n", err)
		res.rc = 255
	}
	return res
}

func untimed(argv []string, errlog io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = errlog, errlog
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}
