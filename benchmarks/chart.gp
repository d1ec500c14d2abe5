# benchmarks/chart.gp — the chart of RESULTS.md, drawn by report.sh:
#   gnuplot -e "hostdat='…'; guestdat='…'; out='…'; guestgoal=…; hostn=…; guestn=…" chart.gp
# (hostn, guestn: lines in each .dat; 0 draws an empty panel)
# Each .dat line: tool<TAB>time relative to the reference (paired median)<TAB>colour (decimal 0xRRGGBB).
if (!exists("guestgoal")) guestgoal = 1.0
if (!exists("hostn")) hostn = 1
if (!exists("guestn")) guestn = 1
set terminal pngcairo size 1400,620 font "DejaVu Sans,11"
set output out
set multiplot layout 1,2 title "thinbox start-up vs peers: time relative to the bare reference (lower is better; log scale)" font ",13"
set style fill solid 0.85 border -1
set boxwidth 0.7
set offsets 0.6, 0.6, 0, 0
set logscale y
set yrange [0.1:100]
set ytics (0.1, 0.2, 0.5, 1, 1.5, 2, 5, 10, 20, 50, 100)
set grid ytics lc rgb "#dddddd"
set xtics rotate by -40 left nomirror
set key off
set bmargin 7
set title "host, namespaces only: ×(unshare + chroot); orange = thinbox"
set arrow 1 from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 2 lc rgb "#cc0000" lw 2
set label 1 "goal 1.5×" at graph 0.01, first 1.65 tc rgb "#cc0000"
if (hostn > 0) {
	plot hostdat using 0:2:3:xtic(1) with boxes lc rgb variable, \
	     '' using 0:2:(sprintf("%.2g", $2)) with labels offset 0,0.7 font ",9"
} else {
	set label 9 "host phase not run" at graph 0.5, graph 0.5 center
	set xrange [0:1]
	plot 1/0 notitle
	unset label 9
	set autoscale x
}
set title "guest (TCG), scope + 3 limits: ×(systemd-run --scope + unshare + chroot)"
unset arrow 1
unset label 1
set yrange [0.1:20]
set arrow 2 from graph 0, first guestgoal to graph 1, first guestgoal nohead dt 2 lc rgb "#cc0000" lw 2
set label 2 "goal: crun" at graph 0.01, first guestgoal*1.1 tc rgb "#cc0000"
if (guestn > 0) {
	plot guestdat using 0:2:3:xtic(1) with boxes lc rgb variable, \
	     '' using 0:2:(sprintf("%.2g", $2)) with labels offset 0,0.7 font ",9"
} else {
	set label 9 "guest phase not run" at graph 0.5, graph 0.5 center
	set xrange [0:1]
	plot 1/0 notitle
}
unset multiplot
