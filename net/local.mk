# net/local.mk: the net/ layer (Kafka wire codec, protocol constants) and the sluiced daemon.
libsluice_a_SOURCES += net/wire.c net/kafka.c net/server.c net/conn.c net/api.c \
	net/api_versions.c net/api_metadata.c
noinst_HEADERS += net/wire.h net/kafka.h net/server.h net/conn.h net/api.h
bin_PROGRAMS += sluiced
sluiced_SOURCES = net/sluiced.c
sluiced_LDADD = $(SLUICE_LIBS)
