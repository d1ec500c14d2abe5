package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// sample is one measured run.
type sample struct {
	wall, cpu float64 // ms
	maxrss    int64   // KiB
	rc        int
}

// series is one row of one group: its runs by round.
type series struct {
	group, name string
	byRound     map[int]sample
	derived     bool
}

// Summary is what the report computes for one row; -json writes them all, for the chart
// and for bench.sh.
type Summary struct {
	Group     string             `json:"group"`
	Name      string             `json:"name"`
	Label     string             `json:"label"`
	Runs      int                `json:"runs"`
	Failed    int                `json:"failed"`
	MedianMS  float64            `json:"median_ms"`
	MinMS     float64            `json:"min_ms"`
	MaxMS     float64            `json:"max_ms"`
	CPUMS     float64            `json:"cpu_ms"`
	MaxRSSKiB int64              `json:"maxrss_kib"`
	Ratios    map[string]float64 `json:"ratios"` // paired, median over rounds: base name → ratio
	Derived   bool               `json:"derived,omitempty"`
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	runsPath := fs.String("runs", "", "CSV written by tbbench run")
	rssPath := fs.String("rss", "", "CSV written by tbbench run -gnutime: the peak RSS column comes from it")
	specPath := fs.String("spec", "", "the spec, for the rows' labels and order")
	ref := fs.String("ref", "ref", "the reference row of every group")
	var bases, derives, groups stringList
	fs.Var(&bases, "base", "another row to give paired ratios to (repeatable)")
	fs.Var(&derives, "derive", "'NAME = A - B + C' (spaces around operators; names may contain '-'): a row computed round by round from others in the same group (repeatable)")
	fs.Var(&groups, "group", "groups to report, in this order (default: all)")
	mdPath := fs.String("md", "", "markdown table out")
	jsonPath := fs.String("json", "", "summaries out")
	labelDerived := fs.String("derived-label", "", "NAME=LABEL for derived rows (comma-separated)")
	_ = fs.Parse(args)
	if *runsPath == "" {
		return errors.New("report: -runs is required")
	}
	labels := map[string]string{}
	var order []string // group/name in spec order
	if *specPath != "" {
		b, err := os.ReadFile(*specPath)
		if err != nil {
			return err
		}
		var spec Spec
		if err := json.Unmarshal(b, &spec); err != nil {
			return err
		}
		for _, r := range spec.Rows {
			labels[r.Group+"/"+r.Name] = r.Label
			order = append(order, r.Group+"/"+r.Name)
		}
	}
	if *labelDerived != "" {
		for _, kv := range strings.Split(*labelDerived, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				labels["*/"+k] = v
			}
		}
	}
	all, err := readRuns(*runsPath)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		for _, s := range all {
			if !slices.Contains(groups, s.group) {
				groups = append(groups, s.group)
			}
		}
	}
	// Derived rows, group by group.
	for _, d := range derives {
		f := strings.Fields(d)
		if len(f) < 3 || f[1] != "=" || len(f)%2 == 0 {
			return fmt.Errorf("report: bad -derive %q (want 'NAME = A - B + C')", d)
		}
		for _, g := range groups {
			if s := derive(all, g, f[0], f[2], f[3:]); s != nil {
				all[g+"/"+f[0]] = s
				order = append(order, g+"/"+f[0])
			}
		}
	}
	var rss map[string]*series
	if *rssPath != "" {
		if rss, err = readRuns(*rssPath); err != nil {
			return err
		}
	}
	var sums []Summary
	for _, g := range groups {
		refS := all[g+"/"+*ref]
		var keys []string
		for _, k := range order {
			if strings.HasPrefix(k, g+"/") && all[k] != nil && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for k, s := range all { // rows missing from the spec: at the end
			if s.group == g && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			s := all[k]
			sum := summarize(s)
			sum.MaxRSSKiB = 0
			if r := rss[k]; r != nil {
				sum.MaxRSSKiB = summarize(r).MaxRSSKiB
			}
			sum.Label = labels[k]
			if sum.Label == "" {
				sum.Label = labels["*/"+s.name]
			}
			if sum.Label == "" {
				sum.Label = s.name
			}
			sum.Ratios = map[string]float64{}
			if refS != nil {
				sum.Ratios[*ref] = pairedRatio(s, refS)
			}
			for _, b := range bases {
				if bs := all[g+"/"+b]; bs != nil {
					sum.Ratios[b] = pairedRatio(s, bs)
				}
			}
			sums = append(sums, sum)
		}
	}
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(sums, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var out io.Writer = os.Stdout
	if *mdPath != "" {
		f, err := os.Create(*mdPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	writeTable(out, sums, *ref, bases)
	return nil
}

func readRuns(path string) (map[string]*series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	all := map[string]*series{}
	for i, r := range recs {
		if i == 0 || len(r) < 7 {
			continue
		}
		round, _ := strconv.Atoi(r[0])
		wall, _ := strconv.ParseFloat(r[3], 64)
		cpu, _ := strconv.ParseFloat(r[4], 64)
		rss, _ := strconv.ParseInt(r[5], 10, 64)
		rc, _ := strconv.Atoi(r[6])
		k := r[1] + "/" + r[2]
		s := all[k]
		if s == nil {
			s = &series{group: r[1], name: r[2], byRound: map[int]sample{}}
			all[k] = s
		}
		s.byRound[round] = sample{wall: wall / 1000, cpu: cpu / 1000, maxrss: rss, rc: rc}
	}
	return all, nil
}

// derive builds NAME = A ± B ± ... round by round; rounds where any term failed or is
// missing are left out.
func derive(all map[string]*series, g, name, first string, rest []string) *series {
	a := all[g+"/"+first]
	if a == nil {
		return nil
	}
	type term struct {
		s    *series
		sign float64
	}
	var terms []term
	for i := 0; i+1 < len(rest); i += 2 {
		t := all[g+"/"+rest[i+1]]
		if t == nil || (rest[i] != "+" && rest[i] != "-") {
			return nil
		}
		sign := 1.0
		if rest[i] == "-" {
			sign = -1
		}
		terms = append(terms, term{t, sign})
	}
	d := &series{group: g, name: name, byRound: map[int]sample{}, derived: true}
rounds:
	for r, x := range a.byRound {
		if x.rc != 0 {
			continue
		}
		v, c := x.wall, x.cpu
		for _, t := range terms {
			y, ok := t.s.byRound[r]
			if !ok || y.rc != 0 {
				continue rounds
			}
			v += t.sign * y.wall
			c += t.sign * y.cpu
		}
		d.byRound[r] = sample{wall: v, cpu: c}
	}
	return d
}

func summarize(s *series) Summary {
	var wall, cpu []float64
	var rss []int64
	failed := 0
	for _, x := range s.byRound {
		if x.rc != 0 {
			failed++
			continue
		}
		wall = append(wall, x.wall)
		cpu = append(cpu, x.cpu)
		rss = append(rss, x.maxrss)
	}
	sum := Summary{Group: s.group, Name: s.name, Runs: len(s.byRound), Failed: failed, Derived: s.derived}
	if len(wall) == 0 {
		return sum
	}
	slices.Sort(wall)
	sum.MedianMS, sum.MinMS, sum.MaxMS = median(wall), wall[0], wall[len(wall)-1]
	sum.CPUMS = median(cpu)
	slices.Sort(rss)
	sum.MaxRSSKiB = rss[len(rss)/2]
	return sum
}

// pairedRatio is the median over rounds of s/base within the same round, so that drift
// (the machine getting slower for a while) cancels out.
func pairedRatio(s, base *series) float64 {
	var rs []float64
	for r, x := range s.byRound {
		y, ok := base.byRound[r]
		if !ok || x.rc != 0 || y.rc != 0 || y.wall <= 0 {
			continue
		}
		rs = append(rs, x.wall/y.wall)
	}
	if len(rs) == 0 {
		return math.NaN()
	}
	return median(rs)
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func writeTable(w io.Writer, sums []Summary, ref string, bases []string) {
	hdr := "| group | tool | median wall ms [min–max] | ×" + ref + " (paired)"
	sep := "| --- | --- | --- | ---"
	for _, b := range bases {
		hdr += " | ×" + b + " (paired)"
		sep += " | ---"
	}
	hdr += " | cpu ms | peak RSS KiB (GNU time %M) | runs ok |"
	sep += " | --- | --- | --- |"
	fmt.Fprintln(w, hdr)
	fmt.Fprintln(w, sep)
	for _, s := range sums {
		line := fmt.Sprintf("| %s | %s | %s | %s", s.Group, s.Label, fmtWall(s), fmtRatio(s.Ratios[ref]))
		for _, b := range bases {
			r, ok := s.Ratios[b]
			if !ok {
				line += " | –"
			} else {
				line += " | " + fmtRatio(r)
			}
		}
		rss := "–"
		if !s.Derived && s.MaxRSSKiB > 0 {
			rss = groupDigits(s.MaxRSSKiB)
		}
		ok := fmt.Sprintf("%d/%d", s.Runs-s.Failed, s.Runs)
		if s.Derived {
			ok = fmt.Sprintf("%d rounds", s.Runs)
		}
		line += fmt.Sprintf(" | %s | %s | %s |", fmtMS(s.CPUMS), rss, ok)
		fmt.Fprintln(w, line)
	}
}

func fmtWall(s Summary) string {
	if s.Runs == s.Failed {
		return "failed"
	}
	if s.Derived {
		return fmtMS(s.MedianMS)
	}
	return fmt.Sprintf("%s [%s–%s]", fmtMS(s.MedianMS), fmtMS(s.MinMS), fmtMS(s.MaxMS))
}

func fmtMS(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "–"
	}
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
