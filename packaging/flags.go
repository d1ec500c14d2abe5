package packaging

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagDoc is what the man pages and the completion scripts need to know of one flag,
// read from the cli.Flag itself.
type flagDoc struct {
	short    []string // "-t"
	long     []string // "--tty"
	value    string   // placeholder of the value, "" when the flag takes none
	usage    string   // with the placeholder's backticks removed
	def      string   // default shown to the user, "" for none
	env      []string
	category string
	repeat   bool // may be given more than once
	files    bool // the value is a path
}

// names are all spellings, short ones first, as a user types them.
func (f flagDoc) names() []string { return append(append([]string{}, f.short...), f.long...) }

// docFlags lists the visible flags in definition order (urfave's own categories sort
// them by name; the order a verb declares them in is the order they matter in).
func docFlags(flags []cli.Flag) []flagDoc {
	var out []flagDoc
	for _, fl := range flags {
		if v, ok := fl.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		d := flagDoc{}
		for _, n := range fl.Names() {
			n = strings.TrimSpace(n)
			if len(n) == 1 {
				d.short = append(d.short, "-"+n)
			} else {
				d.long = append(d.long, "--"+n)
			}
		}
		if len(d.long) == 0 && len(d.short) == 0 {
			continue
		}
		if c, ok := fl.(cli.CategorizableFlag); ok {
			d.category = c.GetCategory()
		}
		doc, ok := fl.(cli.DocGenerationFlag)
		if !ok {
			out = append(out, d)
			continue
		}
		d.env = doc.GetEnvVars()
		d.usage = doc.GetUsage()
		if doc.TakesValue() {
			// urfave's convention: a `word` in backticks in the usage names the value.
			d.value, d.usage = placeholder(fl, d.usage)
			d.def = doc.GetDefaultText()
			if d.def == "" {
				d.def = doc.GetValue()
			}
			d.def = strings.Trim(d.def, `"`)
		}
		switch fl.(type) {
		case *cli.StringSliceFlag, *cli.IntSliceFlag, *cli.Int64SliceFlag, *cli.Float64SliceFlag,
			*cli.UintSliceFlag, *cli.Uint64SliceFlag:
			d.repeat = true
		}
		switch fl.(type) {
		case *cli.PathFlag:
			d.files = true
		}
		// --env-file=ENV_FILE names a file on the host; --workdir and --volume name
		// paths inside the container too, so only FILE is taken as a hint.
		if strings.Contains(d.value, "FILE") {
			d.files = true
		}
		out = append(out, d)
	}
	return out
}

// placeholder names a flag's value: the backticked word of its usage if there is one,
// else a word for its type, else its own name in capitals (--workdir=WORKDIR).
func placeholder(fl cli.Flag, usage string) (string, string) {
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			name := usage[i+1 : i+1+j]
			return name, usage[:i] + name + usage[i+1+j+1:]
		}
	}
	switch fl.(type) {
	case *cli.DurationFlag:
		return "DURATION", usage
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag, *cli.IntSliceFlag,
		*cli.Int64SliceFlag, *cli.UintSliceFlag, *cli.Uint64SliceFlag:
		return "N", usage
	case *cli.Float64Flag, *cli.Float64SliceFlag:
		return "NUMBER", usage
	case *cli.PathFlag:
		return "PATH", usage
	}
	name := fl.Names()[0]
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_")), usage
}

// visibleCommands are the subcommands a user is meant to see: not hidden, and not
// urfave's own help command, which --help covers.
func visibleCommands(cmds []*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			out = append(out, c)
		}
	}
	return out
}

// withoutHelp drops urfave's automatic -h/--help from a verb's flags: every verb has
// it and a page per verb need not say so.
func withoutHelp(fs []flagDoc) []flagDoc {
	var out []flagDoc
	for _, f := range fs {
		if len(f.long) == 1 && f.long[0] == "--help" {
			continue
		}
		out = append(out, f)
	}
	return out
}
