package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

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
		if cfg.UserNS {
			// A user namespace can't make device nodes, and a tmpfs it mounts is nodev
			// anyway: the host's own nodes are bind-mounted instead, as runc does.
			if err := os.WriteFile(p, nil, 0o666); err != nil {
				return stepErr("create /dev/"+n.name, err)
			}
			if err := unix.Mount("/dev/"+n.name, p, "", unix.MS_BIND, ""); err != nil {
				return stepErr("bind /dev/"+n.name, err)
			}
			continue
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return stepErr("mknod /dev/"+n.name, err)
		}
		// Each standard node becomes a mount of its own, so that /dev itself can be
		// nodev: a node the container's root makes there with CAP_MKNOD opens nothing.
		if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
			return stepErr("bind /dev/"+n.name, err)
		}
	}
	if err := unix.Mount("", d, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
		return stepErr("make /dev nodev", err)
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
		if err := setupConsole(d, &cfg.Process); err != nil {
			return stepErr("set up the terminal", err)
		}
	}
	return nil
}

// consoleFd is where the init finds the socket to pass the pty master back on
// (ExtraFiles[1], only with a terminal).
const consoleFd = 4

// setupConsole opens a pty on the container's own devpts, makes its slave the init's
// stdio and /dev/console, and sends the master to the parent.
func setupConsole(dev string, p *Process) error {
	master, err := os.OpenFile(filepath.Join(dev, "pts", "ptmx"), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	slavePath := filepath.Join(dev, "pts", strconv.Itoa(n))
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer slave.Close()
	// The payload owns its terminal, as after a login.
	if err := slave.Chown(int(p.UID), -1); err != nil {
		return err
	}
	console := filepath.Join(dev, "console")
	if err := os.WriteFile(console, nil, 0o600); err != nil {
		return err
	}
	if err := unix.Mount(slavePath, console, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/console: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return err
		}
	}
	if err := sendFd(consoleFd, master); err != nil {
		return fmt.Errorf("send pty to the launcher: %w", err)
	}
	return unix.Close(consoleFd)
}
