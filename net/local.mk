# net/local.mk: the net/ layer and the sluiced daemon entry point.
bin_PROGRAMS += sluiced
sluiced_SOURCES = net/sluiced.c
sluiced_LDADD = $(SLUICE_LIBS)
