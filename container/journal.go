package container

import (
	"bufio"
	"io"
	"os"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/thinbox/thinbox/units"
)

// teeToJournal gives a foreground container in a scope the same logs a service has:
// its stdout and stderr go to the caller as always, and each line also to the journal,
// attributed to thinbox-NAME.scope (OBJECT_SYSTEMD_UNIT, which `journalctl -u` matches
// for root's entries), so `thinbox logs` and `journalctl -u` show it after the fact.
// It returns the files to give the container and a wait that drains the copies once
// the container has ended. Without a journal, the caller's files are used unchanged.
type tee struct {
	stdout, stderr *os.File
	close          []*os.File
	wg             sync.WaitGroup
}

func teeToJournal(name string, stdout, stderr *os.File) *tee {
	t := &tee{stdout: stdout, stderr: stderr}
	if !journal.Enabled() || os.Geteuid() != 0 {
		return t
	}
	vars := map[string]string{
		"SYSLOG_IDENTIFIER":   name,
		"OBJECT_SYSTEMD_UNIT": units.ScopeName(name),
		"THINBOX_CONTAINER":   name,
	}
	pipe := func(dst *os.File, prio journal.Priority) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			return dst
		}
		t.close = append(t.close, w)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer r.Close()
			br := bufio.NewReaderSize(r, 64<<10)
			for {
				line, err := br.ReadBytes('\n')
				if len(line) > 0 {
					_, _ = dst.Write(line)
					msg := line
					if msg[len(msg)-1] == '\n' {
						msg = msg[:len(msg)-1]
					}
					_ = journal.Send(string(msg), prio, vars)
				}
				if err != nil {
					if err != io.EOF {
						_, _ = io.Copy(dst, br)
					}
					return
				}
			}
		}()
		return w
	}
	t.stdout = pipe(stdout, journal.PriInfo)
	t.stderr = pipe(stderr, journal.PriErr)
	return t
}

// started closes the launcher's copies of the write ends: the container holds its own.
func (t *tee) started() {
	for _, f := range t.close {
		f.Close()
	}
	t.close = nil
}

// wait drains what the container wrote before it ended.
func (t *tee) wait() {
	t.started()
	t.wg.Wait()
}
