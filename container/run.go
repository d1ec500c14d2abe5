package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/sys/user"
	"github.com/thinbox/thinbox/image"
	"github.com/thinbox/thinbox/launcher"
	"github.com/thinbox/thinbox/state"
)

// IO is the caller's stdio.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// Run creates a container, runs it in the foreground and removes what it made:
// everything on failure, the layer and record too with Spec.Remove. It returns the
// exit status thinbox should end with.
func (m *Manager) Run(ctx context.Context, spec *Spec, stdio IO) (code int, err error) {
	if err := spec.validate(); err != nil {
		return 0, err
	}
	if err := m.gc(); err != nil {
		return 0, err
	}
	rec, img, err := m.create(ctx, spec)
	if err != nil {
		return 0, err
	}
	name := rec.Name
	started := false
	defer func() {
		// A container that never ran leaves nothing; one that ran keeps its record and
		// layer unless --rm.
		if !started || spec.Remove {
			if derr := m.deleteContainer(name); derr != nil && err == nil {
				err = derr
			}
		}
	}()

	cfg, err := m.config(spec, rec, img)
	if err != nil {
		return 0, err
	}
	scope, err := scopeFor(ctx, spec, m.User)
	if err != nil {
		return 0, err
	}
	defer scope.close()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("container: run %s: %w", name, err)
	}
	out := &tee{stdout: stdio.Stdout, stderr: stdio.Stderr}
	if scope.enabled && !spec.TTY {
		out = teeToJournal(name, stdio.Stdout, stdio.Stderr)
	}
	defer out.wait()
	opt := launcher.Options{
		Stdin:         stdinFor(spec, stdio),
		Stdout:        out.stdout,
		Stderr:        out.stderr,
		Interactive:   spec.Interactive,
		DieWithParent: true,
		Self:          m.Self,
		Placed:        func(pid int) error { return scope.place(ctx, name, pid) },
	}
	if err := m.userNS(cfg, &opt, spec, rec.Layer); err != nil {
		return 0, err
	}
	c, err := launcher.Start(cfg, opt)
	if err != nil {
		return 0, fmt.Errorf("container: run %s: %w", name, err)
	}
	started = true
	out.started()
	now := time.Now().UTC()
	if err := m.States.Update(name, func(r *state.Record) {
		r.Status, r.Pid, r.PidStart, r.Started = state.Running, c.Pid, state.StartTime(c.Pid), now
		r.Unit, r.Cgroup, r.Limits = scope.unit, scope.cgroup, spec.Limits.Summary()
	}); err != nil {
		_ = c.Signal(9)
		_, _ = c.Wait()
		return 0, err
	}
	code, werr := c.Wait()
	out.wait()
	oom := scope.oomKilled()
	uerr := m.States.Update(name, func(r *state.Record) {
		r.Status, r.Finished = state.Exited, time.Now().UTC()
		r.OOMKilled = oom
		if werr != nil {
			r.Error = werr.Error()
		} else {
			r.ExitCode = &code
		}
	})
	if werr != nil {
		return 0, fmt.Errorf("container: %s: %w", name, werr)
	}
	if uerr != nil && !spec.Remove {
		return code, uerr
	}
	return code, nil
}

func stdinFor(spec *Spec, stdio IO) *os.File {
	if spec.Interactive || spec.TTY {
		return stdio.Stdin
	}
	return nil
}

// create reserves the name and the image: the record is written while the image store
// is locked shared, so image rm can never remove an image between the lookup and the
// record that uses it.
func (m *Manager) create(ctx context.Context, spec *Spec) (*state.Record, *image.Image, error) {
	img, release, err := m.Images.Acquire(spec.Image)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	self := os.Getpid()
	rec := &state.Record{
		Name: spec.Name, Image: img.Name, ImageDigest: img.Digest, Command: spec.command(),
		Init: spec.Init, Remove: spec.Remove, Net: spec.net(), Status: state.Creating,
		LauncherPid: self, LauncherStart: state.StartTime(self),
	}
	for attempt := 0; ; attempt++ {
		if spec.Name == "" {
			rec.Name = generateName(img.Name, attempt)
		}
		rec.Hostname = spec.Hostname
		if rec.Hostname == "" {
			rec.Hostname = rec.Name
		}
		err = m.States.Create(rec)
		if err == nil || spec.Name != "" || !errors.Is(err, state.ErrExists) || attempt > 20 {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return rec, img, nil
}

func (s *Spec) command() []string {
	if len(s.Args) == 0 {
		return []string{"/bin/sh"}
	}
	return s.Args
}

func (s *Spec) net() string {
	if s.Net == "" {
		return "none"
	}
	return s.Net
}

// config turns the spec into what the launcher needs, creating the container's layer.
func (m *Manager) config(spec *Spec, rec *state.Record, img *image.Image) (*launcher.Config, error) {
	vols, err := spec.volumes()
	if err != nil {
		return nil, err
	}
	userEnv, err := spec.environment()
	if err != nil {
		return nil, err
	}
	u, err := lookupUser(img.RootFS, spec.User)
	if err != nil {
		return nil, err
	}
	sec, err := spec.security(u.Uid)
	if err != nil {
		return nil, err
	}
	layer := rec.Layer
	if err := os.MkdirAll(filepath.Dir(layer), 0o700); err != nil {
		return nil, fmt.Errorf("container: create layer of %s: %w", rec.Name, err)
	}
	for _, d := range []string{"", "upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(layer, d), 0o700); err != nil && !(d == "" && os.IsExist(err)) {
			return nil, fmt.Errorf("container: create layer of %s: %w", rec.Name, err)
		}
	}
	// The upper dir's root becomes the container's "/": it must look like the image's.
	if err := os.Chmod(filepath.Join(layer, "upper"), 0o755); err != nil {
		return nil, fmt.Errorf("container: create layer of %s: %w", rec.Name, err)
	}
	defaults := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + rec.Hostname, "HOME=" + u.Home, "container=thinbox"}
	if spec.TTY {
		defaults = append(defaults, "TERM=xterm")
	}
	cfg := &launcher.Config{
		Lower:    img.RootFS,
		Upper:    filepath.Join(layer, "upper"),
		Work:     filepath.Join(layer, "work"),
		RootFS:   filepath.Join(layer, "rootfs"),
		ReadOnly: spec.ReadOnly,
		Hostname: rec.Hostname,
		NetHost:  spec.net() == "host",
		CgroupNS: true,
		Init:     spec.Init,
		Files:    etcFiles(rec.Hostname, spec.net() == "host"),
		Security: sec,
		Process: launcher.Process{
			Args:     spec.command(),
			Env:      mergeEnv(defaults, userEnv),
			Cwd:      spec.Workdir,
			UID:      uint32(u.Uid),
			GID:      uint32(u.Gid),
			Terminal: spec.TTY,
		},
	}
	for _, g := range u.Sgids {
		cfg.Process.Groups = append(cfg.Process.Groups, uint32(g))
	}
	for _, v := range vols {
		cfg.Mounts = append(cfg.Mounts, launcher.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	return cfg, nil
}

// lookupUser resolves -u against the image's /etc/passwd and /etc/group, opened inside
// the image root so a symlinked /etc/passwd can't make thinbox read a host file.
func lookupUser(rootfs, spec string) (*user.ExecUser, error) {
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("container: open image root: %w", err)
	}
	defer root.Close()
	open := func(p string) *os.File {
		f, err := root.Open(p)
		if err != nil {
			return nil
		}
		return f
	}
	passwd, group := open("etc/passwd"), open("etc/group")
	defer func() {
		if passwd != nil {
			passwd.Close()
		}
		if group != nil {
			group.Close()
		}
	}()
	// GetExecUser wants nil readers, not nil *os.File in an interface.
	pr, gr := readerOrNil(passwd), readerOrNil(group)
	u, err := user.GetExecUser(spec, defaults, pr, gr)
	if err != nil {
		if spec == "" {
			return defaults, nil
		}
		return nil, invalid("--user %q: %v", spec, oneLine(err))
	}
	return u, nil
}

func readerOrNil(f *os.File) io.Reader {
	if f == nil {
		return nil
	}
	return f
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// etcFiles are the files every container gets in /etc, written into its own layer.
func etcFiles(hostname string, hostNet bool) map[string]string {
	files := map[string]string{
		"/etc/hostname": hostname + "\n",
		"/etc/hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n",
	}
	if hostNet {
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			files["/etc/resolv.conf"] = string(b)
		}
	} else {
		files["/etc/resolv.conf"] = "# thinbox: this container has no network (--net=none)\n"
	}
	return files
}
