package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is what procdiff and rss report about one process.
type proc struct {
	pid, ppid int
	comm      string
	cmdline   string
	cgroup    string
	rssKiB    int64 // VmRSS
	anonKiB   int64 // anonymous memory: this process's alone, what another container adds
	fileKiB   int64 // the rest of RSS: mapped files (the binary), shared by its copies
	pssKiB    int64 // Pss from smaps_rollup: shared pages split between their users
}

// userPids lists every process that is not a kernel thread.
func userPids() map[int]bool {
	ents, _ := os.ReadDir("/proc")
	pids := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Kernel threads have an empty cmdline; so do zombies, which hold no memory.
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(b) > 0 {
			pids[pid] = true
		}
	}
	return pids
}

func kib(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

func readProc(pid int) (proc, error) {
	p := proc{pid: pid}
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return p, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.comm = v
		case "PPid":
			p.ppid, _ = strconv.Atoi(v)
		case "VmRSS":
			p.rssKiB = kib(v)
		case "RssAnon":
			p.anonKiB = kib(v)
		case "RssFile":
			p.fileKiB = kib(v)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if after, ok := strings.CutPrefix(l, "0::"); ok {
				p.cgroup = after
			}
		}
	}
	// smaps_rollup walks the page tables: exact, where status's VmRSS/RssAnon are
	// per-thread batched counters that can be off by megabytes for a Go process with
	// several threads (Linux before 6.2). Its figures replace those when readable.
	if b, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
		var rss, anon int64 = -1, -1
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			switch k {
			case "Rss":
				rss = kib(v)
			case "Pss":
				p.pssKiB = kib(v)
			case "Anonymous":
				anon = kib(v)
			}
		}
		if rss >= 0 && anon >= 0 {
			p.rssKiB, p.anonKiB, p.fileKiB = rss, anon, rss-anon
		}
	}
	return p, nil
}

// cmdProcdiff starts a container and reports every process that exists afterwards and
// did not before: the payload, whatever stays resident beside it (a supervisor, conmon,
// an init), and shared daemons started on demand (systemd-machined). The command is
// left running (a foreground supervisor such as systemd-nspawn never exits).
//
// Output, one process per line: class pid comm rss pss anon file cgroup cmdline (KiB);
// then "total CLASS rss pss anon file" lines, and "launcher PID" if the command itself
// still runs.
func cmdProcdiff(args []string) error {
	fs := flag.NewFlagSet("procdiff", flag.ExitOnError)
	settle := fs.Duration("settle", 3*time.Second, "wait this long after starting before looking")
	payload := fs.String("payload", "", "the payload's exact command line (busybox: \"sleep 1000\")")
	var shared stringList
	fs.Var(&shared, "shared", "comm of a daemon shared by all containers (repeatable)")
	logPath := fs.String("log", "", "the command's stdout and stderr (default /dev/null)")
	_ = fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("procdiff: no command")
	}
	before := userPids()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if *logPath != "" {
		out, err = os.Create(*logPath)
	}
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	time.Sleep(*settle)
	launcherRunning := true
	select {
	case err := <-exited:
		launcherRunning = false
		if err != nil {
			return fmt.Errorf("procdiff: %s: %w", strings.Join(argv, " "), err)
		}
	default:
	}
	self := os.Getpid()
	var news []int
	for pid := range userPids() {
		if !before[pid] && pid != self {
			news = append(news, pid)
		}
	}
	slices.Sort(news)
	totals := map[string][4]int64{}
	for _, pid := range news {
		p, err := readProc(pid)
		if err != nil {
			continue // gone meanwhile
		}
		class := "resident"
		switch {
		case *payload != "" && p.cmdline == *payload:
			class = "payload"
		case slices.Contains(shared, p.comm):
			class = "shared"
		}
		t := totals[class]
		totals[class] = [4]int64{t[0] + p.rssKiB, t[1] + p.pssKiB, t[2] + p.anonKiB, t[3] + p.fileKiB}
		fmt.Printf("%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", class, p.pid, p.comm, p.rssKiB, p.pssKiB, p.anonKiB, p.fileKiB, p.cgroup, p.cmdline)
	}
	for _, c := range []string{"payload", "resident", "shared"} {
		t := totals[c]
		fmt.Printf("total\t%s\t%d\t%d\t%d\t%d\n", c, t[0], t[1], t[2], t[3])
	}
	if launcherRunning {
		fmt.Printf("launcher\t%d\n", cmd.Process.Pid)
	}
	return nil
}

func cmdRSS(args []string) error {
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return err
		}
		p, err := readProc(pid)
		if err != nil {
			return err
		}
		fmt.Printf("%d\t%s\t%d\t%d\t%d\t%d\t%s\n", p.pid, p.comm, p.rssKiB, p.pssKiB, p.anonKiB, p.fileKiB, p.cmdline)
	}
	return nil
}

// cmdLimits prints, for each process whose command line is exactly -match, its cgroup and the
// memory, pids and cpu limits that bind it: the tightest along the path to the root,
// with the cgroup that sets it (a runtime may set them on the scope or on a child).
func cmdLimits(args []string) error {
	fs := flag.NewFlagSet("limits", flag.ExitOnError)
	match := fs.String("match", "", "the payload's exact command line")
	_ = fs.Parse(args)
	if *match == "" {
		return errors.New("limits: -match is required")
	}
	found := false
	for pid := range userPids() {
		p, err := readProc(pid)
		if err != nil || p.cmdline != *match || pid == os.Getpid() {
			continue
		}
		found = true
		fmt.Printf("pid %d (%s) cgroup %s\n", pid, p.comm, p.cgroup)
		for _, f := range []string{"memory.max", "pids.max", "cpu.max"} {
			v, where := tightest(p.cgroup, f)
			fmt.Printf("  %s = %s (set on %s)\n", f, v, where)
		}
	}
	if !found {
		return fmt.Errorf("limits: no process matches %q", *match)
	}
	return nil
}

func tightest(cg, file string) (string, string) {
	best, where := "max", "-"
	bestVal := float64(-1)
	for dir := cg; ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", dir, file))
		if err == nil {
			v := strings.TrimSpace(string(b))
			if x := limitValue(file, v); x >= 0 && (bestVal < 0 || x < bestVal) {
				best, where, bestVal = v, dir, x
			}
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	return best, where
}

// limitValue makes limits comparable: bytes, tasks, or CPUs for cpu.max ("50000 100000"
// is 0.5); -1 for "max".
func limitValue(file, v string) float64 {
	f := strings.Fields(v)
	if len(f) == 0 || f[0] == "max" {
		return -1
	}
	q, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	if file == "cpu.max" && len(f) == 2 {
		p, _ := strconv.ParseFloat(f[1], 64)
		if p > 0 {
			return q / p
		}
	}
	return q
}
