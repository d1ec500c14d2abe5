package container

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinbox/thinbox/internal/names"
	"github.com/thinbox/thinbox/launcher"
	"github.com/thinbox/thinbox/systemd"
)

// Spec is one container as the user asked for it on the command line.
type Spec struct {
	Name        string
	Image       string
	Args        []string // default /bin/sh
	Env         []string // KEY=VALUE, or KEY to take the caller's value
	EnvFiles    []string
	Workdir     string
	User        string // uid[:gid] or name[:group] from the image's /etc/passwd
	Hostname    string // default: the name
	ReadOnly    bool
	Volumes     []string // SRC:DST[:ro|rw]
	TTY         bool
	Interactive bool
	Remove      bool
	Init        bool
	Net         string // none (default) or host
	UserNS      string // "" or "auto": root's container in its own block of ids

	// Security flags (see launcher.SecurityOptions): capabilities added and dropped
	// (names or ALL), --privileged, --seccomp (unconfined or a profile file), and
	// --allow-new-privileges.
	CapAdd, CapDrop    []string
	Privileged         bool
	Seccomp            string
	AllowNewPrivileges bool

	// Limits go on the container's systemd scope; Slice is where the scope goes
	// (thinbox.slice by default).
	Limits systemd.Limits
	Slice  string
}

// volume is a parsed --volume.
type volume struct {
	Source, Target string
	ReadOnly       bool
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// validate checks everything that can be checked before anything is created, so bad
// input never leaves a half-made container behind.
func (s *Spec) validate() error {
	if s.Name != "" {
		if err := names.Check("container", s.Name); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if err := names.Check("image", s.Image); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if s.Hostname != "" {
		if err := names.Check("hostname", s.Hostname); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	switch s.UserNS {
	case "", "host":
	case "auto":
		if os.Geteuid() != 0 {
			return invalid("--userns=auto is for root; an ordinary user's containers always get a user namespace")
		}
	default:
		return invalid("--userns %q: use auto (or leave it out)", s.UserNS)
	}
	switch s.Net {
	case "", "none", "host":
	default:
		return invalid("--net %q: use none or host", s.Net)
	}
	if s.Workdir != "" && !filepath.IsAbs(s.Workdir) {
		return invalid("--workdir %q: must be an absolute path", s.Workdir)
	}
	for _, a := range s.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("command argument %q contains a NUL byte", a)
		}
	}
	if s.Slice != "" {
		base, ok := strings.CutSuffix(s.Slice, ".slice")
		if !ok || names.Check("slice", base) != nil || strings.Contains(base, "--") || strings.HasSuffix(base, "-") {
			return invalid("--slice %q: want a slice unit name such as thinbox.slice or machine-edge.slice", s.Slice)
		}
	}
	if _, err := s.volumes(); err != nil {
		return err
	}
	if _, err := s.environment(); err != nil {
		return err
	}
	if _, err := s.security(0); err != nil {
		return err
	}
	return nil
}

// security resolves the security flags for a payload that runs as uid.
func (s *Spec) security(uid int) (launcher.Security, error) {
	sec, err := launcher.NewSecurity(launcher.SecurityOptions{
		CapAdd: s.CapAdd, CapDrop: s.CapDrop, Privileged: s.Privileged, Seccomp: s.Seccomp,
		AllowNewPrivileges: s.AllowNewPrivileges, NonRoot: uid != 0,
	})
	if err != nil {
		return sec, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return sec, nil
}

// securityArgs are the security flags again, as a service's ExecStart passes them.
func (s *Spec) securityArgs() []string {
	var a []string
	for _, c := range s.CapAdd {
		a = append(a, "--cap-add="+c)
	}
	for _, c := range s.CapDrop {
		a = append(a, "--cap-drop="+c)
	}
	if s.Privileged {
		a = append(a, "--privileged")
	}
	switch s.Seccomp {
	case "":
	case "unconfined":
		a = append(a, "--seccomp=unconfined")
	default:
		abs, _ := filepath.Abs(s.Seccomp)
		a = append(a, "--seccomp="+abs)
	}
	if s.AllowNewPrivileges {
		a = append(a, "--allow-new-privileges")
	}
	return a
}

func (s *Spec) volumes() ([]volume, error) {
	var out []volume
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, invalid("--volume %q: want SRC:DST[:ro]", v)
		}
		vol := volume{Source: parts[0], Target: parts[1]}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				vol.ReadOnly = true
			case "rw":
			default:
				return nil, invalid("--volume %q: mode %q is not ro or rw", v, parts[2])
			}
		}
		if !filepath.IsAbs(vol.Source) || !filepath.IsAbs(vol.Target) {
			return nil, invalid("--volume %q: source and target must be absolute paths", v)
		}
		if strings.ContainsAny(v, "\x00\n") {
			return nil, invalid("--volume %q: contains a NUL or newline", v)
		}
		vol.Source = filepath.Clean(vol.Source)
		// The target is resolved inside the rootfs by the launcher; cleaning here only
		// makes it canonical ("/a/../b" is "/b", never above "/").
		vol.Target = filepath.Clean(vol.Target)
		if vol.Target == "/" {
			return nil, invalid("--volume %q: cannot mount over the container's root", v)
		}
		st, err := os.Stat(vol.Source)
		if err != nil {
			return nil, invalid("--volume %q: source: %v", v, unwrapPath(err))
		}
		if !st.IsDir() && !st.Mode().IsRegular() {
			return nil, invalid("--volume %q: source is neither a directory nor a regular file", v)
		}
		out = append(out, vol)
	}
	return out, nil
}

// environment returns the payload's variables from --env-file then --env, in order;
// later ones win.
func (s *Spec) environment() ([]string, error) {
	var env []string
	for _, f := range s.EnvFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, invalid("--env-file: %v", unwrapPath(err))
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimRight(sc.Text(), "\r")
			if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			kv, err := envEntry(line)
			if err != nil {
				return nil, invalid("--env-file %s line %d: %v", f, n, err)
			}
			if kv != "" {
				env = append(env, kv)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, invalid("--env-file %s: %v", f, err)
		}
	}
	for _, e := range s.Env {
		kv, err := envEntry(e)
		if err != nil {
			return nil, invalid("--env %q: %v", e, err)
		}
		if kv != "" {
			env = append(env, kv)
		}
	}
	return env, nil
}

// envEntry accepts KEY=VALUE, or KEY alone to pass the caller's value on (dropped when
// the caller has none), as docker and podman do.
func envEntry(e string) (string, error) {
	k, _, hasValue := strings.Cut(e, "=")
	if k == "" {
		return "", fmt.Errorf("empty variable name")
	}
	if strings.ContainsAny(k, " \t\n\x00") {
		return "", fmt.Errorf("variable name %q contains white space or NUL", k)
	}
	if strings.IndexByte(e, 0) >= 0 {
		return "", fmt.Errorf("value contains a NUL byte")
	}
	if hasValue {
		return e, nil
	}
	if v, ok := os.LookupEnv(k); ok {
		return k + "=" + v, nil
	}
	return "", nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// mergeEnv puts the defaults under the user's variables: user values win.
func mergeEnv(defaults, user []string) []string {
	seen := map[string]bool{}
	for _, e := range user {
		k, _, _ := strings.Cut(e, "=")
		seen[k] = true
	}
	var out []string
	for _, e := range defaults {
		k, _, _ := strings.Cut(e, "=")
		if !seen[k] {
			out = append(out, e)
		}
	}
	return append(out, user...)
}

// generateName makes a name for a container started without --name: the image's name
// and a short suffix from the clock, retried by the caller on a clash.
func generateName(image string, attempt int) string {
	suffix := fmt.Sprintf("%04x", (time.Now().UnixNano()/1000+int64(attempt)*7919)&0xffff)
	base := image
	if len(base) > names.MaxLen-5 {
		base = base[:names.MaxLen-5]
	}
	return base + "-" + suffix
}
