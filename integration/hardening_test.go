//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Issue 8: a malicious image and a malicious payload against thinbox's confinement.
// Every check is made from inside a container with busybox, or by the test binary
// itself bind-mounted in as the payload where busybox cannot do it (passing a file
// descriptor out).

// defaultCapEff is Docker's and podman's default set, as /proc/PID/status shows it.
const defaultCapEff = "00000000a80425fb"

var initModes = []string{"--init", "--no-init"}

// status reads fields of /proc/self/status (or any "Key:\tvalue" lines) from output.
func status(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestHardeningCapabilities(t *testing.T) {
	b := newBox(t).withImage()
	for _, mode := range initModes {
		st := status(b.ok("run", "--rm", mode, "busybox", "grep", "Cap", "/proc/self/status"))
		for k, want := range map[string]string{"CapEff": defaultCapEff, "CapPrm": defaultCapEff, "CapBnd": defaultCapEff, "CapInh": "0000000000000000", "CapAmb": "0000000000000000"} {
			if st[k] != want {
				t.Errorf("%s default: %s = %s, want %s", mode, k, st[k], want)
			}
		}
		st = status(b.ok("run", "--rm", mode, "--cap-drop", "ALL", "busybox", "grep", "Cap", "/proc/self/status"))
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"} {
			if st[k] != "0000000000000000" {
				t.Errorf("%s --cap-drop ALL: %s = %s, want 0", mode, k, st[k])
			}
		}
		// Names in every spelling; drop wins over nothing, add over the default.
		st = status(b.ok("run", "--rm", mode, "--cap-add", "net_admin", "--cap-add", "CAP_SYS_TIME", "--cap-drop", "Cap_Chown", "--cap-drop", "mknod",
			"busybox", "grep", "CapEff", "/proc/self/status"))
		want := fmt.Sprintf("%016x", (0xa80425fb|1<<12|1<<25)&^(1<<0|1<<27))
		if st["CapEff"] != want {
			t.Errorf("%s add/drop: CapEff %s, want %s", mode, st["CapEff"], want)
		}
		// NET_ADMIN does what it says, in the container's own network namespace only.
		if r := b.run("run", "--rm", mode, "busybox", "ip", "link", "set", "lo", "mtu", "1400"); r.code == 0 || !strings.Contains(r.stderr, "not permitted") {
			t.Errorf("%s without NET_ADMIN, ip link set: exit %d %q", mode, r.code, r.stderr)
		}
		if out := b.ok("run", "--rm", mode, "--cap-add", "NET_ADMIN", "busybox", "sh", "-c", "ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu"); out != "1400\n" {
			t.Errorf("%s --cap-add NET_ADMIN: %q", mode, out)
		}
		// A non-root user: nothing of the default set, exactly what --cap-add named
		// (podman's rule), in the ambient set so it survives exec.
		st = status(b.ok("run", "--rm", mode, "-u", "app", "busybox", "grep", "Cap", "/proc/self/status"))
		if st["CapEff"] != "0000000000000000" || st["CapAmb"] != "0000000000000000" || st["CapBnd"] != defaultCapEff {
			t.Errorf("%s -u app: %v", mode, st)
		}
		st = status(b.ok("run", "--rm", mode, "-u", "app", "--cap-add", "NET_BIND_SERVICE", "busybox", "grep", "Cap", "/proc/self/status"))
		for _, k := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb"} {
			if st[k] != "0000000000000400" {
				t.Errorf("%s -u app --cap-add NET_BIND_SERVICE: %s = %s, want 400", mode, k, st[k])
			}
		}
	}
	// The --init PID 1 keeps only CAP_KILL once the payload runs: it lowers its own
	// sets right after the fork, so the payload may look a moment before it has.
	st := status(b.ok("run", "--rm", "busybox", "sh", "-c",
		`i=0; while [ $i -lt 500 ] && ! grep -q 'CapEff:.*0000000000000020' /proc/1/status; do sleep 0.01; i=$((i+1)); done; grep Cap /proc/1/status`))
	if st["CapEff"] != "0000000000000020" || st["CapPrm"] != "0000000000000020" || st["CapBnd"] != defaultCapEff {
		t.Errorf("the init's own capabilities: %v", st)
	}
	b.fails(125, `unknown capability`, "run", "--rm", "--cap-add", "NET_FROB", "busybox", "true")
	b.fails(125, `unknown capability`, "run", "--rm", "--cap-drop", "", "busybox", "true")
}

func TestHardeningNoNewPrivsAndSeccomp(t *testing.T) {
	b := newBox(t).withImage()
	for _, mode := range initModes {
		st := status(b.ok("run", "--rm", mode, "busybox", "grep", "-E", "NoNewPrivs|Seccomp", "/proc/self/status"))
		if st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
			t.Errorf("%s default: NoNewPrivs %s Seccomp %s, want 1 and 2", mode, st["NoNewPrivs"], st["Seccomp"])
		}
		st = status(b.ok("run", "--rm", mode, "--allow-new-privileges", "busybox", "grep", "-E", "NoNewPrivs|Seccomp", "/proc/self/status"))
		if st["NoNewPrivs"] != "0" || st["Seccomp"] != "2" {
			t.Errorf("%s --allow-new-privileges: NoNewPrivs %s Seccomp %s, want 0 and 2", mode, st["NoNewPrivs"], st["Seccomp"])
		}
		st = status(b.ok("run", "--rm", mode, "--seccomp=unconfined", "busybox", "grep", "-E", "NoNewPrivs|Seccomp", "/proc/self/status"))
		if st["NoNewPrivs"] != "1" || st["Seccomp"] != "0" {
			t.Errorf("%s --seccomp=unconfined: NoNewPrivs %s Seccomp %s, want 1 and 0", mode, st["NoNewPrivs"], st["Seccomp"])
		}
		// A user namespace needs no capability, only the filter stops it; a mount
		// namespace needs CAP_SYS_ADMIN as well.
		for _, ns := range []string{"-U", "-m", "-n", "-p -f", "-i", "-u"} {
			r := b.run(append([]string{"run", "--rm", mode, "busybox", "unshare"}, append(strings.Fields(ns), "true")...)...)
			if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
				t.Errorf("%s unshare %s: exit %d %q, want EPERM", mode, ns, r.code, r.stderr)
			}
		}
		b.ok("run", "--rm", mode, "--seccomp=unconfined", "busybox", "unshare", "-U", "true")
		// The filter follows the capabilities, as Docker's does.
		b.ok("run", "--rm", mode, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "unshare -m true && mount -t tmpfs none /tmp && umount /tmp")
		for _, cmd := range []string{"swapon /dev/null", "swapoff /dev/null", "hostname other", "nsenter -t 1 -m true", "mount -t tmpfs none /tmp"} {
			r := b.run("run", "--rm", mode, "busybox", "sh", "-c", cmd)
			if r.code == 0 {
				t.Errorf("%s %s: succeeded", mode, cmd)
			}
		}
	}
}

func TestHardeningSeccompProfileFile(t *testing.T) {
	b := newBox(t).withImage()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noMkdir := write("nomkdir.json", `{"defaultAction": "SCMP_ACT_ALLOW",
	  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
	  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "EACCES"},
	               {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}`)
	for _, mode := range initModes {
		r := b.run("run", "--rm", mode, "--seccomp", noMkdir, "busybox", "sh", "-c", "touch /tmp/file && mkdir /tmp/dir")
		if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("%s profile denying mkdir with EACCES: exit %d %q", mode, r.code, r.stderr)
		}
		// The profile replaces the default one: unshare -U is allowed by it.
		b.ok("run", "--rm", mode, "--seccomp", noMkdir, "busybox", "unshare", "-U", "true")
	}
	// An allow list, as Docker's profile is: every syscall the tables know but a few.
	// The --init PID 1 (Go) lives under it too.
	deny := map[string]bool{"unshare": true, "keyctl": true, "mount": true, "clone3": true}
	var names []string
	for _, a := range []*arch.Info{arch.X86_64, arch.I386, arch.AARCH64, arch.ARM} {
		for n := range a.SyscallNames {
			if !deny[n] {
				names = append(names, n)
				deny[n] = true // once
			}
		}
	}
	quoted, _ := json.Marshal(names)
	allow := write("allow.json", `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
	  "syscalls": [{"names": `+string(quoted)+`, "action": "SCMP_ACT_ALLOW"},
	               {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}`)
	for _, mode := range initModes {
		r := b.run("run", "--rm", mode, "--seccomp", allow, "busybox", "sh", "-c", "echo ok; sleep 0.1 & wait; unshare -U true")
		if r.stdout != "ok\n" || r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("%s allow list: exit %d stdout %q stderr %q", mode, r.code, r.stdout, r.stderr)
		}
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"defaultAction": "SCMP_ACT_NOTIFY"}`, "SCMP_ACT_NOTIFY"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "surprise": true}`, "surprise"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["not_a_syscall"], "action": "SCMP_ACT_KILL"}]}`, "not_a_syscall"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}`, "architectures"},
		{`not json`, "invalid character"},
	} {
		b.fails(125, tc.msg, "run", "--rm", "--seccomp", write("bad.json", tc.body), "busybox", "true")
	}
	b.fails(125, "no such file", "run", "--rm", "--seccomp", filepath.Join(dir, "missing.json"), "busybox", "true")
}

func TestHardeningMaskedPaths(t *testing.T) {
	b := newBox(t).withImage()
	for _, mode := range initModes {
		// Masked files read empty (when this kernel has them), masked directories are empty.
		for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"} {
			if _, err := os.Stat(f); err != nil {
				continue
			}
			if out := b.ok("run", "--rm", mode, "busybox", "sh", "-c", "cat "+f+" | wc -c"); strings.TrimSpace(out) != "0" {
				t.Errorf("%s %s: %s bytes, want 0", mode, f, strings.TrimSpace(out))
			}
		}
		for _, d := range []string{"/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware", "/sys/devices/virtual/powercap"} {
			if _, err := os.Stat(d); err != nil {
				continue
			}
			if out := b.ok("run", "--rm", mode, "busybox", "ls", "-A", d); out != "" {
				t.Errorf("%s %s not empty: %q", mode, d, out)
			}
			if r := b.run("run", "--rm", mode, "busybox", "touch", d+"/x"); r.code == 0 {
				t.Errorf("%s %s writable", mode, d)
			}
		}
		// Host-wide knobs are read-only, even for CAP_SYS_ADMIN.
		writes := []string{"/proc/sys/kernel/domainname", "/proc/sys/vm/drop_caches", "/sys/class/net/lo/mtu", "/sys/kernel/uevent_helper"}
		if _, err := os.Stat("/proc/sysrq-trigger"); err == nil {
			writes = append(writes, "/proc/sysrq-trigger")
		}
		for _, f := range writes {
			for _, extra := range [][]string{nil, {"--cap-add", "SYS_ADMIN"}} {
				args := append(append([]string{"run", "--rm", mode}, extra...), "busybox", "sh", "-c", "echo 1 > "+f)
				if r := b.run(args...); r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
					t.Errorf("%s %v write %s: exit %d %q, want EROFS", mode, extra, f, r.code, r.stderr)
				}
			}
		}
	}
	// --privileged masks nothing and leaves /sys writable (Docker's meaning).
	if data, err := os.ReadFile("/proc/keys"); err == nil && len(data) > 0 {
		if out := b.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", "cat /proc/keys | wc -c"); strings.TrimSpace(out) == "0" {
			t.Errorf("--privileged: /proc/keys masked")
		}
	}
	b.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", "echo 1400 > /sys/class/net/lo/mtu")
}

func TestHardeningDevices(t *testing.T) {
	b := newBox(t)
	b.importImage("devs", imgEntry{name: "dev2/null", typ: tar.TypeChar, major: 1, minor: 3},
		imgEntry{name: "dev2/loop0", typ: tar.TypeBlock, major: 7, minor: 0})
	for _, mode := range initModes {
		out := b.ok("run", "--rm", mode, "devs", "sh", "-c", "ls /dev | tr '\\n' ' '; find /dev -type b | wc -l")
		if want := "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero 0\n"; out != want {
			t.Errorf("%s /dev: %q, want %q", mode, out, want)
		}
		// The standard nodes work; nothing else does, wherever it comes from: the
		// image, mknod in the rootfs or in /dev (CAP_MKNOD is in the default set), a
		// volume.
		b.ok("run", "--rm", mode, "devs", "sh", "-c", "echo x >/dev/null && head -c1 /dev/zero >/dev/null && head -c1 /dev/urandom >/dev/null")
		vol := t.TempDir()
		for _, cmd := range []string{
			"echo x > /dev2/null", "head -c1 /dev2/loop0",
			"mknod /tmp/n c 1 3 && echo x > /tmp/n", "mknod /dev/n c 1 3 && echo x > /dev/n",
			"mknod /dev/shm/n c 1 3 && echo x > /dev/shm/n", "mknod /vol/n c 1 3 && echo x > /vol/n",
			"mknod /tmp/b b 7 0 && head -c1 /tmp/b",
		} {
			r := b.run("run", "--rm", mode, "-v", vol+":/vol", "devs", "sh", "-c", cmd)
			// Refused at open by nodev (EACCES), or, under systemd's DevicePolicy=closed,
			// already at mknod by the device controller (EPERM).
			if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") && !strings.Contains(r.stderr, "Operation not permitted") {
				t.Errorf("%s %s: exit %d %q, want EACCES or EPERM", mode, cmd, r.code, r.stderr)
			}
		}
	}
}

// The CVE-2019-5736 class, with --init: a root payload opens the init's
// /proc/1/exe (the init is the thinbox binary), tries to write through it, and
// passes the handle out of the container so that it can be tried again once no
// process runs the binary any more — the moment a write would go through.
func TestHardeningBinaryOverwriteInit(t *testing.T) {
	b := newBox(t).withImage()
	victim := b.privateBinary()
	before := fileHash(t, victim)
	attacker := staticSelf(t)

	// Without CAP_SYS_PTRACE the init is not even reachable: it is not dumpable.
	rep, fd := b.exeAttack(attacker)
	if rep["open"] != "EACCES" || fd >= 0 {
		t.Errorf("/proc/1/exe of the init opened without CAP_SYS_PTRACE: %v", rep)
	}
	// With it (--cap-add SYS_PTRACE, or --privileged), the seal is what holds.
	rep, fd = b.exeAttack(attacker, "--cap-add", "SYS_PTRACE")
	if rep["open"] != "ok" || fd < 0 {
		t.Fatalf("attack did not get a handle on /proc/1/exe: %v", rep)
	}
	defer unix.Close(fd)
	if rep["link"] == victim {
		t.Errorf("the init runs from the host's binary %s", victim)
	}
	for _, k := range []string{"reopen-wronly", "reopen-rdwr", "proc1-wronly-trunc"} {
		if rep[k] != "EROFS" && rep[k] != "EPERM" {
			t.Errorf("inside the container, %s: %q, want EROFS (overlay) or EPERM (sealed memfd)", k, rep[k])
		}
	}
	// The container is gone, nobody runs the binary: ETXTBSY no longer protects it.
	if err := writeThrough(fd); err == nil || !(err == unix.EROFS || err == unix.EPERM) {
		t.Errorf("write through the leaked handle after the container ended: %v, want EROFS/EPERM", err)
	}
	if after := fileHash(t, victim); after != before {
		t.Fatalf("the thinbox binary changed")
	}
}

// Without --init no thinbox process is left in the container, but the payload can
// still make the init exec thinbox again: "#!/proc/self/exe" as its interpreter
// line. That thinbox runs as the container's PID 1 (here blocked reading stdin, as
// `image import x -`); its /proc/PID/exe is what any process that reaches it gets.
func TestHardeningBinaryOverwriteNoInit(t *testing.T) {
	b := newBox(t)
	b.importImage("atk", imgEntry{name: "attack.sh", body: "#!/proc/self/exe --runroot\n", mode: 0o755})
	victim := b.privateBinary()
	before := fileHash(t, victim)
	for _, mode := range initModes {
		cmd := b.cmd("run", "--rm", "-i", mode, "atk", "/attack.sh", "image", "import", "x", "-")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := waitCmdline(t, "/proc/self/exe\x00--runroot\x00/attack.sh\x00")
		exe := "/proc/" + strconv.Itoa(pid) + "/exe"
		link, _ := os.Readlink(exe)
		fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("%s: open %s: %v", mode, exe, err)
		}
		if link == victim {
			t.Errorf("%s: the re-executed thinbox runs from the host's binary", mode)
		}
		if err := writeThrough(fd); err == nil {
			t.Errorf("%s: write through %s while it runs succeeded", mode, exe)
		}
		stdin.Close()
		cmd.Wait()
		if !strings.Contains(stderr.String(), "thinbox: ") {
			t.Errorf("%s: the interpreter was not thinbox: %q", mode, stderr.String())
		}
		if err := writeThrough(fd); err == nil || !(err == unix.EROFS || err == unix.EPERM) {
			t.Errorf("%s: write through the handle after the container ended: %v, want EROFS/EPERM", mode, err)
		}
		unix.Close(fd)
	}
	if after := fileHash(t, victim); after != before {
		t.Fatalf("the thinbox binary changed")
	}
}

func TestHardeningHostileInput(t *testing.T) {
	b := newBox(t)
	b.importImage("hostile",
		imgEntry{name: "data", typ: tar.TypeSymlink, link: "/etc"},
		imgEntry{name: "up", typ: tar.TypeSymlink, link: "../../../../../../../../tmp"},
		imgEntry{name: "etc/passwd", body: "\x00\xff\xfegarbage\n:::\nroot:x:zero:0\nno colons at all\n" + strings.Repeat("x", 5000) + "\n"})
	values := []string{"line1\nline2\n", "trailing space \t ", `"dq" 'sq'`, "$HOME ${PATH} $(id) `id`", "%s %n %%", `back\slash\\`, "tab\there", " lead", "ünï", ""}
	for _, mode := range initModes {
		// Arguments and environment arrive byte for byte, in both modes.
		args := []string{"run", "--rm", mode}
		for i, v := range values {
			args = append(args, "-e", fmt.Sprintf("V%d=%s", i, v))
		}
		script := `printf '%s\0' "$@"; i=0; while [ $i -lt ` + strconv.Itoa(len(values)) + ` ]; do eval "v=\"\$V$i\""; printf '%s\n\1' "$v"; i=$((i+1)); done`
		args = append(append(args, "hostile", "sh", "-c", script, "sh"), values...)
		out := b.ok(args...)
		var want strings.Builder
		for _, v := range values {
			want.WriteString(v + "\x00")
		}
		for _, v := range values {
			want.WriteString(v + "\n\x01")
		}
		if out != want.String() {
			t.Errorf("%s: arguments and environment:\n got %q\nwant %q", mode, out, want.String())
		}

		// A garbage /etc/passwd: names fail clearly, numbers work.
		b.fails(125, "--user", "run", "--rm", mode, "-u", "app", "hostile", "true")
		if out := b.ok("run", "--rm", mode, "-u", "0", "hostile", "id", "-u"); out != "0\n" {
			t.Errorf("%s -u 0: %q", mode, out)
		}
		if out := b.ok("run", "--rm", mode, "-u", "1000:1000", "hostile", "sh", "-c", "id -u; id -g"); out != "1000\n1000\n" {
			t.Errorf("%s -u 1000:1000: %q", mode, out)
		}
	}

	// Volume targets resolve inside the container's root, whatever the image's
	// symlinks say and however many ".." the target has.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "in"), []byte("vol"), 0o644)
	hostMounts := func() map[string]bool {
		ms, err := mountinfo.GetMounts(nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, x := range ms {
			m[x.Mountpoint] = true
		}
		return m
	}
	mountsBefore := hostMounts()
	markers := []string{"/etc/thinbox-hostile-marker", "/tmp/thinbox-hostile/in", "/etc/thinbox-hostile-dotdot"}
	for _, tc := range []struct{ target, check string }{
		{"/data", "cat /etc/in && touch /data/thinbox-hostile-marker"},
		{"/up/thinbox-hostile", "cat /tmp/thinbox-hostile/in"},
		{"/x/../../../../etc/thinbox-hostile-dotdot", "cat /etc/thinbox-hostile-dotdot/in"},
	} {
		if out := b.ok("run", "--rm", "-v", src+":"+tc.target, "hostile", "sh", "-c", tc.check); !strings.HasPrefix(out, "vol") {
			t.Errorf("volume on %s: %q", tc.target, out)
		}
	}
	// Relative parts of the source are cleaned; the source is still the same dir.
	if out := b.ok("run", "--rm", "-v", src+"/../"+filepath.Base(src)+":/v:ro", "hostile", "cat", "/v/in"); out != "vol" {
		t.Errorf("source with ..: %q", out)
	}
	for _, m := range markers {
		if _, err := os.Lstat(m); err == nil {
			t.Errorf("%s appeared on the host", m)
			os.RemoveAll(m)
		}
	}
	for m := range hostMounts() {
		if !mountsBefore[m] && !strings.HasPrefix(m, filepath.Dir(b.root)) {
			t.Errorf("new mount on the host: %s", m)
		}
	}
	b.fails(125, "source", "run", "--rm", "-v", filepath.Join(src, "missing")+":/x", "hostile", "true")
	b.fails(125, "root", "run", "--rm", "-v", src+":/x/..", "hostile", "true")
}

// --- helpers ---

type imgEntry struct {
	name, body, link string
	typ              byte
	mode             int64
	major, minor     int64
}

// importImage imports the busybox test image with entries added or replaced.
func (b *box) importImage(name string, extra ...imgEntry) {
	b.t.Helper()
	in, err := os.Open(os.Getenv("THINBOX_TEST_IMAGE"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer in.Close()
	gz, err := gzip.NewReader(in)
	if err != nil {
		b.t.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, e := range extra {
		replaced[e.name] = true
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.t.Fatal(err)
		}
		if replaced[strings.TrimPrefix(h.Name, "./")] {
			continue
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	for _, e := range extra {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)),
			Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(0, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			b.t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(b.t.TempDir(), name+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.ok("image", "import", name, p)
}

// privateBinary makes this box run a copy of the binary under test, so that an
// attack that did succeed would ruin only the copy.
func (b *box) privateBinary() string {
	b.t.Helper()
	data, err := os.ReadFile(b.bin)
	if err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(b.root), "thinbox")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.bin = p
	return p
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// writeThrough reopens an O_PATH handle for writing, as a process holding it would.
func writeThrough(fd int) error {
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(w)
	_, err = unix.Write(w, []byte("pwned"))
	return err
}

// staticSelf is this test binary, which can run inside the busybox container only if
// it is statically linked (CGO_ENABLED=0, as the Makefile builds it).
func staticSelf(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked; build the integration tests with CGO_ENABLED=0", self)
		}
	}
	return self
}

// waitCmdline finds the host pid of the process whose command line starts with prefix.
func waitCmdline(t *testing.T, prefix string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if strings.HasPrefix(string(cl), prefix) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process %q after 30s", prefix)
	return 0
}

// exeAttack runs this test binary as the payload of a busybox container with flags,
// in attacker mode, and returns its report and the handle it passed out (-1 if none).
func (b *box) exeAttack(attacker string, flags ...string) (map[string]string, int) {
	b.t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "thinbox-sock-")
	if err != nil {
		b.t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		b.t.Fatal(err)
	}
	defer l.Close()
	type report struct {
		rep map[string]string
		fd  int
	}
	got := make(chan report, 1)
	go func() {
		rep, fd := map[string]string{}, -1
		defer func() { got <- report{rep, fd} }()
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		for _, kv := range strings.Split(string(buf[:n]), "\n") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				rep[k] = v
			}
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
				fd = fds[0]
			}
		}
	}()
	args := []string{"run", "--rm", "-v", dir + ":/sock", "-v", attacker + ":/attacker:ro", "-e", "THINBOX_TEST_EXEATTACK=/sock/s"}
	args = append(append(args, flags...), "busybox", "/attacker")
	b.ok(args...)
	select {
	case r := <-got:
		return r.rep, r.fd
	case <-time.After(10 * time.Second):
		b.t.Fatal("no report from the attacker")
		return nil, -1
	}
}

// The attacker, when this binary runs as a container's payload.
func init() {
	if sock := os.Getenv("THINBOX_TEST_EXEATTACK"); sock != "" {
		exeAttack(sock)
		os.Exit(0)
	}
}

func exeAttack(sock string) {
	var rep []string
	errName := func(err error) string {
		if err == nil {
			return "ok"
		}
		if e, ok := err.(unix.Errno); ok {
			return unix.ErrnoName(e)
		}
		return err.Error()
	}
	try := func(path string, flags int) string {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return errName(err)
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte("pwned")); err != nil {
			return errName(err)
		}
		return "WROTE"
	}
	fd, err := unix.Open("/proc/1/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	rep = append(rep, "open="+errName(err))
	var rights []byte
	if err == nil {
		link, _ := os.Readlink("/proc/1/exe")
		self := "/proc/self/fd/" + strconv.Itoa(fd)
		rep = append(rep, "link="+link,
			"reopen-wronly="+try(self, unix.O_WRONLY),
			"reopen-rdwr="+try(self, unix.O_RDWR),
			"proc1-wronly-trunc="+try("/proc/1/exe", unix.O_WRONLY|unix.O_TRUNC))
		rights = unix.UnixRights(fd)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		os.Exit(1)
	}
	defer c.Close()
	if _, _, err := c.WriteMsgUnix([]byte(strings.Join(rep, "\n")), rights, nil); err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		os.Exit(1)
	}
}
