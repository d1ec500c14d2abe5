package packaging

import (
	"github.com/thinbox/thinbox/internal/testenv"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// testApp has what the real CLI has: global flags with env vars, categories, aliases,
// slices, durations, hidden flags and verbs, subcommands, backticks and hyphens.
func testApp() *cli.App {
	app := &cli.App{
		Name:    "thinbox",
		Usage:   "run containers as ordinary processes and systemd services",
		Version: "1.2.3",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/var/lib/thinbox", Usage: "directory for images", EnvVars: []string{"THINBOX_ROOT"}},
			&cli.StringFlag{Name: "runroot", Value: "/run/thinbox", Usage: "directory for state"},
		},
		Commands: []*cli.Command{
			{
				Name:        "run",
				Usage:       "run a command in a new container",
				ArgsUsage:   "IMAGE [COMMAND [ARG...]]",
				Description: "Creates a container.\n.starts with a dot\nback\\slash",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "container name"},
					&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a pseudo-terminal"},
					&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set KEY=VALUE"},
					&cli.StringSliceFlag{Name: "env-file", Usage: "read KEY=VALUE lines from a `FILE`"},
					&cli.StringFlag{Name: "unit", Usage: "install thinbox-NAME.service", Category: "Service (--unit)"},
					&cli.DurationFlag{Name: "timeout-stop", Value: 10e9, Usage: "TimeoutStopSec=", Category: "Service (--unit)"},
					&cli.StringFlag{Name: "memory", Usage: "memory limit (MemoryMax=)", Category: "Limits"},
					&cli.BoolFlag{Name: "service-mode", Hidden: true},
				},
			},
			{Name: "stop", Usage: "stop containers", ArgsUsage: "NAME...", Flags: []cli.Flag{
				&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait"},
			}},
			{Name: "unit", Usage: "print the unit `thinbox run --unit NAME` would install"},
			{
				Name:  "image",
				Usage: "manage images",
				Subcommands: []*cli.Command{
					{Name: "import", Usage: "import a tarball", ArgsUsage: "NAME FILE|-", Flags: []cli.Flag{&cli.BoolFlag{Name: "replace"}}},
					{Name: "ls", Aliases: []string{"list"}, Usage: "list images", Flags: []cli.Flag{&cli.StringFlag{Name: "format", Value: "table"}}},
					{Name: "rm", Usage: "remove images", ArgsUsage: "NAME..."},
				},
			},
			{Name: "__gendocs", Hidden: true, Usage: "secret"},
		},
	}
	app.Setup()
	return app
}

// withArgKinds swaps the argument table for the test app's verbs.
func withArgKinds(t *testing.T, k map[string][]string) {
	old := ArgKinds
	ArgKinds = k
	t.Cleanup(func() { ArgKinds = old })
}

var testKinds = map[string][]string{
	"run":          {argImages},
	"stop":         {argContainers + "..."},
	"image import": {argNone, argFiles},
	"image rm":     {argImages + "..."},
}

func pages(t *testing.T) map[string]string {
	t.Helper()
	ps, err := ManPages(testApp(), ManOptions{Date: "2026-01-02", Version: "thinbox 1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.File()] = string(p.Text)
	}
	return m
}

func TestManPagesOnePerVisibleVerb(t *testing.T) {
	m := pages(t)
	for _, want := range []string{"thinbox.1", "thinbox-run.1", "thinbox-stop.1", "thinbox-unit.1", "thinbox-image.1"} {
		if _, ok := m[want]; !ok {
			t.Errorf("no page %s", want)
		}
	}
	if len(m) != 5 {
		t.Errorf("got %d pages, want 5 (hidden verbs get none)", len(m))
	}
	for f, text := range m {
		if strings.Contains(text, "__gendocs") || strings.Contains(text, "service\\-mode") {
			t.Errorf("%s shows a hidden verb or flag", f)
		}
	}
}

func TestManPageRoff(t *testing.T) {
	run := pages(t)["thinbox-run.1"]
	for _, want := range []string{
		`.TH "THINBOX\-RUN" 1 "2026-01-02" "thinbox 1.2.3" "User Commands"`,
		".SH \"NAME\"\nthinbox\\-run \\- run a command in a new container\n", // what lexgrog/whatis parse
		`\fBthinbox\fR [\fIGLOBAL OPTIONS\fR] \fBrun\fR [\fIOPTIONS\fR] \fIIMAGE [COMMAND [ARG...]]\fR`,
		`\fB\-t\fR, \fB\-\-tty\fR`,                                       // short names first, hyphens are minus signs
		`\fB\-e\fR, \fB\-\-env\fR=\fIENV\fR`,                             // value placeholder from the name
		`\fB\-\-env\-file\fR=\fIFILE\fR`,                                 // ... or from urfave's backticks
		"read KEY=VALUE lines from a FILE. May be given more than once.", // backticks gone
		`.SS "Service (\-\-unit)"`,
		"TimeoutStopSec=. Default: 10s.",
		"\\&.starts with a dot", // a leading dot is not a request
		`back\eslash`,
	} {
		if !strings.Contains(run, want) {
			t.Errorf("thinbox-run.1 lacks %q:\n%s", want, run)
		}
	}
	// Definition order, not urfave's alphabetical one; uncategorised first.
	if i, j := strings.Index(run, `\-\-name`), strings.Index(run, `\-\-memory`); i < 0 || j < 0 || i > j {
		t.Errorf("flags out of order: --name at %d, --memory at %d", i, j)
	}
	unit := pages(t)["thinbox-unit.1"]
	if !strings.Contains(unit, "thinbox\\-unit \\- print the unit thinbox run \\-\\-unit NAME would install\n") {
		t.Errorf("NAME line keeps backticks or markup:\n%s", unit)
	}
	if !strings.Contains(unit, `\fBthinbox run \-\-unit NAME\fR`) {
		t.Errorf("a `code` span in prose is not bold:\n%s", unit)
	}
}

func TestManMainPage(t *testing.T) {
	p := pages(t)["thinbox.1"]
	for _, want := range []string{
		".SH \"GLOBAL OPTIONS\"", `\fB\-\-root\fR=\fIROOT\fR`, "Default: /var/lib/thinbox. Environment: THINBOX_ROOT.",
		".SH \"ENVIRONMENT\"", `\fBTHINBOX_ROOT\fR`,
		".SH \"FILES\"", `\fI/var/lib/thinbox\fR`, `\fI/run/thinbox\fR`,
		`See \fBthinbox\-run\fR(1).`, `\fBthinbox\-image\fR(1)`, ".SH \"EXIT STATUS\"",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("thinbox.1 lacks %q:\n%s", want, p)
		}
	}
}

func TestManSubcommands(t *testing.T) {
	p := pages(t)["thinbox-image.1"]
	for _, want := range []string{
		`\fBthinbox\fR [\fIGLOBAL OPTIONS\fR] \fBimage\fR \fBimport\fR [\fIOPTIONS\fR] \fINAME FILE|\-\fR`,
		".SS \"ls, list\"", `\fB\-\-format\fR=\fIFORMAT\fR`, "Default: table.",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("thinbox-image.1 lacks %q:\n%s", want, p)
		}
	}
}

// TestManPagesRender runs the pages through man(1) with warnings on, as lintian does.
func TestManPagesRender(t *testing.T) {
	testenv.Require(t, testenv.Command("man"))
	dir := t.TempDir()
	for f, text := range pages(t) {
		path := filepath.Join(dir, f)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("man %s: %v\n%s", f, err, out)
			continue
		}
		// Warnings go to stderr; the page itself to stdout. Combined output that
		// mentions troff or a warning means groff complained.
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "troff:") || strings.Contains(l, "warning:") {
				t.Errorf("man %s: %s", f, l)
			}
		}
	}
}

func TestArgKindsMustNameRealVerbs(t *testing.T) {
	withArgKinds(t, map[string][]string{"run": {argImages}, "gone": {argContainers}})
	if _, err := BashCompletion(testApp()); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("a stale ArgKinds entry was accepted: %v", err)
	}
	if _, err := ZshCompletion(testApp()); err == nil {
		t.Fatal("a stale ArgKinds entry was accepted by the zsh generator")
	}
}

// complete runs the generated bash completion for a command line (the cursor at its
// end; a trailing space starts a new word) and returns COMPREPLY. A stub thinbox on
// PATH answers image ls and ps -a as the real one does.
func complete(t *testing.T, script, line string) []string {
	t.Helper()
	dir := t.TempDir()
	stub := "#!/bin/sh\ncase \"$1 $2\" in\n" +
		"'image ls') printf 'NAME SIZE CREATED DIGEST\\nbusybox 2 MiB x y\\nalpine 8 MiB x y\\n' ;;\n" +
		"'ps -a') printf 'NAME IMAGE STATUS\\nsensor busybox running\\nweb alpine exited\\n' ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "thinbox"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "completion.bash"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	driver := `set -u
source "$DIR/completion.bash"
read -ra COMP_WORDS <<<"$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_thinbox
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", driver)
	cmd.Env = append(os.Environ(), "DIR="+dir, "LINE="+line, "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
	}
	var words []string
	for _, w := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

func TestBashCompletion(t *testing.T) {
	testenv.Require(t, testenv.Command("bash"))
	withArgKinds(t, testKinds)
	b, err := BashCompletion(testApp())
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for _, c := range []struct{ line, want string }{
		{"thinbox ", "run stop unit image"},           // verbs, hidden ones not
		{"thinbox r", "run"},                          // prefix
		{"thinbox --root /x ", "run stop unit image"}, // a global flag's value is skipped
		{"thinbox run --", "--name --tty --env --env-file --unit --timeout-stop --memory --help"},
		{"thinbox run ", "busybox alpine"},          // IMAGE
		{"thinbox run -e A=1 --name x a", "alpine"}, // flag values skipped
		{"thinbox run busybox --", ""},              // after IMAGE: the container's own argv
		{"thinbox stop ", "sensor web"},             // containers, repeated
		{"thinbox stop sensor ", "sensor web"},
		{"thinbox image ", "import ls list rm"},
		{"thinbox image list --", "--format --help"}, // alias paths have the flags too
		{"thinbox image rm ", "busybox alpine"},
		{"thinbox image import x ", ""}, // a new name: nothing to offer (files are bash's default)
	} {
		got := strings.Join(complete(t, script, c.line), " ")
		if got != c.want {
			t.Errorf("complete %q = %q, want %q", c.line, got, c.want)
		}
	}
}

// TestZshCompletion loads the generated function in zsh with _arguments, _describe and
// compdef replaced by recorders, and checks what each command path hands them.
func TestZshCompletion(t *testing.T) {
	testenv.Require(t, testenv.Command("zsh"))
	withArgKinds(t, testKinds)
	b, err := ZshCompletion(testApp())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "_thinbox")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("zsh", "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	driver := `
_arguments() { print -r -- "ARGS $*"; state=${STATE:-}; words=(${=WORDS}); return 0 }
_describe() { print -r -- "DESCRIBE $1 $2 ${(P)4}" }
compdef() { print -r -- "COMPDEF $*" }
source $FILE
STATE=command _thinbox
STATE=argument WORDS="stop" _thinbox
_thinbox_run
_thinbox_image_import
_thinbox_image_ls
`
	cmd := exec.Command("zsh", "-f", "-c", driver)
	cmd.Env = append(os.Environ(), "FILE="+file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"COMPDEF _thinbox thinbox",
		"DESCRIBE -t commands run:run a command in a new container stop:stop containers",
		"--root=[directory for images]:root: ",
		"(-t --tty)-t[give the command a pseudo-terminal]",
		"*-e+[set KEY=VALUE]:env: ",
		"*--env-file=[read KEY=VALUE lines from a FILE]:file:_files",
		"1:images:_thinbox_images",
		"*:containers:_thinbox_containers",
		"1:none:  2:files:_files",
		"ARGS -s -S -A -* --format=[]:format: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("zsh output lacks %q:\n%s", want, got)
		}
	}
}
