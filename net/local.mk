# net/local.mk: the net/ layer (Kafka wire codec, protocol constants) and the sluiced daemon.
libsluice_a_SOURCES += net/wire.c net/kafka.c net/server.c net/conn.c net/api.c \
	net/api_versions.c net/api_metadata.c net/api_produce.c net/api_init_producer_id.c \
	net/api_fetch.c net/api_list_offsets.c net/api_create_topics.c net/api_delete_topics.c \
	net/api_create_partitions.c net/api_describe_configs.c \
	net/api_find_coordinator.c net/api_join_group.c net/api_sync_group.c net/api_heartbeat.c \
	net/api_leave_group.c net/api_offset_commit.c net/api_offset_fetch.c \
	net/api_describe_groups.c net/api_list_groups.c net/api_delete_groups.c
noinst_HEADERS += net/wire.h net/kafka.h net/server.h net/conn.h net/api.h
bin_PROGRAMS += sluiced
sluiced_SOURCES = net/sluiced.c
sluiced_LDADD = $(SLUICE_LIBS)
