/*
 * io/pool.h: a shard's buffer pool. One contiguous region, mapped once at start-up,
 * cut into fixed-size chunks handed out from a preallocated free stack; the pool never
 * grows, and when it is empty pool_alloc() says so (NULL, counted) so that the caller
 * applies backpressure instead of falling back to malloc. The region is backed by the
 * best memory the machine offers, tried in order: 2 MiB huge pages from the hugetlb
 * reserve (vm.nr_hugepages), transparent huge pages, normal pages; it is bound to the
 * shard's NUMA node (preferred, not strict) before it is touched, and pre-faulted so
 * the hot path never page-faults. The whole region is registered with the shard's
 * io_uring as one fixed buffer, so every chunk can be used with *_FIXED operations.
 * The pool is owned by one thread and is not thread-safe; a chunk handed to another
 * shard travels with its message and comes back to the owner to be freed. It knows
 * nothing about what the chunks hold.
 */
#ifndef SLUICE_IO_POOL_H
#define SLUICE_IO_POOL_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Backing memory of a pool, best first; pool_init tries them in this order, starting
 * from the one it is given, so a caller can forbid the better ones (tests, a machine
 * where huge pages misbehave). */
enum pool_mode {
	POOL_MODE_HUGETLB = 0, /* MAP_HUGETLB 2 MiB pages, reserved in vm.nr_hugepages */
	POOL_MODE_THP = 1,     /* anonymous memory, 2 MiB aligned, madvise(MADV_HUGEPAGE) */
	POOL_MODE_NORMAL = 2,  /* anonymous memory in base pages, madvise(MADV_NOHUGEPAGE) */
	POOL_MODE_COUNT
};

/* pool.buf_index while the region is not registered with a ring. */
#define POOL_BUF_INDEX_NONE (-1)

/*
 * Invariants, between calls (pool_sanity checks them):
 *  - region_bytes == chunk_count * chunk_bytes, a whole number of 2 MiB; chunk_bytes
 *    == 1 << chunk_shift; chunk i starts at base + i * chunk_bytes.
 *  - free_stack[0 .. free_count) holds the indexes of the free chunks, each once;
 *    every other chunk is owned by a caller. free_count <= chunk_count.
 *  - in debug builds free_bitmap has bit i set exactly when chunk i is on the stack.
 *  - in_use_max >= chunk_count - free_count; allocs - frees == chunk_count - free_count.
 * A zeroed struct (or one after pool_destroy or a failed pool_init) has base == NULL
 * and may be passed to pool_destroy again.
 */
struct pool {
	uint8_t *base;		  /* start of the region; 2 MiB aligned unless mode is NORMAL */
	size_t region_bytes;	  /* mapped bytes, a whole number of 2 MiB */
	uint32_t chunk_bytes;	  /* bytes per chunk, a power of two dividing 2 MiB */
	uint32_t chunk_shift;	  /* log2(chunk_bytes) */
	uint32_t chunk_count;	  /* region_bytes / chunk_bytes, <= LIMITS_POOL_CHUNKS_MAX */
	uint32_t free_count;	  /* chunks on the free stack */
	uint32_t *free_stack;	  /* chunk_count slots, allocated at init, never grown */
	uint64_t *free_bitmap;	  /* debug builds: bit i set while chunk i is free; else NULL */
	uint64_t *sanity_bitmap;  /* debug builds: scratch for pool_sanity; else NULL */
	enum pool_mode mode;	  /* what the region is backed by */
	int numa_node;		  /* node the region prefers (mbind), -1 when not bound */
	uint32_t off_node_blocks; /* 2 MiB blocks found on another node after pre-faulting */
	int buf_index;		  /* fixed buffer index in the ring, POOL_BUF_INDEX_NONE if none */
	uint64_t allocs;	  /* successful pool_alloc calls */
	uint64_t frees;		  /* pool_free calls */
	uint64_t exhausted;	  /* pool_alloc calls that found no free chunk */
	uint32_t in_use_max;	  /* high-water mark of chunks in use at once */
	uint32_t carved_count;	  /* chunks at the top of the region given away by pool_carve */
};

/* Carves BYTES (rounded up to whole chunks) out of the pool for good, as one contiguous
 * range of the registered region: for users that need one buffer larger than a chunk,
 * such as the shard log's staging ring. The range is taken from the top of the region
 * and counts as allocated (in allocs and in use) forever. Only valid before the first
 * pool_alloc; returns the range's start, or NULL when that is not the case or when
 * fewer than BYTES / chunk_bytes + 1 chunks are free (one chunk always stays for
 * pool_alloc). */
void *pool_carve(struct pool *p, size_t bytes);

/* Maps a region of REGION_BYTES (rounded up to a whole number of 2 MiB) cut into
 * chunks of CHUNK_BYTES, backed by the first of FIRST_MODE, then each worse mode, that
 * works (each fallback is logged as a warning with its reason). When NUMA_NODE >= 0
 * and the kernel has NUMA, the region is bound to that node with MPOL_PREFERRED
 * before it is touched; then every page is faulted in, so a shortage of memory or of
 * huge pages fails here and not later in the hot path. Call it on the thread that
 * will own the pool (pinned to its CPU): without NUMA, first touch places the pages.
 * Returns 0, or:
 *  -EINVAL  REGION_BYTES is 0 or above LIMITS_POOL_REGION_BYTES_MAX, CHUNK_BYTES is
 *           not a power of two between LIMITS_POOL_CHUNK_BYTES_MIN and 2 MiB, the
 *           region would hold more than LIMITS_POOL_CHUNKS_MAX chunks, FIRST_MODE is
 *           not a mode, or NUMA_NODE is below -1 or above the machine's highest node;
 *  -ENOMEM  no mode could map and pre-fault the region (or the free stack could not
 *           be allocated); other negative errnos from the last mode tried.
 * On failure nothing stays mapped or allocated and *P is zeroed (base NULL). */
int pool_init(struct pool *p, size_t region_bytes, uint32_t chunk_bytes, int numa_node,
	      enum pool_mode first_mode);

/* Unmaps the region and frees the free stack; *P is zeroed and may be destroyed again.
 * It does not unregister the buffer: tear the ring down (io_uring_queue_exit) or call
 * pool_unregister first. Unmapping a still-registered region does not crash anything
 * (the ring holds its own pin on the pages), but the pages stay pinned until the ring
 * lets go, and fixed I/O would still reach them. Chunks still held by callers become
 * invalid. */
void pool_destroy(struct pool *p);

/* Takes a free chunk: chunk_bytes bytes aligned to chunk_bytes, inside the region,
 * contents undefined (whatever its last owner left). Returns NULL when every chunk is
 * in use; that is counted in p->exhausted and logged (at the 1st, 2nd, 4th, 8th, ...
 * time) and the caller must turn it into backpressure. Never allocates. The chunk most
 * recently freed is handed out first, while it is still warm in cache. */
void *pool_alloc(struct pool *p);

/* Gives CHUNK back. CHUNK must be a chunk start returned by pool_alloc on this pool
 * (ASSERTed, as is room on the free stack); freeing a chunk that is already free is
 * caught by DASSERT in debug builds. */
void pool_free(struct pool *p, void *chunk);

/* True when PTR is the start of one of P's chunks (free or not). */
bool pool_owns(const struct pool *p, const void *ptr);

/* True when the LEN bytes at PTR lie inside P's region: the condition for using them
 * with a *_FIXED operation on p->buf_index. LEN 0 is inside when PTR is. */
bool pool_contains(const struct pool *p, const void *ptr, size_t len);

/* The index (0 .. chunk_count-1) of the chunk starting at CHUNK; ASSERTs pool_owns. */
uint32_t pool_chunk_index(const struct pool *p, const void *chunk);

/* The start of chunk INDEX; ASSERTs INDEX < chunk_count. */
void *pool_chunk(const struct pool *p, uint32_t index);

/* Chunks currently handed out. */
static inline uint32_t pool_in_use(const struct pool *p)
{
	return p->chunk_count - p->free_count;
}

/* Registers the whole region with RING as one fixed buffer, at index 0 (so the ring
 * must have no other registered buffers), after which any chunk, or any range inside
 * the region, can be used with READ_FIXED/WRITE_FIXED/SEND_ZC fixed-buffer operations
 * with buf_index p->buf_index. Call on the ring's owning thread. Returns 0 or the
 * kernel's negative errno: -ENOMEM typically means RLIMIT_MEMLOCK is too low for the
 * pinned pages (without CAP_IPC_LOCK), which uring_explain(err, "register buffers", ...)
 * turns into advice; -EBUSY when the ring already has buffers or P is registered. */
int pool_register(struct pool *p, struct io_uring *ring);

/* Undoes pool_register on RING. Returns 0 or the kernel's negative errno (-ENXIO when
 * nothing is registered). */
int pool_unregister(struct pool *p, struct io_uring *ring);

/* "hugetlb 2MiB pages", "transparent huge pages" or "normal 4KiB pages" ("?" for a
 * value outside the enum). */
const char *pool_mode_name(enum pool_mode mode);

/* Writes one line for the start-up log into BUF (always NUL-terminated, cut at LEN),
 * for example "256 MiB in 4096 chunks of 64 KiB, transparent huge pages, NUMA node 0,
 * fixed buffer 0", and returns BUF. 128 bytes hold every line it makes. */
const char *pool_describe(const struct pool *p, char *buf, size_t len);

/* Checks the invariants above; walks the whole free stack, so use it in DASSERT. In
 * debug builds it also proves the stack entries unique against the bitmap. */
bool pool_sanity(const struct pool *p);

#endif
