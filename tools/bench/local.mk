# tools/bench/local.mk: `make bench` (the whole benchmark run against this machine's
# limits and a peer) and the topic-count scaling experiment; both are scripts run
# against the release binaries of this build tree.
dist_noinst_SCRIPTS += tools/bench/run-bench tools/bench/topic-scaling
# run-bench's parser and table (bench_report.py) and the stand-in header it compiles
# librdkafka's rdkafka_performance example with (rd.h).
EXTRA_DIST += tools/bench/bench_report.py tools/bench/rd.h tools/bench/topic-scaling.gp tools/bench/topic_scaling_report.py

# BENCH_FLAGS: options for run-bench, e.g. make bench BENCH_FLAGS=--quick
bench: all
	$(SHELL) $(top_srcdir)/tools/bench/run-bench $(BENCH_FLAGS)

bench-topic-scaling: all
	$(SHELL) $(top_srcdir)/tools/bench/topic-scaling

.PHONY: bench bench-topic-scaling
