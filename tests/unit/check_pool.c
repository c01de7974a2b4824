/*
 * tests/unit/check_pool.c: Check tests of io/pool: chunks handed out to exhaustion and
 * back, the memory mode each machine setting leads to (hugetlb, THP, normal pages), the
 * NUMA binding, registration with a real io_uring proved by WRITE_FIXED/READ_FIXED
 * round trips through a file, the RLIMIT_MEMLOCK failure and its advice, argument
 * checking and the assertions that catch misuse. Cases that depend on the machine
 * (huge pages reserved or not, THP, NUMA, io_uring) are decided in main() from what
 * the machine reports, and a case that cannot run here is a TAP "# SKIP" line with the
 * reason. The tests never change the machine (no sysctl writes).
 */
#include "io/pool.h"

#include <errno.h>
#include <linux/capability.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/limits.h"
#include "io/uring.h"
#include "tests/unit/unit.h"

#define MIB		  (1024u * 1024)
#define REGION_BYTES	  (8 * MIB) /* small, so the sanitizer build stays quick */
#define CHUNK_BYTES	  (64u * 1024)
#define CHUNKS		  (REGION_BYTES / CHUNK_BYTES)
#define HUGE_PAGES_NEEDED (REGION_BYTES / LIMITS_HUGE_PAGE_BYTES)
#define HUGETLB_SYSFS	  "/sys/kernel/mm/hugepages/hugepages-2048kB/"

/* What this machine offers, read once in main() before the cases fork. */
static struct {
	long hugetlb_reserved; /* 2 MiB pages in vm.nr_hugepages, -1 if unknown */
	long hugetlb_free;     /* of those, not in use */
	bool thp_enabled;      /* transparent_hugepage/enabled is not [never] */
	int uring_err;	       /* 0, or why io_uring_queue_init failed here */
	bool numa;	       /* numa_available() >= 0 */
} machine;

static long read_long(const char *path)
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

static bool read_thp_enabled(void)
{
	char line[128];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	bool ok = fgets(line, sizeof(line), f) && !strstr(line, "[never]");
	fclose(f);
	return ok;
}

static void init_ok(struct pool *p, size_t region_bytes, uint32_t chunk_bytes, int node,
		    enum pool_mode first_mode)
{
	int ret = pool_init(p, region_bytes, chunk_bytes, node, first_mode);
	ck_assert_msg(ret == 0, "pool_init(%zu, %u, %d, %s) = %s", region_bytes, chunk_bytes, node,
		      pool_mode_name(first_mode), strerror(-ret));
	ck_assert(pool_sanity(p));
}

/* Allocates every chunk into CHUNKS_OUT (p->chunk_count slots) and checks each. */
static void alloc_all(struct pool *p, uint8_t **chunks_out)
{
	uint8_t *seen = calloc(p->chunk_count, 1);
	ck_assert_ptr_nonnull(seen);
	for (uint32_t i = 0; i < p->chunk_count; i++) {
		uint8_t *c = pool_alloc(p);
		ck_assert_msg(c != NULL, "allocation %u of %u failed", i, p->chunk_count);
		ck_assert(pool_owns(p, c));
		ck_assert_uint_eq((uintptr_t)c % p->chunk_bytes, 0);
		ck_assert(c >= p->base && c + p->chunk_bytes <= p->base + p->region_bytes);
		uint32_t index = pool_chunk_index(p, c);
		ck_assert_msg(!seen[index], "chunk %u handed out twice", index);
		seen[index] = 1;
		chunks_out[i] = c;
	}
	free(seen);
}

START_TEST(test_alloc_to_exhaustion)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	ck_assert_uint_eq(p.chunk_count, CHUNKS);
	uint8_t *chunks[CHUNKS];
	alloc_all(&p, chunks);
	/* Writable, and no two chunks overlap: fill each, then read every one back. */
	for (uint32_t i = 0; i < CHUNKS; i++)
		memset(chunks[i], (int)(i * 7 + 1), CHUNK_BYTES);
	for (uint32_t i = 0; i < CHUNKS; i++)
		for (uint32_t b = 0; b < CHUNK_BYTES; b += 512)
			ck_assert_uint_eq(chunks[i][b], (uint8_t)(i * 7 + 1));

	ck_assert_ptr_null(pool_alloc(&p));
	ck_assert_uint_eq(p.exhausted, 1);
	ck_assert_ptr_null(pool_alloc(&p));
	ck_assert_uint_eq(p.exhausted, 2);
	ck_assert_uint_eq(p.free_count, 0);
	ck_assert_uint_eq(pool_in_use(&p), CHUNKS);
	ck_assert_uint_eq(p.allocs, CHUNKS);
	ck_assert_uint_eq(p.in_use_max, CHUNKS);
	ck_assert(pool_sanity(&p));
	pool_destroy(&p);
}
END_TEST

START_TEST(test_carve_contiguous_range)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	uint8_t *staging = pool_carve(&p, 3 * CHUNK_BYTES + 1); /* rounds up to 4 chunks */
	ck_assert_ptr_nonnull(staging);
	ck_assert_ptr_eq(staging, p.base + p.region_bytes - 4 * CHUNK_BYTES);
	uint8_t *more = pool_carve(&p, CHUNK_BYTES); /* directly below the first range */
	ck_assert_ptr_eq(more, staging - CHUNK_BYTES);
	ck_assert_uint_eq(p.carved_count, 5);
	ck_assert_uint_eq(pool_in_use(&p), 5);
	ck_assert(pool_sanity(&p));
	/* Every remaining chunk is handed out and none lies inside a carved range. */
	for (uint32_t i = 0; i < CHUNKS - 5; i++) {
		uint8_t *c = pool_alloc(&p);
		ck_assert_ptr_nonnull(c);
		ck_assert(c + CHUNK_BYTES <= more);
	}
	ck_assert_ptr_null(pool_alloc(&p));
	/* Too late to carve once chunks are out, and never all of a pool. */
	ck_assert_ptr_null(pool_carve(&p, CHUNK_BYTES));
	pool_destroy(&p);
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_ptr_null(pool_carve(&p, REGION_BYTES));
	pool_destroy(&p);
}
END_TEST

START_TEST(test_free_all_then_alloc_again)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	uint8_t *chunks[CHUNKS];
	alloc_all(&p, chunks);
	ck_assert_ptr_null(pool_alloc(&p));
	/* Give them back out of order: odd indexes, then even ones. */
	for (uint32_t i = 1; i < CHUNKS; i += 2)
		pool_free(&p, chunks[i]);
	for (uint32_t i = 0; i < CHUNKS; i += 2)
		pool_free(&p, chunks[i]);
	ck_assert_uint_eq(p.free_count, CHUNKS);
	ck_assert_uint_eq(p.frees, CHUNKS);
	ck_assert_uint_eq(pool_in_use(&p), 0);
	ck_assert(pool_sanity(&p));

	alloc_all(&p, chunks);
	ck_assert_ptr_null(pool_alloc(&p));
	ck_assert_uint_eq(p.exhausted, 2);
	ck_assert_uint_eq(p.allocs, 2 * CHUNKS);
	ck_assert_uint_eq(p.in_use_max, CHUNKS);
	ck_assert(pool_sanity(&p));
	pool_destroy(&p);
}
END_TEST

START_TEST(test_reuse_most_recently_freed)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	void *a = pool_alloc(&p);
	void *b = pool_alloc(&p);
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq(p.in_use_max, 2);
	pool_free(&p, a);
	ck_assert_ptr_eq(pool_alloc(&p), a);
	pool_free(&p, b);
	pool_free(&p, a);
	ck_assert_uint_eq(p.in_use_max, 2); /* a high-water mark does not go down */
	ck_assert(pool_sanity(&p));
	pool_destroy(&p);
}
END_TEST

START_TEST(test_chunk_index_and_bounds)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_ptr_eq(pool_chunk(&p, 0), p.base);
	for (uint32_t i = 0; i < p.chunk_count; i++) {
		void *c = pool_chunk(&p, i);
		ck_assert_uint_eq(pool_chunk_index(&p, c), i);
		ck_assert(pool_owns(&p, c));
	}
	uint8_t *end = p.base + p.region_bytes;
	ck_assert(!pool_owns(&p, p.base + 1));
	ck_assert(!pool_owns(&p, end));
	ck_assert(!pool_owns(&p, p.base - CHUNK_BYTES));
	ck_assert(pool_contains(&p, p.base, p.region_bytes));
	ck_assert(pool_contains(&p, end - 1, 1));
	ck_assert(pool_contains(&p, p.base + 100, 0));
	ck_assert(!pool_contains(&p, end - 1, 2));
	ck_assert(!pool_contains(&p, end, 0));
	ck_assert(!pool_contains(&p, p.base - 1, 1));
	ck_assert(!pool_contains(&p, p.base, SIZE_MAX));
	pool_destroy(&p);
}
END_TEST

START_TEST(test_region_rounded_to_huge_pages)
{
	struct pool p;
	init_ok(&p, 3 * MIB + 1, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_uint_eq(p.region_bytes, 4 * MIB);
	ck_assert_uint_eq(p.chunk_count, 4 * MIB / CHUNK_BYTES);
	pool_destroy(&p);

	init_ok(&p, 1, LIMITS_POOL_CHUNK_BYTES_MIN, -1, POOL_MODE_NORMAL);
	ck_assert_uint_eq(p.region_bytes, 2 * MIB);
	ck_assert_uint_eq(p.chunk_count, 2 * MIB / LIMITS_POOL_CHUNK_BYTES_MIN);
	pool_destroy(&p);

	init_ok(&p, 2 * MIB, LIMITS_HUGE_PAGE_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_uint_eq(p.chunk_count, 1);
	void *c = pool_alloc(&p);
	ck_assert_ptr_eq(c, p.base);
	ck_assert_ptr_null(pool_alloc(&p));
	pool_free(&p, c);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_invalid_arguments)
{
	struct pool p;
	memset(&p, 0xa5, sizeof(p));
	ck_assert_int_eq(pool_init(&p, 0, CHUNK_BYTES, -1, POOL_MODE_NORMAL), -EINVAL);
	/* A failed init leaves nothing mapped and a pool that can be destroyed. */
	ck_assert_ptr_null(p.base);
	ck_assert_int_eq(p.buf_index, POOL_BUF_INDEX_NONE);
	pool_destroy(&p);
	pool_destroy(&p);

	ck_assert_int_eq(pool_init(&p, REGION_BYTES, 0, -1, POOL_MODE_NORMAL), -EINVAL);
	ck_assert_int_eq(pool_init(&p, REGION_BYTES, 48 * 1024, -1, POOL_MODE_NORMAL), -EINVAL);
	ck_assert_int_eq(pool_init(&p, REGION_BYTES, CHUNK_BYTES + 1, -1, POOL_MODE_NORMAL),
			 -EINVAL);
	ck_assert_int_eq(
	    pool_init(&p, REGION_BYTES, LIMITS_POOL_CHUNK_BYTES_MIN / 2, -1, POOL_MODE_NORMAL),
	    -EINVAL);
	ck_assert_int_eq(
	    pool_init(&p, REGION_BYTES, 2 * LIMITS_HUGE_PAGE_BYTES, -1, POOL_MODE_NORMAL), -EINVAL);
	ck_assert_int_eq(pool_init(&p, (size_t)LIMITS_POOL_REGION_BYTES_MAX + 1, CHUNK_BYTES, -1,
				   POOL_MODE_NORMAL),
			 -EINVAL);
	ck_assert_int_eq(pool_init(&p, SIZE_MAX, CHUNK_BYTES, -1, POOL_MODE_NORMAL), -EINVAL);
	/* 128 MiB of 4 KiB chunks is more chunks than LIMITS_POOL_CHUNKS_MAX. */
	ck_assert_int_eq(
	    pool_init(&p, 128 * MIB, LIMITS_POOL_CHUNK_BYTES_MIN, -1, POOL_MODE_NORMAL), -EINVAL);
	ck_assert_int_eq(pool_init(&p, REGION_BYTES, CHUNK_BYTES, -2, POOL_MODE_NORMAL), -EINVAL);
	ck_assert_int_eq(pool_init(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_COUNT), -EINVAL);
	ck_assert_int_eq(pool_init(&p, REGION_BYTES, CHUNK_BYTES, -1, (enum pool_mode) - 1),
			 -EINVAL);
	ck_assert_ptr_null(p.base);
}
END_TEST

/* nr_hugepages == 0: hugetlb must fail and the pool lands on THP or normal pages. */
START_TEST(test_fallback_without_hugetlb)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	ck_assert_int_ne(p.mode, POOL_MODE_HUGETLB);
	enum pool_mode expected = machine.thp_enabled ? POOL_MODE_THP : POOL_MODE_NORMAL;
	ck_assert_msg(p.mode == expected, "mode is %s, expected %s", pool_mode_name(p.mode),
		      pool_mode_name(expected));
	memset(p.base, 0x5a, p.region_bytes);
	pool_destroy(&p);
}
END_TEST

/* Enough free 2 MiB pages: the pool must use them. */
START_TEST(test_hugetlb_when_reserved)
{
	struct pool p;
	long free_before = read_long(HUGETLB_SYSFS "free_hugepages");
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	ck_assert_msg(p.mode == POOL_MODE_HUGETLB, "mode is %s with %ld free huge pages",
		      pool_mode_name(p.mode), free_before);
	ck_assert_uint_eq((uintptr_t)p.base % LIMITS_HUGE_PAGE_BYTES, 0);
	/* Pre-faulted: the pages are taken from the free pool already, not at first use. */
	long free_after = read_long(HUGETLB_SYSFS "free_hugepages");
	ck_assert_msg(free_after <= free_before - (long)HUGE_PAGES_NEEDED,
		      "free huge pages went from %ld to %ld only", free_before, free_after);
	memset(p.base, 0x5a, p.region_bytes);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_thp_when_enabled)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_THP);
	ck_assert_msg(p.mode == POOL_MODE_THP, "mode is %s", pool_mode_name(p.mode));
	ck_assert_uint_eq((uintptr_t)p.base % LIMITS_HUGE_PAGE_BYTES, 0);
	memset(p.base, 0x5a, p.region_bytes);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_forced_normal)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_int_eq(p.mode, POOL_MODE_NORMAL);
	memset(p.base, 0x5a, p.region_bytes);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_describe_line)
{
	char line[128];
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_str_eq(pool_describe(&p, line, sizeof(line)),
			 "8 MiB in 128 chunks of 64 KiB, normal 4KiB pages, no NUMA binding");
	/* Cut, still terminated. */
	ck_assert_str_eq(pool_describe(&p, line, 6), "8 MiB");
	pool_destroy(&p);
	init_ok(&p, 4 * MIB, LIMITS_HUGE_PAGE_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_str_eq(pool_describe(&p, line, sizeof(line)),
			 "4 MiB in 2 chunks of 2 MiB, normal 4KiB pages, no NUMA binding");
	pool_destroy(&p);

	ck_assert_str_eq(pool_mode_name(POOL_MODE_HUGETLB), "hugetlb 2MiB pages");
	ck_assert_str_eq(pool_mode_name(POOL_MODE_THP), "transparent huge pages");
	ck_assert_str_eq(pool_mode_name(POOL_MODE_NORMAL), "normal 4KiB pages");
	ck_assert_str_eq(pool_mode_name(POOL_MODE_COUNT), "?");
}
END_TEST

START_TEST(test_numa_preferred_node)
{
	int node = numa_node_of_cpu(sched_getcpu());
	ck_assert_int_ge(node, 0);
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, node, POOL_MODE_HUGETLB);
	ck_assert_int_eq(p.numa_node, node);
	ck_assert_uint_eq(p.off_node_blocks, 0);

	int policy = -1;
	ck_assert_int_eq(get_mempolicy(&policy, NULL, 0, p.base, MPOL_F_ADDR), 0);
	ck_assert_int_eq(policy, MPOL_PREFERRED);
	/* Pre-faulted on the node: the first and last pages are there. */
	int where = -1;
	ck_assert_int_eq(get_mempolicy(&where, NULL, 0, p.base, MPOL_F_NODE | MPOL_F_ADDR), 0);
	ck_assert_int_eq(where, node);
	ck_assert_int_eq(
	    get_mempolicy(&where, NULL, 0, p.base + p.region_bytes - 1, MPOL_F_NODE | MPOL_F_ADDR),
	    0);
	ck_assert_int_eq(where, node);
	char line[128], want[32];
	snprintf(want, sizeof(want), ", NUMA node %d", node);
	ck_assert_msg(strstr(pool_describe(&p, line, sizeof(line)), want), "line: %s", line);
	pool_destroy(&p);

	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_int_eq(p.numa_node, -1);
	ck_assert_int_eq(get_mempolicy(&policy, NULL, 0, p.base, MPOL_F_ADDR), 0);
	ck_assert_int_eq(policy, MPOL_DEFAULT);
	pool_destroy(&p);

	ck_assert_int_eq(
	    pool_init(&p, REGION_BYTES, CHUNK_BYTES, numa_max_node() + 1, POOL_MODE_NORMAL),
	    -EINVAL);
}
END_TEST

static int make_temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/check_pool.XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
	unlink(path);
	return fd;
}

/* One READ_FIXED or WRITE_FIXED, waited for; returns cqe->res. */
static int fixed_io(struct io_uring *ring, bool write, int fd, void *buf, unsigned len,
		    off_t offset, int buf_index)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	ck_assert_ptr_nonnull(sqe);
	if (write)
		io_uring_prep_write_fixed(sqe, fd, buf, len, offset, buf_index);
	else
		io_uring_prep_read_fixed(sqe, fd, buf, len, offset, buf_index);
	ck_assert_int_eq(io_uring_submit(ring), 1);
	struct io_uring_cqe *cqe;
	ck_assert_int_eq(io_uring_wait_cqe(ring, &cqe), 0);
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

START_TEST(test_register_fixed_write_read)
{
	struct io_uring ring;
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	int ret = pool_register(&p, &ring);
	ck_assert_msg(ret == 0, "pool_register: %s", strerror(-ret));
	ck_assert_int_eq(p.buf_index, 0);
	int fd = make_temp_file();

	/* The last chunk to the file, back into the first: the one buffer covers both
	 * ends of the region. */
	uint8_t *src = pool_chunk(&p, p.chunk_count - 1);
	uint8_t *dst = pool_chunk(&p, 0);
	for (uint32_t i = 0; i < CHUNK_BYTES; i++)
		src[i] = (uint8_t)(i * 31 + 7);
	memset(dst, 0, CHUNK_BYTES);
	ck_assert_int_eq(fixed_io(&ring, true, fd, src, CHUNK_BYTES, 0, p.buf_index), CHUNK_BYTES);
	ck_assert_int_eq(fixed_io(&ring, false, fd, dst, CHUNK_BYTES, 0, p.buf_index), CHUNK_BYTES);
	ck_assert_mem_eq(dst, src, CHUNK_BYTES);
	/* And the file holds them, as plain read(2) sees it. */
	uint8_t *check = malloc(CHUNK_BYTES);
	ck_assert_ptr_nonnull(check);
	ck_assert_int_eq(pread(fd, check, CHUNK_BYTES, 0), CHUNK_BYTES);
	ck_assert_mem_eq(check, src, CHUNK_BYTES);

	/* A range across a chunk boundary is just as addressable. */
	uint8_t *mid = (uint8_t *)pool_chunk(&p, 5) + CHUNK_BYTES / 2;
	ck_assert(pool_contains(&p, mid, CHUNK_BYTES));
	memset(mid, 0, CHUNK_BYTES);
	ck_assert_int_eq(fixed_io(&ring, false, fd, mid, CHUNK_BYTES, 0, p.buf_index), CHUNK_BYTES);
	ck_assert_mem_eq(mid, src, CHUNK_BYTES);

	char line[128];
	ck_assert_msg(strstr(pool_describe(&p, line, sizeof(line)), ", fixed buffer 0"), "line: %s",
		      line);
	free(check);
	close(fd);
	io_uring_queue_exit(&ring);
	pool_destroy(&p);
}
END_TEST

/* The control for the case above: without registration the same op is refused, so the
 * success there is the registration's doing. */
START_TEST(test_unregistered_fixed_io_fails)
{
	struct io_uring ring;
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	ck_assert_int_eq(p.buf_index, POOL_BUF_INDEX_NONE);
	int fd = make_temp_file();
	uint8_t *src = pool_chunk(&p, 0);
	memset(src, 1, CHUNK_BYTES);
	ck_assert_int_eq(fixed_io(&ring, true, fd, src, CHUNK_BYTES, 0, 0), -EFAULT);
	close(fd);
	io_uring_queue_exit(&ring);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_register_unregister)
{
	struct io_uring ring;
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	ck_assert_int_eq(pool_register(&p, &ring), 0);
	ck_assert_int_eq(pool_register(&p, &ring), -EBUSY);
	ck_assert_int_eq(p.buf_index, 0);
	ck_assert_int_eq(pool_unregister(&p, &ring), 0);
	ck_assert_int_eq(p.buf_index, POOL_BUF_INDEX_NONE);
	ck_assert_int_eq(pool_unregister(&p, &ring), -ENXIO);
	ck_assert_int_eq(pool_register(&p, &ring), 0);
	/* The ring goes first (as in a shard's tear-down), then the pool. */
	io_uring_queue_exit(&ring);
	pool_destroy(&p);
}
END_TEST

/* Drops CAP_IPC_LOCK from this (forked) test process, so that the kernel counts pinned
 * pages against RLIMIT_MEMLOCK as it does for an unprivileged user. */
static void drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	ck_assert_int_eq(syscall(SYS_capget, &header, data), 0);
	data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	ck_assert_msg(syscall(SYS_capset, &header, data) == 0, "capset: %s", strerror(errno));
}

START_TEST(test_register_memlock_too_low)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_HUGETLB);
	/* The ring records at creation whether it must account pinned memory, so the
	 * capability goes before io_uring_queue_init. */
	drop_cap_ipc_lock();
	struct rlimit lim;
	ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
	lim.rlim_cur = 64 * 1024;
	ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
	struct io_uring ring;
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);

	ck_assert_int_eq(pool_register(&p, &ring), -ENOMEM);
	ck_assert_int_eq(p.buf_index, POOL_BUF_INDEX_NONE);
	char line[512];
	uring_explain(-ENOMEM, "register buffers", NULL, line, sizeof(line));
	ck_assert_msg(strstr(line, "RLIMIT_MEMLOCK") && strstr(line, "ulimit -l"),
		      "advice does not name the limit: %s", line);
	/* The pool itself still works, unregistered. */
	void *c = pool_alloc(&p);
	ck_assert_ptr_nonnull(c);
	pool_free(&p, c);
	io_uring_queue_exit(&ring);
	pool_destroy(&p);
}
END_TEST

START_TEST(test_free_foreign_pointer_aborts)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	uint8_t *c = pool_alloc(&p);
	pool_free(&p, c + 8); /* not a chunk start: ASSERT, in every build */
}
END_TEST

START_TEST(test_double_free_aborts)
{
	struct pool p;
	init_ok(&p, REGION_BYTES, CHUNK_BYTES, -1, POOL_MODE_NORMAL);
	void *a = pool_alloc(&p);
	void *b = pool_alloc(&p);
	ck_assert_ptr_nonnull(b);
	pool_free(&p, a);
	pool_free(&p, a); /* stack not full (b is out): only the debug bitmap sees it */
}
END_TEST

int main(void)
{
	machine.hugetlb_reserved = read_long(HUGETLB_SYSFS "nr_hugepages");
	if (machine.hugetlb_reserved < 0)
		machine.hugetlb_reserved = read_long("/proc/sys/vm/nr_hugepages");
	machine.hugetlb_free = read_long(HUGETLB_SYSFS "free_hugepages");
	machine.thp_enabled = read_thp_enabled();
	machine.numa = numa_available() >= 0;
	struct io_uring probe_ring;
	machine.uring_err = io_uring_queue_init(4, &probe_ring, 0);
	if (machine.uring_err == 0)
		io_uring_queue_exit(&probe_ring);

	char hugetlb_reason[160] = "", fallback_reason[160] = "", uring_reason[160] = "";
	if (machine.hugetlb_free < (long)HUGE_PAGES_NEEDED)
		snprintf(hugetlb_reason, sizeof(hugetlb_reason),
			 "%ld free 2MiB huge pages of %ld reserved, the test needs %u "
			 "(vm.nr_hugepages; tuning/hugepages)",
			 machine.hugetlb_free, machine.hugetlb_reserved, HUGE_PAGES_NEEDED);
	if (machine.hugetlb_reserved != 0)
		snprintf(fallback_reason, sizeof(fallback_reason),
			 "vm.nr_hugepages=%ld: huge pages are reserved here, so the fallback "
			 "cannot be seen",
			 machine.hugetlb_reserved);
	if (machine.uring_err < 0)
		snprintf(uring_reason, sizeof(uring_reason), "io_uring_queue_init: %s",
			 strerror(-machine.uring_err));
#define REASON(buf) ((buf)[0] ? (buf) : NULL)

	Suite *s = suite_create("pool");
	unit_add_case(s, "alloc_to_exhaustion", test_alloc_to_exhaustion, 0, NULL);
	unit_add_case(s, "free_all_then_alloc_again", test_free_all_then_alloc_again, 0, NULL);
	unit_add_case(s, "reuse_most_recently_freed", test_reuse_most_recently_freed, 0, NULL);
	unit_add_case(s, "chunk_index_and_bounds", test_chunk_index_and_bounds, 0, NULL);
	unit_add_case(s, "region_rounded_to_huge_pages", test_region_rounded_to_huge_pages, 0, NULL);
	unit_add_case(s, "invalid_arguments", test_invalid_arguments, 0, NULL);
	unit_add_case(s, "carve_contiguous_range", test_carve_contiguous_range, 0, NULL);
	unit_add_case(s, "fallback_without_hugetlb", test_fallback_without_hugetlb, 0,
		 REASON(fallback_reason));
	unit_add_case(s, "hugetlb_when_reserved", test_hugetlb_when_reserved, 0, REASON(hugetlb_reason));
	unit_add_case(s, "thp_when_enabled", test_thp_when_enabled, 0,
		 machine.thp_enabled ? NULL : "transparent_hugepage/enabled is [never] or missing");
	unit_add_case(s, "forced_normal", test_forced_normal, 0, NULL);
	unit_add_case(s, "describe_line", test_describe_line, 0, NULL);
	unit_add_case(s, "numa_preferred_node", test_numa_preferred_node, 0,
		 machine.numa ? NULL : "numa_available() < 0: the kernel has no NUMA support");
	unit_add_case(s, "register_fixed_write_read", test_register_fixed_write_read, 0,
		 REASON(uring_reason));
	unit_add_case(s, "unregistered_fixed_io_fails", test_unregistered_fixed_io_fails, 0,
		 REASON(uring_reason));
	unit_add_case(s, "register_unregister", test_register_unregister, 0, REASON(uring_reason));
	unit_add_case(s, "register_memlock_too_low", test_register_memlock_too_low, 0,
		 REASON(uring_reason));
	unit_add_case(s, "free_foreign_pointer_aborts", test_free_foreign_pointer_aborts, SIGABRT, NULL);
	unit_add_case(s, "double_free_aborts", test_double_free_aborts, SIGABRT,
		 ASSERT_DEBUG_BUILD ? NULL : "DASSERT is compiled out (configure --enable-debug)");
	return unit_run(s);
}
