/*
 * io/pool.c: the per-shard buffer pool: mapping the region (hugetlb, then transparent
 * huge pages, then normal pages), binding it to a NUMA node and pre-faulting it, the
 * free stack of chunk indexes, and registering the region with an io_uring as one fixed
 * buffer. It does not decide what chunks are used for, and does not lock: one thread
 * owns a pool.
 */
#include "io/pool.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/logger.h"

/* MAP_HUGETLB takes the default huge page size unless the size is encoded in the flags;
 * ask for 2 MiB explicitly (log2 = 21) so a machine whose default is 1 GiB (or 512 MiB
 * on arm64 with 64 KiB pages) fails over to THP instead of mapping something else. */
#define POOL_MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)

/* Bits of the node mask given to mbind: the kernel's MAX_NUMNODES is at most 1024. */
#define POOL_NODEMASK_BITS 1024
#define POOL_ULONG_BITS	   (8 * sizeof(unsigned long))

/* 2 MiB blocks whose node move_pages() is asked about in one call after pre-faulting. */
#define POOL_NODE_QUERY_BATCH 64

#define POOL_HUGETLB_SYSFS    "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define POOL_THP_ENABLED_PATH "/sys/kernel/mm/transparent_hugepage/enabled"

static const char *const pool_mode_names[POOL_MODE_COUNT] = {
    [POOL_MODE_HUGETLB] = "hugetlb 2MiB pages",
    [POOL_MODE_THP] = "transparent huge pages",
    [POOL_MODE_NORMAL] = "normal 4KiB pages",
};

const char *pool_mode_name(enum pool_mode mode)
{
	return (unsigned)mode < POOL_MODE_COUNT ? pool_mode_names[mode] : "?";
}

/* Reads one non-negative number from a sysfs/procfs file; -1 when it cannot. */
static long pool_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long value = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

/* THP can be used unless the kernel lacks it or the administrator chose [never]; with
 * [madvise] it applies to regions we madvise, with [always] to everything. */
static bool pool_thp_enabled(void)
{
	char line[128];
	FILE *f = fopen(POOL_THP_ENABLED_PATH, "r");
	if (!f)
		return false;
	bool ok = fgets(line, sizeof(line), f) != NULL && strstr(line, "[never]") == NULL;
	fclose(f);
	return ok;
}

/*
 * Faults every page of the region in, writable, so that the hot path never takes a page
 * fault and a shortage shows up now. MADV_POPULATE_WRITE (Linux 5.14) reports failure
 * as an error (-ENOMEM, or -EFAULT where an access would have raised SIGBUS) instead of
 * killing us. MAP_POPULATE is no substitute: mmap ignores its populate errors (a
 * hugetlb page missing on the bound node would then SIGBUS on first use), and it would
 * touch the pages before mbind could place them.
 */
static int pool_prefault(uint8_t *base, size_t bytes, enum pool_mode mode)
{
	if (madvise(base, bytes, MADV_POPULATE_WRITE) == 0)
		return 0;
	int err = -errno;
	if (err != -EINVAL)
		return err;
	/* A kernel before 5.14. Touching hugetlb pages by hand risks SIGBUS if the node
	 * runs out, so that mode is given up; base pages and THP are safe to touch (at
	 * worst the OOM killer, as for any memory). */
	if (mode == POOL_MODE_HUGETLB)
		return -EOPNOTSUPP;
	long page_bytes = sysconf(_SC_PAGESIZE);
	if (page_bytes <= 0)
		page_bytes = 4096;
	for (size_t off = 0; off < bytes; off += (size_t)page_bytes)
		((volatile uint8_t *)base)[off] = 0;
	return 0;
}

/*
 * Binds [BASE, BASE+BYTES) to NODE. MPOL_PREFERRED rather than MPOL_BIND: a node that
 * is short of memory or of reserved huge pages then lends pages from another node
 * (slower, counted and logged after pre-faulting) instead of failing, and for hugetlb
 * MPOL_BIND could turn that shortage into SIGBUS on first touch even though the global
 * reservation made at mmap time succeeded. Returns 0 or -errno.
 */
static int pool_bind(uint8_t *base, size_t bytes, int node)
{
	unsigned long mask[POOL_NODEMASK_BITS / POOL_ULONG_BITS];
	memset(mask, 0, sizeof(mask));
	mask[(unsigned)node / POOL_ULONG_BITS] |= 1ul << ((unsigned)node % POOL_ULONG_BITS);
	if (mbind(base, bytes, MPOL_PREFERRED, mask, POOL_NODEMASK_BITS, 0) != 0)
		return -errno;
	return 0;
}

/* Counts the 2 MiB blocks whose first page is not on NODE (move_pages with no target
 * nodes only reports where pages are). 0 when the kernel will not say. */
static uint32_t pool_count_off_node(uint8_t *base, size_t bytes, int node)
{
	uint32_t blocks = (uint32_t)(bytes / LIMITS_HUGE_PAGE_BYTES);
	uint32_t off_node = 0;
	void *pages[POOL_NODE_QUERY_BATCH];
	int status[POOL_NODE_QUERY_BATCH];
	for (uint32_t first = 0; first < blocks; first += POOL_NODE_QUERY_BATCH) {
		uint32_t n =
		    blocks - first < POOL_NODE_QUERY_BATCH ? blocks - first : POOL_NODE_QUERY_BATCH;
		for (uint32_t i = 0; i < n; i++)
			pages[i] = base + (size_t)(first + i) * LIMITS_HUGE_PAGE_BYTES;
		if (move_pages(0, n, pages, NULL, status, 0) != 0)
			return 0;
		for (uint32_t i = 0; i < n; i++)
			if (status[i] >= 0 && status[i] != node)
				off_node++;
	}
	return off_node;
}

/* Maps BYTES of anonymous memory starting on a 2 MiB boundary, so THP can back all of
 * it with huge pages: maps 2 MiB more than needed and unmaps the ragged ends. */
static int pool_mmap_aligned(size_t bytes, uint8_t **out)
{
	size_t over_bytes = bytes + LIMITS_HUGE_PAGE_BYTES;
	uint8_t *raw =
	    mmap(NULL, over_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	uintptr_t start = ((uintptr_t)raw + LIMITS_HUGE_PAGE_BYTES - 1) &
			  ~(uintptr_t)(LIMITS_HUGE_PAGE_BYTES - 1);
	size_t head_bytes = start - (uintptr_t)raw;
	size_t tail_bytes = over_bytes - head_bytes - bytes;
	if (head_bytes > 0)
		munmap(raw, head_bytes);
	if (tail_bytes > 0)
		munmap((uint8_t *)start + bytes, tail_bytes);
	*out = (uint8_t *)start;
	return 0;
}

/* Logs why hugetlb could not be used, with the reserve's numbers and the fix. */
static void pool_warn_hugetlb(int err, size_t bytes)
{
	long reserved = pool_read_long(POOL_HUGETLB_SYSFS "nr_hugepages");
	long free_pages = pool_read_long(POOL_HUGETLB_SYSFS "free_hugepages");
	LOG_WARN("pool: hugetlb 2MiB pages unavailable: %s (need %zu, %ld free of %ld "
		 "reserved in vm.nr_hugepages); falling back; reserve them with "
		 "tuning/hugepages",
		 strerror(-err), bytes / LIMITS_HUGE_PAGE_BYTES, free_pages, reserved);
}

/*
 * Maps, binds and pre-faults BYTES in MODE. Returns 0 with p->base, p->mode,
 * p->numa_node and p->off_node_blocks set, or -errno with nothing left mapped.
 */
static int pool_map(struct pool *p, size_t bytes, enum pool_mode mode, int numa_node)
{
	uint8_t *base = NULL;
	int ret;

	switch (mode) {
	case POOL_MODE_HUGETLB:
		base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | POOL_MAP_HUGE_2MB, -1, 0);
		if (base == MAP_FAILED) {
			ret = -errno;
			pool_warn_hugetlb(ret, bytes);
			return ret;
		}
		break;
	case POOL_MODE_THP:
		if (!pool_thp_enabled()) {
			LOG_WARN("pool: transparent huge pages unavailable: %s is [never] or "
				 "missing; falling back",
				 POOL_THP_ENABLED_PATH);
			return -EOPNOTSUPP;
		}
		ret = pool_mmap_aligned(bytes, &base);
		if (ret < 0)
			return ret;
		/* Before the first touch, so the faults themselves take huge pages. */
		if (madvise(base, bytes, MADV_HUGEPAGE) != 0) {
			ret = -errno;
			LOG_WARN("pool: madvise(MADV_HUGEPAGE) failed: %s; falling back",
				 strerror(-ret));
			goto out_unmap;
		}
		break;
	case POOL_MODE_NORMAL:
		base =
		    mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			return -errno;
		/* With THP set to [always] the kernel would use huge pages anyway; keep the
		 * mode the log reports true. A kernel without THP says EINVAL: nothing to do. */
		(void)madvise(base, bytes, MADV_NOHUGEPAGE);
		break;
	default:
		return -EINVAL;
	}

	p->numa_node = -1;
	if (numa_node >= 0 && numa_available() >= 0) {
		ret = pool_bind(base, bytes, numa_node);
		if (ret == 0)
			p->numa_node = numa_node;
		else
			LOG_WARN("pool: mbind to NUMA node %d failed: %s; pages go where they "
				 "are first touched",
				 numa_node, strerror(-ret));
	}

	ret = pool_prefault(base, bytes, mode);
	if (ret < 0) {
		if (mode == POOL_MODE_HUGETLB)
			pool_warn_hugetlb(ret, bytes);
		else
			LOG_WARN("pool: cannot pre-fault %zu MiB of %s: %s", bytes >> 20,
				 pool_mode_name(mode), strerror(-ret));
		goto out_unmap;
	}

	p->off_node_blocks = 0;
	if (p->numa_node >= 0) {
		p->off_node_blocks = pool_count_off_node(base, bytes, p->numa_node);
		if (p->off_node_blocks > 0)
			LOG_WARN("pool: %u of %zu 2MiB blocks are not on NUMA node %d (the node "
				 "is short of memory or of huge pages); access to them is slower",
				 p->off_node_blocks, bytes / LIMITS_HUGE_PAGE_BYTES, p->numa_node);
	}
	p->base = base;
	p->mode = mode;
	return 0;

out_unmap:
	munmap(base, bytes);
	return ret;
}

static inline bool pool_bit_test(const uint64_t *bitmap, uint32_t index)
{
	return (bitmap[index / 64] >> (index % 64)) & 1;
}

static inline void pool_bit_set(uint64_t *bitmap, uint32_t index)
{
	bitmap[index / 64] |= UINT64_C(1) << (index % 64);
}

static inline void pool_bit_clear(uint64_t *bitmap, uint32_t index)
{
	bitmap[index / 64] &= ~(UINT64_C(1) << (index % 64));
}

static bool pool_is_power_of_two(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

int pool_init(struct pool *p, size_t region_bytes, uint32_t chunk_bytes, int numa_node,
	      enum pool_mode first_mode)
{
	memset(p, 0, sizeof(*p));
	p->numa_node = -1;
	p->buf_index = POOL_BUF_INDEX_NONE;

	if (region_bytes == 0 || region_bytes > LIMITS_POOL_REGION_BYTES_MAX)
		return -EINVAL;
	if (!pool_is_power_of_two(chunk_bytes) || chunk_bytes < LIMITS_POOL_CHUNK_BYTES_MIN ||
	    chunk_bytes > LIMITS_HUGE_PAGE_BYTES)
		return -EINVAL;
	if ((unsigned)first_mode >= POOL_MODE_COUNT)
		return -EINVAL;
	if (numa_node < -1 || numa_node >= POOL_NODEMASK_BITS - 1)
		return -EINVAL;
	if (numa_node >= 0 && numa_available() >= 0 && numa_node > numa_max_node())
		return -EINVAL;
	/* Cannot overflow: region_bytes <= 1 GiB here. */
	size_t bytes =
	    (region_bytes + LIMITS_HUGE_PAGE_BYTES - 1) & ~(size_t)(LIMITS_HUGE_PAGE_BYTES - 1);
	size_t count = bytes / chunk_bytes;
	if (bytes > LIMITS_POOL_REGION_BYTES_MAX || count > LIMITS_POOL_CHUNKS_MAX)
		return -EINVAL;
	if (numa_node >= 0 && numa_available() < 0)
		LOG_INFO("pool: the kernel has no NUMA support; the region is not bound to "
			 "node %d",
			 numa_node);

	int ret = -ENOMEM;
	p->free_stack = calloc(count, sizeof(*p->free_stack));
	if (!p->free_stack)
		goto out_zero;
	if (ASSERT_DEBUG_BUILD) {
		size_t words = (count + 63) / 64;
		p->free_bitmap = calloc(words, sizeof(uint64_t));
		p->sanity_bitmap = calloc(words, sizeof(uint64_t));
		if (!p->free_bitmap || !p->sanity_bitmap)
			goto out_free_stack;
	}

	for (int mode = (int)first_mode; mode < POOL_MODE_COUNT; mode++) {
		ret = pool_map(p, bytes, (enum pool_mode)mode, numa_node);
		if (ret == 0)
			break;
	}
	if (ret < 0)
		goto out_free_stack;

	p->region_bytes = bytes;
	p->chunk_bytes = chunk_bytes;
	p->chunk_shift = (uint32_t)__builtin_ctz(chunk_bytes);
	p->chunk_count = (uint32_t)count;
	/* Stacked in reverse so the first allocations walk the region upwards. */
	for (uint32_t i = 0; i < p->chunk_count; i++) {
		p->free_stack[i] = p->chunk_count - 1 - i;
		if (p->free_bitmap)
			pool_bit_set(p->free_bitmap, i);
	}
	p->free_count = p->chunk_count;
	DASSERT(pool_sanity(p));
	return 0;

out_free_stack:
	free(p->free_stack);
	free(p->free_bitmap);
	free(p->sanity_bitmap);
out_zero:
	memset(p, 0, sizeof(*p));
	p->numa_node = -1;
	p->buf_index = POOL_BUF_INDEX_NONE;
	return ret;
}

void pool_destroy(struct pool *p)
{
	if (p->base)
		munmap(p->base, p->region_bytes);
	free(p->free_stack);
	free(p->free_bitmap);
	free(p->sanity_bitmap);
	memset(p, 0, sizeof(*p));
	p->numa_node = -1;
	p->buf_index = POOL_BUF_INDEX_NONE;
}

void *pool_alloc(struct pool *p)
{
	if (p->free_count == 0) {
		p->exhausted++;
		/* Powers of two only: a shard that sits at the limit must not flood the log. */
		if ((p->exhausted & (p->exhausted - 1)) == 0)
			LOG_WARN("pool: exhausted: all %u chunks of %u KiB in use (%llu failed "
				 "allocations so far); applying backpressure",
				 p->chunk_count, p->chunk_bytes / 1024,
				 (unsigned long long)p->exhausted);
		return NULL;
	}
	uint32_t index = p->free_stack[--p->free_count];
	ASSERT(index < p->chunk_count);
	if (ASSERT_DEBUG_BUILD && p->free_bitmap) {
		DASSERT(pool_bit_test(p->free_bitmap, index));
		pool_bit_clear(p->free_bitmap, index);
	}
	p->allocs++;
	uint32_t in_use = p->chunk_count - p->free_count;
	if (in_use > p->in_use_max)
		p->in_use_max = in_use;
	return p->base + ((size_t)index << p->chunk_shift);
}

void *pool_carve(struct pool *p, size_t bytes)
{
	if (!p->base || bytes == 0 || p->allocs != p->carved_count)
		return NULL;
	size_t chunks = (bytes + p->chunk_bytes - 1) >> p->chunk_shift;
	if (chunks >= p->free_count)
		return NULL;
	/* Before any pool_alloc the stack is still in its initial order: its bottom holds
	 * the highest free indexes, top of region first, so the bottom CHUNKS entries are
	 * exactly the contiguous range just below what earlier carves took. */
	uint32_t first = p->chunk_count - p->carved_count - (uint32_t)chunks;
	for (uint32_t i = 0; i < chunks; i++) {
		ASSERT(p->free_stack[i] == p->chunk_count - p->carved_count - 1 - i);
		if (ASSERT_DEBUG_BUILD && p->free_bitmap)
			pool_bit_clear(p->free_bitmap, p->free_stack[i]);
	}
	memmove(p->free_stack, p->free_stack + chunks,
		(p->free_count - chunks) * sizeof(*p->free_stack));
	p->free_count -= (uint32_t)chunks;
	p->carved_count += (uint32_t)chunks;
	p->allocs += chunks;
	if (pool_in_use(p) > p->in_use_max)
		p->in_use_max = pool_in_use(p);
	DASSERT(pool_sanity(p));
	return p->base + ((size_t)first << p->chunk_shift);
}

void pool_free(struct pool *p, void *chunk)
{
	ASSERT(pool_owns(p, chunk));
	/* A full stack means a double free; pushing would write past the stack. */
	ASSERT(p->free_count < p->chunk_count);
	uint32_t index = pool_chunk_index(p, chunk);
	ASSERT(index < p->chunk_count - p->carved_count); /* carved ranges are never freed */
	if (ASSERT_DEBUG_BUILD && p->free_bitmap) {
		DASSERT(!pool_bit_test(p->free_bitmap, index)); /* double free */
		pool_bit_set(p->free_bitmap, index);
	}
	p->free_stack[p->free_count++] = index;
	p->frees++;
}

bool pool_owns(const struct pool *p, const void *ptr)
{
	uintptr_t addr = (uintptr_t)ptr;
	uintptr_t base = (uintptr_t)p->base;
	if (!p->base || addr < base || addr - base >= p->region_bytes)
		return false;
	return ((addr - base) & (p->chunk_bytes - 1)) == 0;
}

bool pool_contains(const struct pool *p, const void *ptr, size_t len)
{
	uintptr_t addr = (uintptr_t)ptr;
	uintptr_t base = (uintptr_t)p->base;
	if (!p->base || addr < base || addr - base >= p->region_bytes)
		return false;
	return len <= p->region_bytes - (addr - base);
}

uint32_t pool_chunk_index(const struct pool *p, const void *chunk)
{
	ASSERT(pool_owns(p, chunk));
	return (uint32_t)(((uintptr_t)chunk - (uintptr_t)p->base) >> p->chunk_shift);
}

void *pool_chunk(const struct pool *p, uint32_t index)
{
	ASSERT(index < p->chunk_count);
	return p->base + ((size_t)index << p->chunk_shift);
}

int pool_register(struct pool *p, struct io_uring *ring)
{
	ASSERT(p->base);
	if (p->buf_index != POOL_BUF_INDEX_NONE)
		return -EBUSY;
	/* One iovec for the whole region: fixed buffer 0 then addresses every chunk, and
	 * the kernel pins (and accounts against RLIMIT_MEMLOCK) the region once. */
	struct iovec iov = {.iov_base = p->base, .iov_len = p->region_bytes};
	int ret = io_uring_register_buffers(ring, &iov, 1);
	if (ret < 0)
		return ret;
	p->buf_index = 0;
	return 0;
}

int pool_unregister(struct pool *p, struct io_uring *ring)
{
	int ret = io_uring_unregister_buffers(ring);
	if (ret < 0)
		return ret;
	p->buf_index = POOL_BUF_INDEX_NONE;
	return 0;
}

const char *pool_describe(const struct pool *p, char *buf, size_t len)
{
	char chunk[32];
	char numa[80];
	char fixed[32] = "";
	if (len == 0)
		return buf;
	if (p->chunk_bytes >= (1u << 20))
		snprintf(chunk, sizeof(chunk), "%u MiB", p->chunk_bytes >> 20);
	else
		snprintf(chunk, sizeof(chunk), "%u KiB", p->chunk_bytes >> 10);
	if (p->numa_node < 0)
		snprintf(numa, sizeof(numa), "no NUMA binding");
	else if (p->off_node_blocks == 0)
		snprintf(numa, sizeof(numa), "NUMA node %d", p->numa_node);
	else
		snprintf(numa, sizeof(numa), "NUMA node %d (%u of %zu 2MiB blocks elsewhere)",
			 p->numa_node, p->off_node_blocks,
			 p->region_bytes / LIMITS_HUGE_PAGE_BYTES);
	if (p->buf_index != POOL_BUF_INDEX_NONE)
		snprintf(fixed, sizeof(fixed), ", fixed buffer %d", p->buf_index);
	snprintf(buf, len, "%zu MiB in %u chunks of %s, %s, %s%s", p->region_bytes >> 20,
		 p->chunk_count, chunk, pool_mode_name(p->mode), numa, fixed);
	return buf;
}

bool pool_sanity(const struct pool *p)
{
	if (!p->base)
		return false;
	if (p->chunk_bytes != (1u << p->chunk_shift) || p->chunk_count == 0 ||
	    p->chunk_count > LIMITS_POOL_CHUNKS_MAX ||
	    (size_t)p->chunk_count * p->chunk_bytes != p->region_bytes ||
	    p->region_bytes % LIMITS_HUGE_PAGE_BYTES != 0)
		return false;
	if (p->free_count > p->chunk_count || p->in_use_max < pool_in_use(p) ||
	    p->allocs - p->frees != pool_in_use(p))
		return false;
	if (p->mode != POOL_MODE_NORMAL && (uintptr_t)p->base % LIMITS_HUGE_PAGE_BYTES != 0)
		return false;
	for (uint32_t i = 0; i < p->free_count; i++)
		if (p->free_stack[i] >= p->chunk_count)
			return false;
	if (!p->free_bitmap || !p->sanity_bitmap)
		return true;

	/* Every stacked index once, each marked free, and no free mark without an entry. */
	size_t words = ((size_t)p->chunk_count + 63) / 64;
	memset(p->sanity_bitmap, 0, words * sizeof(uint64_t));
	for (uint32_t i = 0; i < p->free_count; i++) {
		uint32_t index = p->free_stack[i];
		if (pool_bit_test(p->sanity_bitmap, index) || !pool_bit_test(p->free_bitmap, index))
			return false;
		pool_bit_set(p->sanity_bitmap, index);
	}
	uint64_t marked = 0;
	for (size_t w = 0; w < words; w++)
		marked += (uint64_t)__builtin_popcountll(p->free_bitmap[w]);
	return marked == p->free_count;
}
