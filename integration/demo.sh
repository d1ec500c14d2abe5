#!/usr/bin/env bash
# The demo behind `make demo`: import the busybox image into a throw-away store and run
# a container that shows its isolation — and, where systemd is PID 1 with cgroup v2,
# its transient scope and limits.
#
#   integration/demo.sh THINBOX_BINARY BUSYBOX_TARBALL
set -euo pipefail

bin=$(realpath "${1:?usage: demo.sh THINBOX IMAGE}")
img=$(realpath "${2:?usage: demo.sh THINBOX IMAGE}")
if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (the rootless mode comes later)" >&2
	exit 1
fi
store=$(mktemp -d /var/tmp/thinbox-demo.XXXXXX)
trap 'rm -rf "$store"' EXIT

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
tb() { "$bin" --root "$store/lib" --runroot "$store/run" "$@"; }

show thinbox --version
tb --version
show thinbox image import busybox "$(basename "$img")"
tb image import busybox "$img"
show thinbox image ls
tb image ls

script='echo "hostname:        $(hostname)"
echo "my pid:          $$ (PID 1 is $(cat /proc/1/comm))"
echo "processes:       $(ls /proc | grep -c "^[0-9]") visible ($(ps -o comm | tail -n +2 | tr "\n" " "))"
echo "network:         $(ls /sys/class/net | tr "\n" " ")(lo: $(ip -o link show lo | sed "s/.*<\(.*\)>.*/\1/"))"
echo "root filesystem: $(cat /etc/thinbox-image)"
echo "cgroup:          $(cat /proc/self/cgroup)"'

limits=()
if [ -d /run/systemd/system ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	limits=(--memory 64m --pids 20 --cpu 0.5)
	script+='
echo "memory.max:      $(cat /sys/fs/cgroup/memory.max)"
echo "pids.max:        $(cat /sys/fs/cgroup/pids.max)"
echo "cpu.max:         $(cat /sys/fs/cgroup/cpu.max)"'
fi
show thinbox run --rm --name demo "${limits[@]}" busybox sh -c '...'
tb run --rm --name demo "${limits[@]}" busybox sh -c "$script"
if [ ${#limits[@]} -eq 0 ]; then
	printf '\n(systemd is not PID 1 here, or cgroup v2 has no memory controller: no scope and no limits;\n `make test` shows them in a qemu guest with a real systemd.)\n'
fi
