# benchmarks/phases.awk — where the time of `thinbox run --rm IMAGE CMD` goes, from kernel
# tracepoints (no instrumentation of thinbox): profile.sh records sched_process_exec/fork/
# exit, exit_group, wait and mount with `perf record -a` and feeds
#   perf script -F comm,pid,tid,time,event,trace
# to `awk -v LAUNCHER=PATH-AS-EXECED -f phases.awk`. Prints the median of each phase.
function ms(a, b) { return (b - a) * 1000 }
{
	split($2, pt, "/"); tg = pt[1]; tid = pt[2]; t = $3; sub(/:$/, "", t); ev = $4; sub(/:$/, "", ev)
}
ev == "sched:sched_process_exec" {
	fn = ""; for (i = 5; i <= NF; i++) if ($i ~ /^filename=/) fn = substr($i, 10)
	if (fn == LAUNCHER) { flush(); n++; L = tg; t0 = t; I = ""; P = ""; m1 = ""; ml = ""; pe = ""; px = ""; ix = ""; lw = ""; te = ""; next }
	if (L == "") next
	# The init: the first exec by a child of the launcher (/proc/self/exe, or the sealed
	# copy of the binary through a file descriptor). Then the payload: the next exec by
	# the init itself (--no-init) or by its child (--init).
	if (I == "" && fork_parent[tg] == L) { I = tg; tc = fork_t[tg]; ie = t; next }
	if (I != "" && pe == "" && (tg == I || fork_parent[tg] == I)) { P = tg; pe = t; next }
}
ev == "sched:sched_process_fork" {
	for (i = 5; i <= NF; i++) if ($i ~ /^child_pid=/) c = substr($i, 11)
	fork_parent[c] = tg; fork_t[c] = t
}
ev == "syscalls:sys_enter_mount" && tg == I { if (m1 == "") m1 = t; if (pe == "") ml = t }
ev == "syscalls:sys_enter_exit_group" && P != "" && tg == P && px == "" { px = t }
ev == "syscalls:sys_enter_exit_group" && I != "" && tg == I && tid == I && ix == "" { ix = t }
(ev == "syscalls:sys_exit_waitid" || ev == "syscalls:sys_exit_wait4") && tg == L && ix != "" && lw == "" && $NF !~ /^0xfff/ { lw = t }
ev == "sched:sched_process_exit" && tg == L && $NF == "group_dead=true" { te = t }
function flush() {
	if (n == 0 || te == "" || pe == "") return
	k++
	A[k] = ms(t0, tc); B[k] = ms(tc, ie); C[k] = ms(ie, m1); D[k] = ms(m1, ml); E[k] = ms(ml, pe)
	F[k] = ms(pe, px); G[k] = ms(px, ix); H[k] = ms(ix, lw); J[k] = ms(lw, te); T[k] = ms(t0, te)
}
function med(x,   i, j, v, tmp, m) { m = 0; for (i in x) v[++m] = x[i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { tmp = v[i]; v[i] = v[j]; v[j] = tmp }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
END {
	flush()
	printf "%d runs; median ms per phase\n", k
	printf "%6.2f  launcher: exec -> clone of the init (Go runtime, package init, CLI, GC, record, layer dirs, config)\n", med(A)
	printf "%6.2f  clone(new namespaces) -> exec of /proc/self/exe\n", med(B)
	printf "%6.2f  init: exec -> first mount (second Go runtime start, package init, config over the socket)\n", med(C)
	printf "%6.2f  init: mounts, pivot_root (first to last mount)\n", med(D)
	printf "%6.2f  init: last mount -> payload exec (cgroup ns, signals, fork of the payload with --init)\n", med(E)
	printf "%6.2f  payload: exec -> exit_group (/bin/true itself)\n", med(F)
	printf "%6.2f  init: payload exit -> init exit_group (reaping; 0 with --no-init)\n", med(G)
	printf "%6.2f  kernel: init exit_group -> launcher's wait returns (namespace teardown)\n", med(H)
	printf "%6.2f  launcher: wait -> exit (record, layer removal)\n", med(J)
	printf "%6.2f  total (exec -> exit of the launcher)\n", med(T)
}
