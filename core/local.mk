# core/local.mk: the core/ layer: limits, asserts, logging, config, SPSC ring and mesh, shards.
libsluice_a_SOURCES += core/assert.c core/logger.c core/config.c core/ring.c core/mesh.c \
	core/shard.c
noinst_HEADERS += core/limits.h core/assert.h core/logger.h core/config.h core/ring.h \
	core/mesh.h core/shard.h
