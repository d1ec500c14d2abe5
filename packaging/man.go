package packaging

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Page is one manual page in roff.
type Page struct {
	Name    string // thinbox-run
	Section int    // 1
	Text    []byte
}

// File is the page's file name: thinbox-run.1.
func (p Page) File() string { return fmt.Sprintf("%s.%d", p.Name, p.Section) }

// ManOptions are what the command tree does not say.
type ManOptions struct {
	Date    string // the .TH date (from SOURCE_DATE_EPOCH for a reproducible build); "" leaves it out
	Version string // the .TH footer, "thinbox 1.2.3"
}

// ManPages renders thinbox(1) and one page per visible verb, thinbox-VERB(1), from
// the app's own definitions: names, usage, descriptions, arguments and flags. The
// roff is written directly rather than through markdown, so no usage string can be
// misread as markup and every hyphen in an option is a real minus (\-).
func ManPages(app *cli.App, o ManOptions) ([]Page, error) {
	if app.Name == "" {
		return nil, fmt.Errorf("packaging: the app has no name")
	}
	pages := []Page{mainPage(app, o)}
	seen := map[string]bool{app.Name: true}
	for _, c := range visibleCommands(app.Commands) {
		p := verbPage(app, c, o)
		if seen[p.Name] {
			return nil, fmt.Errorf("packaging: two verbs render to the page %s", p.File())
		}
		seen[p.Name] = true
		pages = append(pages, p)
	}
	return pages, nil
}

// The parts of thinbox(1) that are prose about the system rather than flags: where
// files live, what the exit statuses mean. Paths that a flag sets are read from the
// flag's default instead of repeated here.
const exitStatusText = `0 when the command succeeded. run exits with the container's own status: 128+N
when it was killed by signal N, 127 when the command was not found in the container,
126 when it could not be executed, and 125 when thinbox itself failed. doctor exits 1
when a check failed.`

func mainPage(app *cli.App, o ManOptions) Page {
	var w roff
	w.th(app.Name, 1, o)
	w.sh("NAME")
	w.line(esc(app.Name) + ` \- ` + esc(plain(app.Usage)))
	w.sh("SYNOPSIS")
	w.line(`\fB` + esc(app.Name) + `\fR [\fIGLOBAL OPTIONS\fR] \fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGUMENTS\fR...]`)
	w.sh("DESCRIPTION")
	if app.Description != "" {
		w.text(app.Description)
	} else {
		w.text(sentence(app.Usage) + " Each command has its own page, listed below.")
	}
	flags := docFlags(app.Flags)
	if len(flags) > 0 {
		w.sh("GLOBAL OPTIONS")
		w.flags(flags)
	}
	w.sh("COMMANDS")
	var see []string
	for _, c := range visibleCommands(app.Commands) {
		w.raw(".TP")
		w.line(`\fB` + esc(strings.Join(c.Names(), ", ")) + `\fR`)
		w.line(codeSpans(sentence(c.Usage)) + ` See \fB` + esc(pageName(app, c)) + `\fR(1).`)
		see = append(see, pageName(app, c))
	}
	var env []flagDoc
	for _, f := range flags {
		if len(f.env) > 0 {
			env = append(env, f)
		}
	}
	if len(env) > 0 {
		w.sh("ENVIRONMENT")
		for _, f := range env {
			w.raw(".TP")
			w.line(`\fB` + esc(strings.Join(f.env, ", ")) + `\fR`)
			w.text("Sets " + f.long[0] + ".")
		}
	}
	w.sh("FILES")
	if d := flagDefault(flags, "--root"); d != "" {
		w.raw(".TP")
		w.line(`\fI` + esc(d) + `\fR`)
		w.text("The image store and the containers' copy-on-write layers (--root).")
	}
	if d := flagDefault(flags, "--runroot"); d != "" {
		w.raw(".TP")
		w.line(`\fI` + esc(d) + `\fR`)
		w.text("Records of the containers that exist now, on a tmpfs (--runroot).")
	}
	w.raw(".TP")
	w.line(`\fI/etc/systemd/system/` + esc(app.Name) + `\-\fRNAME\fI.service\fR`)
	w.text("The unit of a container service, written by run --unit and removed by rm.")
	w.sh("EXIT STATUS")
	w.text(exitStatusText)
	w.sh("SEE ALSO")
	refs := []string{}
	for _, s := range see {
		refs = append(refs, `\fB`+esc(s)+`\fR(1)`)
	}
	refs = append(refs, `\fBsystemctl\fR(1)`, `\fBjournalctl\fR(1)`, `\fBsystemd.resource\-control\fR(5)`)
	w.line(strings.Join(refs, ", "))
	return Page{Name: app.Name, Section: 1, Text: w.Bytes()}
}

func verbPage(app *cli.App, c *cli.Command, o ManOptions) Page {
	var w roff
	name := pageName(app, c)
	w.th(name, 1, o)
	w.sh("NAME")
	w.line(esc(name) + ` \- ` + esc(plain(c.Usage)))
	w.sh("SYNOPSIS")
	subs := visibleCommands(c.Subcommands)
	if len(subs) == 0 {
		w.line(synopsis(app, []*cli.Command{c}))
	} else {
		for i, s := range subs {
			if i > 0 {
				w.raw(".br")
			}
			w.line(synopsis(app, []*cli.Command{c, s}))
		}
	}
	w.sh("DESCRIPTION")
	if c.Description != "" {
		w.text(c.Description)
	} else {
		w.text(sentence(c.Usage))
	}
	if len(c.Aliases) > 0 {
		w.para()
		w.text("Also spelled " + strings.Join(c.Aliases, ", ") + ".")
	}
	if flags := withoutHelp(docFlags(c.Flags)); len(flags) > 0 {
		w.sh("OPTIONS")
		w.flags(flags)
	}
	if len(subs) > 0 {
		w.sh("COMMANDS")
		for _, s := range subs {
			w.ss(strings.Join(s.Names(), ", "))
			w.line(synopsis(app, []*cli.Command{c, s}))
			w.para()
			if s.Description != "" {
				w.text(s.Description)
			} else {
				w.text(sentence(s.Usage))
			}
			if flags := withoutHelp(docFlags(s.Flags)); len(flags) > 0 {
				w.para()
				w.flags(flags)
			}
		}
	}
	w.sh("SEE ALSO")
	w.line(`\fB` + esc(app.Name) + `\fR(1)`)
	return Page{Name: name, Section: 1, Text: w.Bytes()}
}

// pageName is thinbox-VERB: the name systemd units point at (Documentation=man:thinbox-run(1)).
func pageName(app *cli.App, c *cli.Command) string { return app.Name + "-" + c.Name }

// synopsis is one usage line: thinbox [GLOBAL OPTIONS] image import [OPTIONS] NAME FILE|-.
func synopsis(app *cli.App, path []*cli.Command) string {
	s := `\fB` + esc(app.Name) + `\fR [\fIGLOBAL OPTIONS\fR]`
	last := path[len(path)-1]
	for _, c := range path {
		s += ` \fB` + esc(c.Name) + `\fR`
	}
	if len(withoutHelp(docFlags(last.Flags))) > 0 {
		s += ` [\fIOPTIONS\fR]`
	}
	if last.ArgsUsage != "" {
		s += ` \fI` + esc(last.ArgsUsage) + `\fR`
	}
	return s
}

func flagDefault(fs []flagDoc, long string) string {
	for _, f := range fs {
		for _, l := range f.long {
			if l == long {
				return f.def
			}
		}
	}
	return ""
}

// roff collects the lines of a page.
type roff struct{ bytes.Buffer }

func (w *roff) raw(s string)  { w.WriteString(s + "\n") }
func (w *roff) line(s string) { w.WriteString(safeLine(s) + "\n") }
func (w *roff) para()         { w.raw(".PP") }
func (w *roff) sh(s string)   { w.raw(".SH " + quoteArg(s)) }
func (w *roff) ss(s string)   { w.raw(".SS " + quoteArg(esc(s))) }

func (w *roff) th(name string, section int, o ManOptions) {
	// groff_man(7): .TH title section [footer-middle [footer-inside [header-middle]]].
	w.raw(fmt.Sprintf(".TH %s %d %s %s %s", quoteArg(strings.ToUpper(esc(name))), section,
		quoteArg(o.Date), quoteArg(esc(o.Version)), quoteArg("User Commands")))
	// Long option names must not be hyphenated across lines.
	w.raw(".nh")
	w.raw(".ad l")
}

// text writes prose: one roff line per source line, escaped; a blank line starts a
// new paragraph; `code` becomes bold.
func (w *roff) text(s string) {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			w.para()
			continue
		}
		w.line(codeSpans(l))
	}
}

// flags writes an option list, grouped by category in order of first appearance.
func (w *roff) flags(fs []flagDoc) {
	var order []string
	groups := map[string][]flagDoc{}
	for _, f := range fs {
		if _, ok := groups[f.category]; !ok {
			order = append(order, f.category)
		}
		groups[f.category] = append(groups[f.category], f)
	}
	// Uncategorised flags first, as in --help.
	sort.SliceStable(order, func(i, j int) bool { return order[i] == "" && order[j] != "" })
	for _, cat := range order {
		if cat != "" {
			w.ss(cat)
		}
		for _, f := range groups[cat] {
			w.raw(".TP")
			var names []string
			for _, n := range f.names() {
				names = append(names, `\fB`+esc(n)+`\fR`)
			}
			head := strings.Join(names, ", ")
			if f.value != "" {
				head += `=\fI` + esc(f.value) + `\fR`
			}
			w.line(head)
			// Flag usages stay as written (lowercase fragments, as in --help); only
			// the full stop is added so the additions below read as sentences.
			u := strings.TrimSpace(f.usage)
			if u != "" && !strings.HasSuffix(u, ".") {
				u += "."
			}
			if f.def != "" {
				u += " Default: " + f.def + "."
			}
			if f.repeat {
				u += " May be given more than once."
			}
			if len(f.env) > 0 {
				u += " Environment: " + strings.Join(f.env, ", ") + "."
			}
			w.line(codeSpans(u))
		}
	}
}

// esc makes text literal for roff: a backslash is \e, a hyphen a minus sign (so that
// options copied from the page work), and a few typographic characters their named
// glyphs.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\e`)
		case '-':
			b.WriteString(`\-`)
		case '—':
			b.WriteString(`\(em`)
		case '–':
			b.WriteString(`\(en`)
		case '≥':
			b.WriteString(`\(>=`)
		case '≤':
			b.WriteString(`\(<=`)
		case '…':
			b.WriteString(`...`)
		case '‘', '’':
			b.WriteString(`'`)
		case '“', '”':
			b.WriteString(`"`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// codeSpans escapes a line of prose and sets `code` in bold.
func codeSpans(s string) string {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // an unpaired backtick: keep it as text
		return esc(s)
	}
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 {
			b.WriteString(`\fB` + esc(p) + `\fR`)
		} else {
			b.WriteString(esc(p))
		}
	}
	return b.String()
}

// plain drops backticks, for the NAME line that whatis(1) and lexgrog read.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// safeLine keeps a text line from being read as a request: a leading . or ' is
// escaped with the zero-width \&.
func safeLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

func quoteArg(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"` }

// sentence capitalises a usage string and ends it with a full stop. A first word that
// is not plain lowercase letters (uid[:gid], --unit) or is a name that is lowercase
// by convention (systemd) is left as written.
var lowercaseNames = map[string]bool{"systemd": true, "thinbox": true, "journalctl": true, "systemctl": true}

func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	first, _, _ := strings.Cut(s, " ")
	first = strings.TrimRight(first, ":,;")
	if strings.Trim(first, "abcdefghijklmnopqrstuvwxyz") == "" && !lowercaseNames[first] {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
