# io/local.mk: the io/ layer: io_uring setup and probe, the shard event loop, buffer pool,
# disk primitives.
libsluice_a_SOURCES += io/uring.c io/loop.c io/pool.c io/disk.c
noinst_HEADERS += io/uring.h io/loop.h io/pool.h io/disk.h
