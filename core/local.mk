# core/local.mk: the core/ layer: limits, asserts, logging, config, SPSC ring and mesh, shards,
# and storage: CRC32C, log frames, record-batch headers, partition index, metadata, shard log.
libsluice_a_SOURCES += core/assert.c core/logger.c core/config.c core/ring.c core/mesh.c \
	core/shard.c core/crc32c.c core/frame.c core/batch.c core/index.c core/meta.c \
	core/shardlog.c core/topics.c core/broker.c \
	core/producers.c core/groups.c core/coordinator.c
noinst_HEADERS += core/limits.h core/assert.h core/logger.h core/config.h core/ring.h \
	core/mesh.h core/shard.h core/crc32c.h core/frame.h core/batch.h core/index.h \
	core/meta.h core/shardlog.h core/topics.h core/broker.h \
	core/producers.h core/groups.h core/coordinator.h
