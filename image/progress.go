package image

import (
	"fmt"
	"github.com/thinbox/thinbox/internal/humanize"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// progressInterval keeps a terminal readable and the cost negligible: at most ten
// redraws a second, from a ticker rather than from the read path.
const progressInterval = 100 * time.Millisecond

// progress draws one self-overwriting line ("\r") on a terminal while an import reads
// its input, and ends it with a newline.
type progress struct {
	w     io.Writer
	name  string
	total int64
	read  *atomic.Int64
	start time.Time
	width int // of the last line drawn, to blank what a shorter one leaves over
	stop  chan struct{}
	done  chan struct{}
}

func startProgress(w io.Writer, name string, total int64, read *atomic.Int64) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w, name: name, total: total, read: read, start: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw(p.line())
		}
	}
}

// finish draws the final state and the newline; safe on a nil *progress.
func (p *progress) finish(err error) {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	line := p.line()
	if err == nil {
		line = fmt.Sprintf("import %s: %s in %s (%s/s), done", p.name, humanize.Bytes(uint64(p.read.Load())),
			time.Since(p.start).Round(10*time.Millisecond), humanize.Bytes(uint64(p.rate())))
	} else {
		line += ", failed"
	}
	p.draw(line)
	fmt.Fprint(p.w, "\n")
}

func (p *progress) rate() int64 {
	secs := time.Since(p.start).Seconds()
	if secs <= 0 {
		return 0
	}
	return int64(float64(p.read.Load()) / secs)
}

func (p *progress) line() string {
	n := p.read.Load()
	s := "import " + p.name + ": " + humanize.Bytes(uint64(n))
	if p.total > 0 {
		pct := min(100*n/p.total, 100)
		s += fmt.Sprintf(" of %s (%d%%)", humanize.Bytes(uint64(p.total)), pct)
	}
	return s + ", " + humanize.Bytes(uint64(p.rate())) + "/s"
}

func (p *progress) draw(line string) {
	pad := ""
	if len(line) < p.width {
		pad = strings.Repeat(" ", p.width-len(line))
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}
