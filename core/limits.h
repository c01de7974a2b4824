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

/* Connections each shard accepts by default and at most: the connection table is
 * preallocated at start (nginx-style) with a free list. */
#define LIMITS_CONNECTIONS_PER_SHARD 4096
#define LIMITS_CONNECTIONS_PER_SHARD_MAX 65536

/* Requests one connection may have read and not yet answered (net/conn). Responses go
 * out in request order, so each one holds a slot until its turn; at the limit the
 * connection stops reading (TCP backpressure) until the oldest is sent. The Java
 * client pipelines 5 by default, librdkafka up to its max.in.flight; 32 keeps a
 * pipelining producer's shard busy while a connection's table entry, slots included,
 * stays about 2.5 KiB (10 MiB for the default table). */
#define LIMITS_CONN_INFLIGHT_MAX 32u
/* iovecs one sendmsg carries: consecutive ready responses (a header buffer each, plus
 * a Fetch response's record slices) go out in one send. The kernel's UIO_MAXIOV. */
#define LIMITS_CONN_SEND_IOVECS_MAX 1024u
/* Pool chunks in each shard's provided-buffer ring for multishot receives, when the
 * pool has them to spare (net/server takes at most half of what is free, rounded down
 * to a power of two, as the kernel requires). 256 x 64 KiB = 16 MiB: every connection
 * of a busy loop turn gets a buffer; a receive that finds none ends with -ENOBUFS and
 * is re-armed once the turn gave its buffers back. */
#define LIMITS_NET_RECV_BUFFERS 256u
/* Fewest receive buffers a shard starts with; below it the pool is too small. */
#define LIMITS_NET_RECV_BUFFERS_MIN 8u
/* Heap bytes one shard may hold for request frames that span receive buffers (each is
 * copied into a buffer of its own size) and bytes left over while a connection waits.
 * Past it, a connection whose frame does not fit stops reading until others finish,
 * except that a frame always fits when nothing else is held, so one request up to
 * socket.request.max.bytes still gets through. */
#define LIMITS_NET_ASSEMBLY_BYTES (64u * 1024 * 1024)
/* listen(2) backlog of each shard's socket (the kernel caps it at somaxconn). */
#define LIMITS_NET_LISTEN_BACKLOG 1024
/* Fetch long-polls one shard keeps on its wake-up list (net/api_fetch): each write
 * completion that moves a high watermark rechecks the local partitions of every one of
 * them, so the list is bounded. A long-poll arriving when it is full still waits, for its
 * whole max_wait_ms (its timer), without the early answer new data would give. */
#define LIMITS_FETCH_WAITERS_MAX 1024u
/* Record bytes one Fetch response carries, besides the first batch, which always goes
 * (KIP-74): a request's max_bytes is lowered to it. Kafka's broker setting fetch.max.bytes
 * (KIP-541) has this default, 55 MiB, above the clients' own 50 MiB default. */
#define LIMITS_FETCH_RESPONSE_BYTES_MAX (55u * 1024 * 1024)

/* Timers one loop can have armed at once: a Fetch long-poll per connection (see the
 * connection limit) plus a few per layer. The heap is 8 bytes a slot. */
#define LIMITS_LOOP_TIMERS_MAX 16384
_Static_assert(LIMITS_LOOP_TIMERS_MAX >= 2 * LIMITS_CONNECTIONS_PER_SHARD,
	       "a long-poll per default connection, and room for the layers' timers");

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

/* Largest Kafka RecordBatch sluice accepts on Produce and stores, whole (header and
 * records). Kafka's default message.max.bytes is about 1 MiB and socket.request.max.bytes
 * 100 MiB; 16 MiB leaves room for clients configured far above Kafka's default while
 * keeping one batch a bounded piece of a shard's staging memory. */
#define LIMITS_BATCH_BYTES_MAX (16u * 1024 * 1024)
/* A shard-log frame header (core/frame.h, FRAME_HEADER_BYTES) in front of each batch. */
#define LIMITS_FRAME_HEADER_BYTES 40u
/* Largest frame in the shard log: one largest batch behind its frame header. */
#define LIMITS_FRAME_BYTES_MAX (LIMITS_BATCH_BYTES_MAX + LIMITS_FRAME_HEADER_BYTES)
/* Largest Kafka request frame (the 4-byte size prefix's value) a connection accepts;
 * a bigger one closes the connection (DESIGN §4). Kafka's socket.request.max.bytes
 * default, 100 MiB: a request must carry at least one largest batch, and clients size
 * their requests by what Kafka accepts. */
#define LIMITS_REQUEST_BYTES_MAX (100u * 1024 * 1024)
_Static_assert(LIMITS_BATCH_BYTES_MAX < LIMITS_REQUEST_BYTES_MAX,
	       "a Produce request must be able to carry the largest batch sluice accepts");
_Static_assert(LIMITS_REQUEST_BYTES_MAX <= INT32_MAX, "the Kafka size prefix is an i32");
_Static_assert((LIMITS_NET_RECV_BUFFERS & (LIMITS_NET_RECV_BUFFERS - 1)) == 0 &&
		       (LIMITS_NET_RECV_BUFFERS_MIN & (LIMITS_NET_RECV_BUFFERS_MIN - 1)) == 0 &&
		       LIMITS_NET_RECV_BUFFERS_MIN <= LIMITS_NET_RECV_BUFFERS,
	       "a provided-buffer ring has a power-of-two number of entries");
_Static_assert(LIMITS_NET_RECV_BUFFERS * LIMITS_POOL_CHUNK_BYTES <= LIMITS_POOL_REGION_BYTES / 8,
	       "the receive ring takes a small share of the default pool");
_Static_assert(LIMITS_NET_RECV_BUFFERS <= 32768, "buffer ids are 16 bits, ring entries <= 32768");
_Static_assert(LIMITS_CONN_INFLIGHT_MAX >= 1 && LIMITS_CONN_INFLIGHT_MAX <= 256,
	       "a connection's slots live inside its preallocated table entry");

/* Shard log (core/shardlog). New segment files are this big: few enough files (one per
 * GiB) for long retention, small enough that retention frees space in useful steps and
 * that recovery rescans at most one segment. */
#define LIMITS_SHARDLOG_SEGMENT_BYTES (1024ull * 1024 * 1024)
/* The staging ring each shard writes through, which is also its tail cache: 64 MiB
 * holds about 30 ms of a 2 GB/s disk, so a flush can grow while the previous one is on
 * the disk, and it holds a largest frame twice over (padding before it, in the worst
 * case, plus the frame and an unflushed block), the bound that lets any frame in. */
#define LIMITS_SHARDLOG_STAGING_BYTES (64u * 1024 * 1024)
/* Smallest staging ring (tests and small machines): 64 blocks. */
#define LIMITS_SHARDLOG_STAGING_BYTES_MIN (256u * 1024)
/* Partitions one shard log registers, by default: the registry (an open-addressing
 * table at most half full) is allocated at open, about 100 bytes per slot. */
#define LIMITS_SHARDLOG_PARTITIONS_MAX 131072u
/* Appends waiting for their write (or fdatasync) at once: 48 bytes each, 3 MiB per shard;
 * past it appends get -EAGAIN. 64 Ki of 1 KiB batches is the whole default ring. */
#define LIMITS_SHARDLOG_APPENDS_WAITING_MAX 65536u
/* Reads holding a pin on the staging ring at once (one per Fetch partition in flight). */
#define LIMITS_SHARDLOG_PINS_MAX 4096u
/* Slices one read returns: one per batch from the cache, one per chunk piece from disk;
 * 512 batches of 1 KiB and more fill Kafka's default 1 MiB max.partition.fetch.bytes. */
#define LIMITS_SHARDLOG_READ_SLICES_MAX 512u
/* Pool chunks (and READ_FIXED operations) one disk read uses: enough for one largest
 * frame in default chunks, with a block of misalignment at each end. */
#define LIMITS_SHARDLOG_READ_CHUNKS_MAX 272u
/* Segment files of one shard: 16 TiB at the default segment size. */
#define LIMITS_SHARDLOG_SEGMENTS_MAX 16384u
/* Largest checkpoint open will read: 32 bytes per indexed batch, so about 32 million
 * batches (512 GiB of 16 KiB batches) below the covered position. */
#define LIMITS_SHARDLOG_CHECKPOINT_BYTES_MAX (1024ull * 1024 * 1024)
/* Read window of the recovery scan (grown to hold a larger frame when one is met). */
#define LIMITS_SHARDLOG_SCAN_BYTES (4u * 1024 * 1024)

/* Topic metadata (core/meta). A topic name is Kafka's: at most 249 bytes, so that
 * "name-partition" still fits a 255-byte file name in Kafka's own layout, which tools
 * and clients assume. */
#define LIMITS_TOPIC_NAME_BYTES 249
/* Topics one broker holds. The name and partition-id tables grow up to this; 1,000,000
 * topics of one partition take about 0.5 GiB of metadata memory. */
#define LIMITS_META_TOPICS_MAX 1000000u
/* Partitions of one topic. Kafka sets no hard limit; 65,536 keeps one topic's journal
 * record (8 bytes per partition) under 1 MiB and is far above any real use. */
#define LIMITS_META_PARTITIONS_PER_TOPIC_MAX 65536u
/* Configs of one topic, and their sizes. Kafka has about 30 topic-level configs with
 * names under 64 bytes; values are numbers, policies and short lists. */
#define LIMITS_META_CONFIGS_PER_TOPIC_MAX 64u
#define LIMITS_META_CONFIG_KEY_BYTES 128u
#define LIMITS_META_CONFIG_VALUE_BYTES 1024u
/* Largest record of the metadata journal: a topic with every partition and config. */
#define LIMITS_META_RECORD_BYTES_MAX (1024u * 1024)
/* Largest journal meta_open reads (whole, into memory). Compaction keeps it near twice
 * the snapshot size, about 30 MiB for 100,000 topics. */
#define LIMITS_META_JOURNAL_BYTES_MAX (1024ull * 1024 * 1024)
/* The journal is rewritten as a snapshot once it exceeds twice the snapshot and this,
 * so small brokers do not rewrite it on every few changes. */
#define LIMITS_META_COMPACT_MIN_BYTES (1024u * 1024)
/* Producer ids reserved per journal write: InitProducerId costs a sync once per block,
 * and a restart skips at most this many ids. */
#define LIMITS_META_PRODUCER_ID_BLOCK 1000u
/* Idempotent producers (core/producers): producer ids whose last batches one partition
 * remembers, and one shard over all its partitions. Kafka keeps every producer id until
 * it has been idle for transactional.id.expiration.ms (7 days in Kafka 2.3); sluice
 * bounds the memory instead and evicts the least recently used producer of the
 * partition (or, at the shard limit, of the shard). An evicted producer that sends
 * again gets UNKNOWN_PRODUCER_ID unless its sequence restarts at 0, as after Kafka's
 * expiry. A producer's state is 112 bytes: at most 16 MiB per shard, taken as used. 1024
 * producers writing to one partition at once is far above real use (every client
 * process is one producer), and each restart of a client leaves one stale id behind. */
#define LIMITS_PRODUCERS_PER_PARTITION_MAX 1024u
#define LIMITS_PRODUCERS_PER_SHARD_MAX 131072u
/* Topic and partition entries one Produce request may hold (net/api_produce): each costs
 * about 150 bytes of state while the request is in flight, against 8 bytes on the wire
 * at least, so an unbounded count would let a 100 MiB request claim 2 GB. A producer
 * sends each broker (shard) one request with the partitions that shard leads, at most
 * a shard log's default registry; a request above the bound closes its connection. */
#define LIMITS_PRODUCE_ENTRIES_MAX 131072u
_Static_assert(LIMITS_PRODUCERS_PER_PARTITION_MAX <= LIMITS_PRODUCERS_PER_SHARD_MAX,
	       "a partition's producers are among its shard's");
_Static_assert(LIMITS_PRODUCE_ENTRIES_MAX >= LIMITS_SHARDLOG_PARTITIONS_MAX,
	       "a request may carry a batch for every partition a shard leads");
/* Topic changes (create, delete, add partitions, set config) one shard may have asked
 * for and not yet had answered (core/topics); more get -EAGAIN. Shard 0 group-commits
 * what is queued (up to TOPICS_BATCH_MAX changes per journal write and per round trip
 * to every shard), so a CreateTopics of thousands of topics fits, and a deeper queue
 * would only add latency. */
#define LIMITS_TOPICS_PENDING_MAX 4096u

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

_Static_assert(LIMITS_FRAME_BYTES_MAX < LIMITS_POOL_REGION_BYTES,
	       "the largest frame must fit in a shard's default buffer pool");
_Static_assert(LIMITS_FRAME_BYTES_MAX <= INT32_MAX,
	       "frame_len is a u32 and Kafka's batchLength an i32: a frame must fit both");
_Static_assert((uint64_t)LIMITS_FETCH_RESPONSE_BYTES_MAX + LIMITS_BATCH_BYTES_MAX <= INT32_MAX / 2,
	       "a Fetch response's records, its first batch included, fit its i32 size prefix "
	       "with room for the partition headers");
_Static_assert(LIMITS_FETCH_WAITERS_MAX <= LIMITS_LOOP_TIMERS_MAX,
	       "every waiting Fetch holds a loop timer");

/* The topic record of core/meta.c: 19 bytes of header and id, the name, 8 bytes per
 * partition, 4 bytes of lengths per config entry. */
_Static_assert(19ull + LIMITS_TOPIC_NAME_BYTES + 6 + 8ull * LIMITS_META_PARTITIONS_PER_TOPIC_MAX +
			       LIMITS_META_CONFIGS_PER_TOPIC_MAX *
				       (4ull + LIMITS_META_CONFIG_KEY_BYTES +
					LIMITS_META_CONFIG_VALUE_BYTES) <=
		       LIMITS_META_RECORD_BYTES_MAX,
	       "a topic with every partition and config must fit one metadata journal record");
_Static_assert(LIMITS_META_RECORD_BYTES_MAX <= LIMITS_META_COMPACT_MIN_BYTES &&
		       LIMITS_META_COMPACT_MIN_BYTES < LIMITS_META_JOURNAL_BYTES_MAX,
	       "compaction starts long before the journal reaches what open will read");
_Static_assert(LIMITS_META_CONFIG_KEY_BYTES <= UINT16_MAX &&
		       LIMITS_META_CONFIG_VALUE_BYTES <= UINT16_MAX,
	       "config strings are stored with 16-bit lengths");

_Static_assert((LIMITS_SHARDLOG_STAGING_BYTES & (LIMITS_SHARDLOG_STAGING_BYTES - 1)) == 0 &&
		       (LIMITS_SHARDLOG_STAGING_BYTES_MIN & (LIMITS_SHARDLOG_STAGING_BYTES_MIN - 1)) == 0,
	       "staging-ring sizes are powers of two");
_Static_assert(LIMITS_SHARDLOG_SEGMENT_BYTES % LIMITS_SHARDLOG_STAGING_BYTES == 0,
	       "segment ends must be staging-ring boundaries");
_Static_assert(LIMITS_SHARDLOG_STAGING_BYTES >= 2ull * (LIMITS_FRAME_BYTES_MAX + 4096),
	       "the default ring holds any frame with its padding and an unflushed block");
_Static_assert(LIMITS_SHARDLOG_STAGING_BYTES + LIMITS_POOL_CHUNK_BYTES <= LIMITS_POOL_REGION_BYTES,
	       "the staging ring is carved from the default pool, which keeps chunks for reads");
_Static_assert((LIMITS_FRAME_BYTES_MAX + 2ull * 4096) / LIMITS_POOL_CHUNK_BYTES + 1 <=
		       LIMITS_SHARDLOG_READ_CHUNKS_MAX,
	       "one disk read can hold a largest frame in default pool chunks");
_Static_assert(LIMITS_SHARDLOG_READ_CHUNKS_MAX <= LIMITS_SHARDLOG_READ_SLICES_MAX,
	       "a batch read from disk takes a slice per chunk it lies in");
_Static_assert(LIMITS_SHARDLOG_SCAN_BYTES % 4096 == 0, "the scan reads whole blocks");

/* Members of one consumer group (Kafka's group.max.size defaults to unlimited; a bound
 * keeps one group's join answer, which lists every member's metadata, within a
 * response and the coordinator's memory predictable). */
#define LIMITS_GROUP_MEMBERS_MAX 1000

#endif
