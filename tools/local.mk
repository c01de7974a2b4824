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
