package units

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func exampleServices() map[string]*Service {
	bin := "/usr/bin/thinbox"
	return map[string]*Service{
		"minimal": {
			Name: "sensor", Description: "thinbox container sensor (busybox)",
			ExecStart:    []string{bin, "run", "--service-mode", "--name", "sensor", "busybox", "/app"},
			ExecStopPost: []string{bin, "rm", "--force", "--from-unit", "sensor"},
			TimeoutStart: 90 * time.Second, TimeoutStop: 10 * time.Second,
		},
		"full": {
			Name: "web", Description: "thinbox container web (busybox) 100% \"quoted\"",
			Command:   "thinbox run --unit web --memory 64m --cpu 0.5 --pids 20 --restart on-failure busybox httpd -f",
			ExecStart: []string{bin, "--root", "/var/lib/thinbox", "run", "--service-mode", "--name", "web", "--memory", "64m", "-e", "GREETING=hello world", "busybox", "httpd", "-f"},
			Limits:    [][2]string{{"MemoryMax", "67108864"}, {"CPUQuota", "50%"}, {"TasksMax", "20"}},
			Restart:   "on-failure", RestartSec: 2 * time.Second, TimeoutStart: 90 * time.Second, TimeoutStop: 10 * time.Second,
			WaitNetwork: true, WantedBy: "multi-user.target",
		},
		"hostile-args": {
			Name: "odd", Description: "odd",
			ExecStart:    []string{bin, "run", "busybox", "sh", "-c", `echo "$HOME" %n 'x' \; ; a\b`, "two words", "", "new\nline", "tab\there", "$$", "%%", "\x01", "\xff", "ünïcode"},
			TimeoutStart: 0, TimeoutStop: 1500 * time.Millisecond, WantedBy: "default.target",
		},
	}
}

// Golden files: the exact text thinbox writes, reviewed once, regenerated with -update.
func TestGolden(t *testing.T) {
	for name, s := range exampleServices() {
		got, err := s.Render()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name+".service")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./units -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n%s", name, path, got)
		}
	}
}

func TestDirectives(t *testing.T) {
	s := exampleServices()["full"]
	opts, err := s.Options()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Type": "notify", "NotifyAccess": "all", "KillMode": "mixed", "Delegate": "yes", "SuccessExitStatus": "143",
		"TimeoutStartSec": "90", "TimeoutStopSec": "10", "SyslogIdentifier": "web", "Restart": "on-failure", "RestartSec": "2",
		"MemoryMax": "67108864", "CPUQuota": "50%", "TasksMax": "20", "WantedBy": "multi-user.target",
		"After": "network-online.target", "Wants": "network-online.target",
	}
	got := map[string]string{}
	for _, o := range opts {
		got[o.Name] = o.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	// network-online ordering only when asked for.
	for _, o := range mustOptions(t, exampleServices()["minimal"]) {
		if o.Name == "After" || o.Name == "Wants" {
			t.Errorf("minimal unit orders after the network: %s=%s", o.Name, o.Value)
		}
	}
	if _, err := (&Service{Name: "x", ExecStart: []string{"/bin/true"}, Restart: "sometimes"}).Options(); err == nil {
		t.Errorf("Restart=sometimes accepted")
	}
}

func mustOptions(t *testing.T, s *Service) []*unit.UnitOption {
	o, err := s.Options()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// systemdArgv splits an Exec line the way systemd does, in its order: specifiers
// (%% → %) over the whole line, then words with quotes and C escapes, then $$ → $ in
// each word at exec time. It is a model used to check the renderer; the guest test
// checks the real systemd.
func systemdArgv(line string) ([]string, error) {
	// A line ending in a backslash continues on the next: systemd reads both as one,
	// the backslash as a space.
	line = strings.ReplaceAll(line, "\\\n", " ")
	line = strings.ReplaceAll(line, "%%", "\x00PCT\x00")
	if strings.Contains(line, "%") {
		return nil, fmt.Errorf("unescaped specifier in %q", line)
	}
	line = strings.ReplaceAll(line, "\x00PCT\x00", "%")
	var argv []string
	i := 0
	for {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			return argv, nil
		}
		if line[i] == '\t' {
			i++
			continue
		}
		if line[i] != '"' {
			return nil, fmt.Errorf("unquoted word at %d in %q", i, line)
		}
		i++
		var w strings.Builder
		for {
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated quote in %q", line)
			}
			c := line[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				i++
				switch line[i] {
				case 'n':
					w.WriteByte('\n')
				case 't':
					w.WriteByte('\t')
				case 'r':
					w.WriteByte('\r')
				case '\\', '"':
					w.WriteByte(line[i])
				case 'x':
					var b byte
					fmt.Sscanf(line[i+1:i+3], "%02x", &b)
					w.WriteByte(b)
					i += 2
				default:
					return nil, fmt.Errorf("unknown escape \\%c", line[i])
				}
				i++
				continue
			}
			w.WriteByte(c)
			i++
		}
		word := w.String()
		if strings.Contains(strings.ReplaceAll(word, "$$", ""), "$") {
			return nil, fmt.Errorf("unescaped $ in %q", word)
		}
		argv = append(argv, strings.ReplaceAll(word, "$$", "$"))
	}
}

// Render, parse back with go-systemd's deserializer, split as systemd does: the same argv.
func roundTrip(t testing.TB, argv []string) {
	s := &Service{Name: "rt", Description: "rt", ExecStart: argv}
	text, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(text))
	if err != nil {
		// go-systemd's parser stops at 2 KiB lines; systemd reads 1 MiB ones. One argument
		// that long can't be wrapped (a continuation would put a space into it), so only
		// the parser used here, not the unit, is out of its depth.
		for _, a := range argv {
			if len(QuoteArg(a)) > 2000 {
				return
			}
		}
		t.Fatalf("deserialize %q: %v", text, err)
	}
	for _, o := range opts {
		if o.Name != "ExecStart" {
			continue
		}
		got, err := systemdArgv(o.Value)
		if err != nil {
			t.Fatalf("argv %q: %v", argv, err)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", argv) {
			t.Fatalf("round trip: %q became %q", argv, got)
		}
		return
	}
	t.Fatal("no ExecStart")
}

func TestRoundTrip(t *testing.T) {
	for _, s := range exampleServices() {
		roundTrip(t, s.ExecStart)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"plain", "two words", `"q"`, "$HOME", "%n", `a\b`, ";", "new\nline", "", "\xff\xfe", "ü"} {
		f.Add(s, "-e")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a+b, 0) {
			return // NUL can't be in an argv
		}
		roundTrip(t, []string{"/usr/bin/thinbox", "run", "-e", "V=" + a, "busybox", a, b})
	})
}
