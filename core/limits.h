/*
 * core/limits.h: every capacity of sluice in one place, each with the reason for its
 * value, and _Static_asserts on the relations between them. Memory in sluice is
 * allocated at start from these numbers; nothing on the hot path grows without a bound
 * named here. Runtime-tunable settings (config.c) take their defaults and ranges from
 * these constants.
 */
#ifndef SLUICE_CORE_LIMITS_H
#define SLUICE_CORE_LIMITS_H

#include <stdint.h>

/* Cache line size on x86-64 and arm64; producer and consumer indexes live on separate
 * lines so the two cores do not bounce one line between them. */
#define LIMITS_CACHE_LINE_BYTES 64

/* Most shards one process runs: a shard per core, and the biggest common 2-socket
 * servers have 256 hardware threads. The N x N mesh has SHARDS_MAX^2 rings. */
#define LIMITS_SHARDS_MAX 256

/* Entries of each shard's io_uring submission queue. Enough for a loop iteration that
 * posts receives, sends, a disk write and mesh wake-ups for every peer without a
 * mid-iteration submit; the completion queue is sized twice as large by the kernel. */
#define LIMITS_URING_ENTRIES 1024

/* Slots of one SPSC ring between two shards. At 32-byte messages a ring is 128 KiB;
 * the N x N mesh of a 64-shard machine is then 512 MiB of virtual space but only the
 * touched pages are resident. 4096 lets a shard forward a whole loop's worth of
 * requests to one peer before backpressure. */
#define LIMITS_RING_SLOTS 4096

/* Largest ring the SPSC module accepts; indexes are uint32_t and capacity must leave
 * the difference tail - head unambiguous. */
#define LIMITS_RING_SLOTS_MAX (1u << 30)

/* Messages one shard pops from one peer's ring per drain call, so one busy peer cannot
 * starve the others or the shard's own sockets. */
#define LIMITS_MESH_DRAIN_BATCH 256

/* Per-shard buffer pool: chunks are the unit of network receive, staging and cache
 * buffers. 64 KiB holds a typical produce request; the region is a whole number of
 * 2 MiB huge pages. */
#define LIMITS_POOL_CHUNK_BYTES (64u * 1024)
#define LIMITS_HUGE_PAGE_BYTES (2u * 1024 * 1024)
/* Default pool region per shard. 256 MiB = 4096 chunks; fits RLIMIT_MEMLOCK only when
 * running as root (CAP_IPC_LOCK) or with the limit raised, which start-up checks. */
#define LIMITS_POOL_REGION_BYTES (256u * 1024 * 1024)
/* The kernel registers one fixed buffer of at most 1 GiB (io_uring_register_buffers). */
#define LIMITS_POOL_REGION_BYTES_MAX (1024u * 1024 * 1024)
#define LIMITS_POOL_CHUNKS_MAX (LIMITS_POOL_REGION_BYTES_MAX / LIMITS_POOL_CHUNK_BYTES)
/* Smallest chunk a pool accepts: one 4 KiB page. Chunks are the unit of O_DIRECT disk
 * I/O, which needs block-aligned buffers, and a smaller chunk would only multiply the
 * free-list entries (at most LIMITS_POOL_CHUNKS_MAX, so 4 KiB chunks cap a pool at
 * 64 MiB). */
#define LIMITS_POOL_CHUNK_BYTES_MIN 4096u

/* One log line, formatted before a single write(2) so lines from shards never mix. */
#define LIMITS_LOG_LINE_BYTES 1024

/* Longest config value (a path) and longest config file line. */
#define LIMITS_CONFIG_VALUE_BYTES 4096
#define LIMITS_CONFIG_LINE_BYTES (LIMITS_CONFIG_VALUE_BYTES + 256)

/* A shard must be up within this time or start-up fails (ring setup, pool, pinning). */
#define LIMITS_SHARD_START_TIMEOUT_MS 10000

_Static_assert((LIMITS_RING_SLOTS & (LIMITS_RING_SLOTS - 1)) == 0,
	       "ring capacity must be a power of two");
_Static_assert(LIMITS_RING_SLOTS <= LIMITS_RING_SLOTS_MAX, "default ring exceeds the maximum");
_Static_assert(LIMITS_MESH_DRAIN_BATCH <= LIMITS_RING_SLOTS,
	       "a drain batch cannot exceed what a ring holds");
_Static_assert(LIMITS_URING_ENTRIES >= 2 * LIMITS_SHARDS_MAX,
	       "one loop iteration may post a wake-up to every peer shard");
_Static_assert(LIMITS_POOL_REGION_BYTES % LIMITS_HUGE_PAGE_BYTES == 0,
	       "the pool region is a whole number of huge pages");
_Static_assert(LIMITS_HUGE_PAGE_BYTES % LIMITS_POOL_CHUNK_BYTES == 0,
	       "chunks must tile huge pages exactly");
_Static_assert(LIMITS_POOL_REGION_BYTES <= LIMITS_POOL_REGION_BYTES_MAX,
	       "the pool is registered as one fixed buffer of at most 1 GiB");
_Static_assert(LIMITS_POOL_CHUNK_BYTES_MIN <= LIMITS_POOL_CHUNK_BYTES &&
		       LIMITS_HUGE_PAGE_BYTES % LIMITS_POOL_CHUNK_BYTES_MIN == 0,
	       "the default chunk must be allowed, and the smallest chunk must tile huge pages");

#endif
