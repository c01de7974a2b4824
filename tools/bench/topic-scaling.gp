# tools/bench/topic-scaling.gp: the plot of tools/bench/topic-scaling. It draws sluice's
# produce throughput (MB/s, left axis) and p99 produce latency (ms, right axis, log) against
# the partition count (log axis: N topics of 1 partition, the last point 100 topics x
# 1,000 partitions) for each series in the data file that topic_scaling_report.py wrote,
# the goal lines of issue 5 (90 % and 80 % of the 1-topic throughput), and Kafka's
# published drop (-98 % from 64 to 256 topics, Alibaba's RocketMQ comparison, other
# hardware) as a reference segment starting from sluice's own 1-topic throughput.
# Variables set with -e: datafile, varsfile, outfile, term ("pngcairo" or "png"), subtitle,
# full_title and linger_title (the key entries of the two throughput series).

if (!exists("term")) term = "pngcairo"
if (!exists("subtitle")) subtitle = ""
if (!exists("full_title")) full_title = "sluice MB/s, full batches (sluice-bench round-robin)"
if (!exists("linger_title")) linger_title = "sluice MB/s, lingered batches"
load varsfile

if (term eq "pngcairo") {
	set terminal pngcairo size 1280,820 enhanced font "DejaVu Sans,11"
} else {
	set terminal png size 1280,820 font "DejaVuSans,10"
}
set output outfile

set title "sluice: produce throughput and p99 latency against topic count\n{/*0.8 ".subtitle."}"
set logscale x
set xrange [0.7:xmax * 1.6]
set xtics ("1" 1, "10" 10, "100" 100, "1,000" 1000, "10,000" 10000, \
	"100,000\n(100 x 1,000)" 100000)
set xlabel "topics of 1 partition (last point: partitions)"
set ylabel "throughput (MB/s of batch bytes)"
set yrange [0:*]
set ytics nomirror
set y2label "p99 produce latency (ms, log)"
set logscale y2
set y2tics
set grid xtics ytics lc rgb "#dddddd"
set key below left box width 1 font ",10"
set bmargin 10

kafka_label = "Kafka, other hardware (Alibaba RocketMQ comparison): -98 % from 64 to 256 topics"
if (has_base) {
	set object 1 rect from 64, graph 0 to 256, graph 1 fc rgb "#fbe3e3" fs solid 0.6 noborder behind
	set arrow 1 from 64, base_mbs to 256, base_mbs * 0.02 lc rgb "#c00000" lw 3 dt 2 head filled
	set label 1 "Kafka: -98 %\n64 -> 256 topics\n(other hardware;\ndrawn from sluice's\n1-topic MB/s)" \
		at 270, base_mbs * 0.4 left tc rgb "#c00000" font ",9"
	set arrow 2 from graph 0, first base_mbs * 0.9 to graph 1, first base_mbs * 0.9 nohead \
		lc rgb "#2a9d2a" dt 3 lw 1.5
	set label 2 "90 % of 1 topic (goal: 10,000 topics)" at graph 0.08, first base_mbs * 0.9 \
		offset 0, 0.6 tc rgb "#2a9d2a" font ",9"
	set arrow 3 from graph 0, first base_mbs * 0.8 to graph 1, first base_mbs * 0.8 nohead \
		lc rgb "#2a9d2a" dt 3 lw 1.5
	set label 3 "80 % (goal: 100,000 partitions)" at graph 0.08, first base_mbs * 0.8 \
		offset 0, -0.7 tc rgb "#2a9d2a" font ",9"
}
set yrange [0:(ymax > base_mbs ? ymax : base_mbs) * 1.15]

# The plot command is put together from the series the data file has (index 0: full,
# 1: lingered, 2: the 1-topic 1 MiB-batch reference). The lingered line goes first: where
# it equals the full one, the full one shows on top.
if (!exists("has_bigreq")) has_bigreq = 0
bigreq_title = "reference: 1 topic, 1 MiB batches (requests as large as at 100+ partitions)"
lin = "datafile index 1 using 1:3 axes x1y1 with linespoints lw 2 pt 5 ps 1.1 lc rgb '#e07b00' title linger_title, "
ful = "datafile index 0 using 1:3 axes x1y1 with linespoints lw 2 pt 7 ps 1.3 lc rgb '#1f5fbf' title full_title, "
big = "datafile index 2 using 1:3 axes x1y1 with points pt 3 ps 2.5 lw 2 lc rgb '#6a2c91' title bigreq_title, "
p99f = "datafile index 0 using 1:5 axes x1y2 with linespoints lw 1.5 dt 2 pt 6 ps 1.3 lc rgb '#1f5fbf' title 'sluice p99 ms, full batches (right axis)', "
p99l = "datafile index 1 using 1:5 axes x1y2 with linespoints lw 1.5 dt 2 pt 4 ps 1.1 lc rgb '#e07b00' title 'sluice p99 ms, lingered batches (right axis)', "
kaf = "NaN with lines lw 3 dt 2 lc rgb '#c00000' title kafka_label"
cmd = "plot " . (has_linger ? lin : "") . ful . (has_bigreq ? big : "") . p99f . \
	(has_linger ? p99l : "") . kaf
eval cmd
