# tools/local.mk: benchmarks, admin tools and setup scripts.
noinst_PROGRAMS += tools/sluice-ringbench tools/sluice-logbench
bin_PROGRAMS += tools/sluice-logdump
tools_sluice_ringbench_SOURCES = tools/sluice-ringbench.c
tools_sluice_ringbench_LDADD = $(SLUICE_LIBS)
dist_noinst_SCRIPTS += tools/install-deps
tools_sluice_logbench_SOURCES = tools/sluice-logbench.c
tools_sluice_logbench_LDADD = $(SLUICE_LIBS)
tools_sluice_logdump_SOURCES = tools/sluice-logdump.c
tools_sluice_logdump_LDADD = $(SLUICE_LIBS)
bin_PROGRAMS += tools/sluice-bench
tools_sluice_bench_SOURCES = tools/sluice-bench.c tools/bench_hist.c tools/bench_hist.h \
	tools/bench_batch.c tools/bench_batch.h
tools_sluice_bench_LDADD = $(SLUICE_LIBS)
bin_PROGRAMS += tools/sluicectl
tools_sluicectl_SOURCES = tools/sluicectl.c
tools_sluicectl_LDADD = $(SLUICE_LIBS)
