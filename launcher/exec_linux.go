package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinbox/thinbox/launcher/seccomp"
	"golang.org/x/sys/unix"
)

// defaultPath is used for the command lookup when the payload's environment has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// prepareProcess does what precedes the payload in both modes: the working directory
// (created like docker and podman do) and the command lookup. It runs as root, inside
// the container's root.
func prepareProcess(p *Process) (string, error) {
	if len(p.Args) == 0 {
		return "", &initError{step: "exec", err: errors.New("no command given"), code: 127}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return "", stepErr("workdir "+cwd, err)
	}
	path, err := lookPath(p.Args[0], getenv(p.Env, "PATH"))
	if err != nil {
		return "", execError(p.Args[0], err)
	}
	return path, nil
}

// execPayload turns this process into the payload: the container's PID 1.
func execPayload(cfg *Config, filter *seccomp.Filter) error {
	p := &cfg.Process
	path, err := prepareProcess(p)
	if err != nil {
		return err
	}
	pdeath, _ := unix.PrctlRetInt(unix.PR_GET_PDEATHSIG, 0, 0, 0, 0)
	if err := confineEarly(&cfg.Security, filter, p); err != nil {
		return err
	}
	if err := setCredentials(p); err != nil {
		return err
	}
	// Changing credentials clears the parent-death signal; a foreground container must
	// still die with its launcher.
	if pdeath != 0 {
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(pdeath), 0, 0, 0)
	}
	if err := unix.Chdir(cwdOf(p)); err != nil {
		return stepErr("chdir "+cwdOf(p), err)
	}
	if p.Terminal {
		// We lead the session the parent created; the pty becomes its terminal.
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return stepErr("set controlling terminal", err)
		}
	}
	if err := confineLate(&cfg.Security, filter, p); err != nil {
		return err
	}
	return execError(p.Args[0], unix.Exec(path, p.Args, p.Env))
}

func cwdOf(p *Process) string {
	if p.Cwd == "" {
		return "/"
	}
	return p.Cwd
}

func setCredentials(p *Process) error {
	groups := make([]int, len(p.Groups))
	for i, g := range p.Groups {
		groups[i] = int(g)
	}
	// Always set the list, even empty: the host's supplementary groups must not leak in.
	if setgroupsDenied() {
		// A single-id user namespace: there are no other groups to have.
		if len(groups) > 0 {
			return stepErr("setgroups", fmt.Errorf("supplementary groups need a subordinate gid range (/etc/subgid) for this user"))
		}
	} else if err := unix.Setgroups(groups); err != nil {
		return stepErr("setgroups", err)
	}
	if err := unix.Setgid(int(p.GID)); err != nil {
		return stepErr(fmt.Sprintf("setgid %d", p.GID), err)
	}
	if err := unix.Setuid(int(p.UID)); err != nil {
		return stepErr(fmt.Sprintf("setuid %d", p.UID), err)
	}
	return nil
}

// execError turns an exec failure into the exit status shells use: 127 when the
// command does not exist, 126 when it exists but can't be executed.
func execError(cmd string, err error) error {
	code := 126
	if errors.Is(err, unix.ENOENT) || errors.Is(err, errNotFound) {
		code = 127
	}
	return &initError{step: "exec " + cmd, err: err, code: code}
}

var errNotFound = errors.New("executable file not found in $PATH")

// lookPath finds cmd on the container's PATH, after pivot_root, so only the image is
// searched.
func lookPath(cmd, path string) (string, error) {
	if strings.Contains(cmd, "/") {
		return cmd, nil
	}
	if path == "" {
		path = defaultPath
	}
	var firstErr error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, cmd)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
		if firstErr == nil {
			firstErr = unix.EACCES
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", errNotFound
}

func getenv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
