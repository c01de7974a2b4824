/*
 * tests/unit/check_disk.c: Check tests of io/disk on real files: directory creation
 * (mkdir -p) and its errors; atomic replacement (new content wins, a shorter file
 * leaves no tail, no .tmp is left behind, a stale .tmp from a crash between write and
 * rename leaves readers on the old content and is cleaned up by the next write); the
 * size limit and NUL terminator of whole-file reads; segment creation (preallocated:
 * blocks allocated for the whole size, reads as zeros; reopening keeps data; O_DIRECT
 * is on) and an aligned O_DIRECT write read back through the page cache; the refusal
 * of a file system without O_DIRECT; listing order and filtering; the reported O_DIRECT
 * alignment; unlink; short reads at the end of a file. All files live in a mkdtemp
 * directory under the first of /tmp, /var/tmp and the build directory that accepts
 * O_DIRECT (chosen in main()); with none, the cases that need it say SKIP and why.
 */
#include "io/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "tests/unit/testdir.h"
#include "tests/unit/unit.h"

#define SEGMENT_BYTES (8u * 1024 * 1024) /* small, so the sanitizer build stays quick */

/* Decided once in main(), before the cases fork. */
static struct {
	char base[4096];	  /* mkdtemp dir on an O_DIRECT-capable file system, or "" */
	char no_direct_dir[4096]; /* a dir whose file system refuses O_DIRECT, or "" */
} machine;

/* Per case: a fresh directory under machine.base and its descriptor. */
static char case_dir[4200];
static int case_fd = -1;

static void case_setup(void)
{
	snprintf(case_dir, sizeof(case_dir), "%s/case-XXXXXX", machine.base);
	ck_assert_ptr_nonnull(mkdtemp(case_dir));
	ck_assert_int_eq(disk_open_dir(case_dir, false, &case_fd), 0);
}

static void case_teardown(void)
{
	if (case_fd >= 0)
		close(case_fd);
	case_fd = -1;
}

/* Writes a plain file NAME with CONTENT, outside the module under test. */
static void put_file(int dir_fd, const char *name, const char *content)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	size_t n = strlen(content);
	ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
	close(fd);
}

static bool exists(int dir_fd, const char *name)
{
	struct stat st;
	return fstatat(dir_fd, name, &st, 0) == 0;
}

/* Reads NAME with disk_read_file and checks it holds exactly EXPECT. */
static void expect_content(int dir_fd, const char *name, const char *expect)
{
	void *buf = NULL;
	size_t len = 0;
	int ret = disk_read_file(dir_fd, name, 1 << 20, &buf, &len);
	ck_assert_msg(ret == 0, "read %s: %s", name, strerror(-ret));
	ck_assert_uint_eq(len, strlen(expect));
	ck_assert_mem_eq(buf, expect, len);
	ck_assert_uint_eq(((char *)buf)[len], '\0');
	free(buf);
}

START_TEST(test_open_dir_creates_path)
{
	char path[4400];
	int fd = -1;
	snprintf(path, sizeof(path), "%s/a/b//c/", case_dir);
	ck_assert_int_eq(disk_open_dir(path, false, &fd), -ENOENT);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(disk_open_dir(path, true, &fd), 0);
	ck_assert_int_ge(fd, 0);
	/* It is the directory: a file made through the fd shows up under the path. */
	put_file(fd, "probe", "x");
	close(fd);
	snprintf(path, sizeof(path), "%s/a/b/c/probe", case_dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* Existing: with or without create. */
	snprintf(path, sizeof(path), "%s/a/b", case_dir);
	ck_assert_int_eq(disk_open_dir(path, true, &fd), 0);
	close(fd);
	ck_assert_int_eq(disk_open_dir(path, false, &fd), 0);
	close(fd);
	/* A file in the way. */
	put_file(case_fd, "file", "x");
	snprintf(path, sizeof(path), "%s/file", case_dir);
	ck_assert_int_eq(disk_open_dir(path, false, &fd), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/sub", case_dir);
	ck_assert_int_eq(disk_open_dir(path, true, &fd), -ENOTDIR);
	ck_assert_int_eq(disk_open_dir("", true, &fd), -ENOENT);
}
END_TEST

START_TEST(test_write_atomic_replaces)
{
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "one", 3), 0);
	expect_content(case_fd, "meta", "one");
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "two, longer", 11), 0);
	expect_content(case_fd, "meta", "two, longer");
	/* Shorter: no tail of the old content survives. */
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "3", 1), 0);
	expect_content(case_fd, "meta", "3");
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "", 0), 0);
	expect_content(case_fd, "meta", "");
	ck_assert(!exists(case_fd, "meta" DISK_TMP_SUFFIX));
	char **names;
	uint32_t count;
	ck_assert_int_eq(disk_list(case_fd, NULL, &names, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_str_eq(names[0], "meta");
	disk_list_free(names, count);
}
END_TEST

START_TEST(test_write_atomic_after_crash)
{
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "old content", 11), 0);
	/* A crash after writing the temp file but before the rename leaves it behind,
	 * possibly torn. Readers still get the old file. */
	put_file(case_fd, "meta" DISK_TMP_SUFFIX, "new cont");
	expect_content(case_fd, "meta", "old content");
	/* The next replacement overwrites the stale temp file and leaves none. */
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "new", 3), 0);
	expect_content(case_fd, "meta", "new");
	ck_assert(!exists(case_fd, "meta" DISK_TMP_SUFFIX));
	/* A first write ever, also with a stale temp file. */
	put_file(case_fd, "fresh" DISK_TMP_SUFFIX, "garbage that is longer than the content");
	ck_assert(!exists(case_fd, "fresh"));
	ck_assert_int_eq(disk_write_atomic(case_fd, "fresh", "ok", 2), 0);
	expect_content(case_fd, "fresh", "ok");
	ck_assert(!exists(case_fd, "fresh" DISK_TMP_SUFFIX));
}
END_TEST

START_TEST(test_write_atomic_errors)
{
	char name[300];
	memset(name, 'n', 252);
	name[252] = '\0'; /* 252 + ".tmp" > NAME_MAX (255) */
	ck_assert_int_eq(disk_write_atomic(case_fd, name, "x", 1), -ENAMETOOLONG);
	ck_assert(!exists(case_fd, name));
	/* A directory where the temp file would go: the target stays as it was. */
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "kept", 4), 0);
	ck_assert_int_eq(mkdirat(case_fd, "meta" DISK_TMP_SUFFIX, 0755), 0);
	ck_assert_int_eq(disk_write_atomic(case_fd, "meta", "lost", 4), -EISDIR);
	expect_content(case_fd, "meta", "kept");
	ck_assert_int_eq(disk_write_atomic(-1, "meta", "x", 1), -EBADF);
}
END_TEST

START_TEST(test_read_file_limits)
{
	void *buf = (void *)0x1;
	size_t len = 12345;
	ck_assert_int_eq(disk_read_file(case_fd, "missing", 100, &buf, &len), -ENOENT);
	ck_assert_ptr_eq(buf, (void *)0x1); /* untouched on failure */
	ck_assert_uint_eq(len, 12345);
	put_file(case_fd, "ten", "0123456789");
	ck_assert_int_eq(disk_read_file(case_fd, "ten", 9, &buf, &len), -EFBIG);
	ck_assert_int_eq(disk_read_file(case_fd, "ten", 0, &buf, &len), -EFBIG);
	ck_assert_int_eq(disk_read_file(case_fd, "ten", 10, &buf, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_str_eq(buf, "0123456789"); /* NUL-terminated */
	free(buf);
	put_file(case_fd, "empty", "");
	ck_assert_int_eq(disk_read_file(case_fd, "empty", 0, &buf, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_nonnull(buf);
	ck_assert_str_eq(buf, "");
	free(buf);
	/* A directory is not a small file. */
	ck_assert_int_eq(mkdirat(case_fd, "dir", 0755), 0);
	ck_assert_int_lt(disk_read_file(case_fd, "dir", 1 << 20, &buf, &len), 0);
}
END_TEST

START_TEST(test_segment_preallocated)
{
	int fd = -1;
	const char *name = "00000000000000000000.log";
	ck_assert_int_eq(disk_segment_open(case_fd, name, SEGMENT_BYTES, false, &fd), -ENOENT);
	ck_assert_int_eq(disk_segment_open(case_fd, name, SEGMENT_BYTES, true, &fd), 0);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, SEGMENT_BYTES);
	ck_assert_msg((uint64_t)st.st_blocks * 512 >= SEGMENT_BYTES,
		      "only %lld bytes allocated of %u", (long long)st.st_blocks * 512,
		      SEGMENT_BYTES);
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	uint64_t size = 0;
	ck_assert_int_eq(disk_file_size(fd, &size), 0);
	ck_assert_uint_eq(size, SEGMENT_BYTES);

	/* Reads as zeros, through O_DIRECT with an aligned buffer. */
	uint32_t align = disk_direct_align(fd);
	size_t chunk = 1 << 20;
	uint8_t *buf;
	ck_assert_int_eq(posix_memalign((void **)&buf, align, chunk), 0);
	for (uint64_t pos = 0; pos < SEGMENT_BYTES; pos += chunk) {
		memset(buf, 0xAA, chunk);
		ck_assert_int_eq(disk_pread_all(fd, buf, chunk, pos), 0);
		for (size_t i = 0; i < chunk; i++)
			if (buf[i] != 0)
				ck_abort_msg("byte %llu is %u", (unsigned long long)(pos + i),
					     buf[i]);
	}
	/* Past the end: the file ends first. */
	ck_assert_int_eq(disk_pread_all(fd, buf, align, SEGMENT_BYTES), -ENODATA);

	/* Written data survives reopening, with or without create. */
	memset(buf, 0x5A, align);
	ck_assert_int_eq(disk_pwrite_all(fd, buf, align, align), 0);
	close(fd);
	ck_assert_int_eq(disk_segment_open(case_fd, name, SEGMENT_BYTES, true, &fd), 0);
	memset(buf, 0, align);
	ck_assert_int_eq(disk_pread_all(fd, buf, align, align), 0);
	ck_assert_uint_eq(buf[0], 0x5A);
	ck_assert_uint_eq(buf[align - 1], 0x5A);
	close(fd);
	ck_assert_int_eq(disk_segment_open(case_fd, name, 0, false, &fd), 0);
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	close(fd);
	/* Create on an existing, shorter file grows it to the size asked. */
	ck_assert_int_eq(disk_segment_open(case_fd, name, 2 * SEGMENT_BYTES, true, &fd), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 2 * SEGMENT_BYTES);
	ck_assert((uint64_t)st.st_blocks * 512 >= 2 * SEGMENT_BYTES);
	close(fd);
	free(buf);
}
END_TEST

START_TEST(test_segment_direct_write)
{
	int fd = -1;
	ck_assert_int_eq(disk_segment_open(case_fd, "seg.log", SEGMENT_BYTES, true, &fd), 0);
	uint32_t align = disk_direct_align(fd);
	size_t len = 16 * (size_t)align;
	uint8_t *buf;
	ck_assert_int_eq(posix_memalign((void **)&buf, align, len + align), 0);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	uint64_t pos = 3 * (uint64_t)align;
	ck_assert_int_eq(disk_pwrite_all(fd, buf, len, pos), 0);
	ck_assert_int_eq(disk_fsync(fd), 0);

	/* Read back through the page cache, a different path than the write took. */
	int plain = openat(case_fd, "seg.log", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(plain, 0);
	uint8_t *back = malloc(len + 2);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(pread(plain, back, len + 2, (off_t)pos - 1), (ssize_t)len + 2);
	ck_assert_uint_eq(back[0], 0);
	ck_assert_mem_eq(back + 1, buf, len);
	ck_assert_uint_eq(back[len + 1], 0);
	close(plain);

	/* O_DIRECT really is on: a misaligned file position is refused. (Not a misaligned
	 * buffer: some kernels and devices accept any address, whatever statx says.) */
	ck_assert_int_eq(disk_pwrite_all(fd, buf, align, pos + 1), -EINVAL);
	free(back);
	free(buf);
	close(fd);
}
END_TEST

START_TEST(test_segment_refused_without_direct)
{
	int dir_fd;
	ck_assert_int_eq(disk_open_dir(machine.no_direct_dir, false, &dir_fd), 0);
	int fd = -1;
	ck_assert_int_eq(disk_segment_open(dir_fd, "seg.log", 1 << 20, true, &fd), -EINVAL);
	ck_assert_int_eq(fd, -1);
	ck_assert(!exists(dir_fd, "seg.log")); /* nothing left behind */
	close(dir_fd);
}
END_TEST

START_TEST(test_list_sorted_and_filtered)
{
	char **names = (char **)0x1;
	uint32_t count = 99;
	ck_assert_int_eq(disk_list(case_fd, ".log", &names, &count), 0);
	ck_assert_ptr_null(names);
	ck_assert_uint_eq(count, 0);
	disk_list_free(names, count);

	static const char *const files[] = {
	    "00000000000001073741824.log",
	    "00000000000000000000.log",
	    "00000000000002147483648.log",
	    "00000000000000000000.log.tmp",
	    "meta",
	    "checkpoint.tmp",
	    ".log",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		put_file(case_fd, files[i], "x");
	ck_assert_int_eq(mkdirat(case_fd, "dir.log", 0755), 0); /* not a regular file */
	ck_assert_int_eq(symlinkat("meta", case_fd, "link.log"), 0);

	ck_assert_int_eq(disk_list(case_fd, ".log", &names, &count), 0);
	ck_assert_uint_eq(count, 4);
	ck_assert_str_eq(names[0], ".log");
	ck_assert_str_eq(names[1], "00000000000000000000.log");
	ck_assert_str_eq(names[2], "00000000000001073741824.log");
	ck_assert_str_eq(names[3], "00000000000002147483648.log");
	disk_list_free(names, count);

	ck_assert_int_eq(disk_list(case_fd, "", &names, &count), 0);
	ck_assert_uint_eq(count, 7);
	for (uint32_t i = 1; i < count; i++)
		ck_assert_int_lt(strcmp(names[i - 1], names[i]), 0);
	disk_list_free(names, count);

	/* The caller's descriptor is not consumed or moved: list again. */
	ck_assert_int_eq(disk_list(case_fd, ".tmp", &names, &count), 0);
	ck_assert_uint_eq(count, 2);
	ck_assert_str_eq(names[0], "00000000000000000000.log.tmp");
	ck_assert_str_eq(names[1], "checkpoint.tmp");
	disk_list_free(names, count);
	ck_assert_int_eq(disk_fsync_dir(case_fd), 0);
}
END_TEST

START_TEST(test_direct_align)
{
	int fd = -1;
	ck_assert_int_eq(disk_segment_open(case_fd, "seg.log", 1 << 20, true, &fd), 0);
	uint32_t align = disk_direct_align(fd);
	ck_assert_uint_ge(align, DISK_DIRECT_ALIGN_MIN);
	ck_assert_uint_eq(align & (align - 1), 0);
	close(fd);
	/* Any descriptor gives a usable answer, even one that cannot do direct I/O. */
	align = disk_direct_align(case_fd);
	ck_assert_uint_ge(align, DISK_DIRECT_ALIGN_MIN);
	ck_assert_uint_eq(align & (align - 1), 0);
	ck_assert_uint_eq(disk_direct_align(-1), DISK_DIRECT_ALIGN_DEFAULT);
}
END_TEST

START_TEST(test_unlink)
{
	put_file(case_fd, "gone", "x");
	ck_assert_int_eq(disk_unlink(case_fd, "gone"), 0);
	ck_assert(!exists(case_fd, "gone"));
	ck_assert_int_eq(disk_unlink(case_fd, "gone"), -ENOENT);
	ck_assert_int_eq(disk_fsync_dir(-1), -EBADF);
}
END_TEST

START_TEST(test_pread_pwrite_plain)
{
	int fd = openat(case_fd, "plain", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	char buf[100];
	ck_assert_int_eq(disk_pwrite_all(fd, "hello world", 11, 5), 0);
	ck_assert_int_eq(disk_pread_all(fd, buf, 11, 5), 0);
	ck_assert_mem_eq(buf, "hello world", 11);
	ck_assert_int_eq(disk_pread_all(fd, buf, 5, 0), 0); /* the hole reads as zeros */
	ck_assert_mem_eq(buf, "\0\0\0\0\0", 5);
	ck_assert_int_eq(disk_pread_all(fd, buf, 12, 5), -ENODATA);
	ck_assert_int_eq(disk_pread_all(fd, buf, 0, 1000), 0);
	close(fd);
	ck_assert_int_eq(disk_pread_all(fd, buf, 1, 0), -EBADF);
	ck_assert_int_eq(disk_pwrite_all(fd, buf, 1, 0), -EBADF);
}
END_TEST

START_TEST(test_skipped)
{
}
END_TEST

static void add_case(Suite *suite, const char *name, const TTest *test, const char *skip_reason)
{
	static char skip_labels[16][512];
	static unsigned skip_count;
	TCase *tc;
	if (skip_reason) {
		/* Check puts the case name into its TAP line, so the directive rides there. */
		if (skip_count == sizeof(skip_labels) / sizeof(skip_labels[0]))
			abort();
		char *label = skip_labels[skip_count++];
		snprintf(label, sizeof(skip_labels[0]), "%s # SKIP %s", name, skip_reason);
		tc = tcase_create(label);
		tcase_add_test(tc, test_skipped);
	} else {
		tc = tcase_create(name);
		tcase_add_checked_fixture(tc, case_setup, case_teardown);
		tcase_add_test(tc, test);
	}
	tcase_set_timeout(tc, 120);
	suite_add_tcase(suite, tc);
}

int main(void)
{
	/* A home for the files: a fresh directory whose file system takes O_DIRECT. */
	char no_base[1200] = "";
	test_pick_direct_dir("sluice-check-disk", machine.base, sizeof(machine.base), NULL, no_base,
			     sizeof(no_base));

	/* A file system without O_DIRECT for the refusal case: one named by
	 * SLUICE_TEST_NO_DIRECT_DIR (a ramfs mount, for example), or tmpfs before Linux 6.6. */
	const char *no_direct = getenv("SLUICE_TEST_NO_DIRECT_DIR");
	const char *refusing[] = {no_direct, "/tmp", "/dev/shm"};
	for (size_t i = 0; i < sizeof(refusing) / sizeof(refusing[0]); i++) {
		char dir[4096];
		if (!refusing[i] || !refusing[i][0])
			continue;
		snprintf(dir, sizeof(dir), "%s/sluice-check-disk-XXXXXX", refusing[i]);
		if (!mkdtemp(dir))
			continue;
		if (!test_accepts_o_direct(dir)) {
			snprintf(machine.no_direct_dir, sizeof(machine.no_direct_dir), "%s", dir);
			break;
		}
		rmdir(dir);
	}

	const char *need_base = no_base[0] ? no_base : NULL;
	const char *need_refusal =
	    machine.no_direct_dir[0]
		? NULL
		: "every file system tried accepts O_DIRECT (/tmp, /var/tmp, /dev/shm; "
		  "tmpfs does since Linux 6.6); set SLUICE_TEST_NO_DIRECT_DIR to a ramfs";

	Suite *s = suite_create("disk");
	add_case(s, "open_dir_creates_path", test_open_dir_creates_path, need_base);
	add_case(s, "write_atomic_replaces", test_write_atomic_replaces, need_base);
	add_case(s, "write_atomic_after_crash", test_write_atomic_after_crash, need_base);
	add_case(s, "write_atomic_errors", test_write_atomic_errors, need_base);
	add_case(s, "read_file_limits", test_read_file_limits, need_base);
	add_case(s, "segment_preallocated", test_segment_preallocated, need_base);
	add_case(s, "segment_direct_write", test_segment_direct_write, need_base);
	add_case(s, "segment_refused_without_direct", test_segment_refused_without_direct,
		 need_refusal ? need_refusal : need_base);
	add_case(s, "list_sorted_and_filtered", test_list_sorted_and_filtered, need_base);
	add_case(s, "direct_align", test_direct_align, need_base);
	add_case(s, "unlink", test_unlink, need_base);
	add_case(s, "pread_pwrite_plain", test_pread_pwrite_plain, need_base);
	int ret = unit_run(s);

	if (machine.base[0])
		test_remove_tree(machine.base);
	if (machine.no_direct_dir[0])
		test_remove_tree(machine.no_direct_dir);
	return ret;
}
