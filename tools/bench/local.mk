# tools/bench/local.mk: `make bench` (the whole benchmark run against this machine's
# limits and a peer) and the topic-count scaling experiment; both are scripts run
# against the release binaries of this build tree.
dist_noinst_SCRIPTS += tools/bench/run-bench tools/bench/topic-scaling

bench: all
	$(SHELL) $(top_srcdir)/tools/bench/run-bench

bench-topic-scaling: all
	$(SHELL) $(top_srcdir)/tools/bench/topic-scaling

.PHONY: bench bench-topic-scaling
