# tools/local.mk: benchmarks, admin tools and setup scripts.
noinst_PROGRAMS += tools/sluice-ringbench
tools_sluice_ringbench_SOURCES = tools/sluice-ringbench.c
tools_sluice_ringbench_LDADD = $(SLUICE_LIBS)
dist_noinst_SCRIPTS += tools/install-deps
