package launcher

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// devices is the standard set every container gets, and no host device beyond it.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// setupDev mounts a small tmpfs on /dev with the standard devices, devpts, shm and
// mqueue, and the pty as /dev/console when there is one.
func setupDev(cfg *Config) error {
	dev, err := openDir(cfg.RootFS, "/dev")
	if err != nil {
		return stepErr("mount /dev", err)
	}
	defer dev.Close()
	if err := mountAt("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=65536k"); err != nil {
		return stepErr("mount /dev", err)
	}
	// From here on /dev is our own fresh tmpfs: nothing of the image is below it, so
	// plain paths under it are safe.
	d := filepath.Join(cfg.RootFS, "dev")
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, n := range devices {
		p := filepath.Join(d, n.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return stepErr("mknod /dev/"+n.name, err)
		}
	}
	for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}} {
		if err := os.Symlink(l[0], filepath.Join(d, l[1])); err != nil {
			return stepErr("symlink /dev/"+l[1], err)
		}
	}
	mounts := []struct {
		dir, fstype string
		mode        uint32
		flags       uintptr
		data        string
	}{
		{"pts", "devpts", 0o755, unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
		{"shm", "tmpfs", 0o1777, noSuidDevExec, "mode=1777,size=65536k"},
		{"mqueue", "mqueue", 0o755, noSuidDevExec, ""},
	}
	for _, m := range mounts {
		p := filepath.Join(d, m.dir)
		if err := os.Mkdir(p, os.FileMode(m.mode)); err != nil {
			return stepErr("mkdir /dev/"+m.dir, err)
		}
		if err := unix.Mount(m.fstype, p, m.fstype, m.flags, m.data); err != nil {
			return stepErr("mount /dev/"+m.dir, err)
		}
	}
	if cfg.Process.Terminal {
		p := filepath.Join(d, "console")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return stepErr("create /dev/console", err)
		}
		if err := unix.Mount("/proc/self/fd/0", p, "", unix.MS_BIND, ""); err != nil {
			return stepErr("bind /dev/console", err)
		}
	}
	return nil
}
