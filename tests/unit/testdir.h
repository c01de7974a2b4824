/* Scratch directories for the unit tests (header only; static inline, nothing to link): a
 * probe for whether a directory's file system accepts O_DIRECT (tmpfs before Linux 6.6
 * refuses it), a tmpfs check, picking a fresh mkdtemp directory on a file system that
 * accepts O_DIRECT (the build directory named by SLUICE_BUILDDIR or ".", then /var/tmp,
 * then /tmp; a real file system preferred over tmpfs), and removing a directory tree
 * (nftw) when a test is done. It does not decide whether a test skips: it says why no
 * directory was found and the caller turns that into a TAP "# SKIP". */
#ifndef SLUICE_TESTS_UNIT_TESTDIR_H
#define SLUICE_TESTS_UNIT_TESTDIR_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* True when a file created in DIR can be opened with O_DIRECT and takes one aligned
 * 4096-byte write (some file systems accept the flag and refuse the write). */
static inline bool test_accepts_o_direct(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/probe-direct-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return false;
	close(fd);
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	bool ok = false;
	if (fd >= 0) {
		void *buf = NULL;
		if (posix_memalign(&buf, 4096, 4096) == 0) {
			memset(buf, 0, 4096);
			ok = pwrite(fd, buf, 4096, 0) == 4096;
			free(buf);
		}
		close(fd);
	}
	unlink(path);
	return ok;
}

/* True when DIR is on tmpfs. */
static inline bool test_is_tmpfs(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* nftw() callback of test_remove_tree(): removes one entry. */
static inline int test_remove_entry(const char *path, const struct stat *st, int flag,
				    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes DIR and everything below it (links are removed, not followed). Returns 0 or
 * -errno of the first failure; a missing DIR is -ENOENT. */
static inline int test_remove_tree(const char *dir)
{
	if (nftw(dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* Picks a fresh directory "<parent>/<PREFIX>-XXXXXX" (mkdtemp) whose file system accepts
 * O_DIRECT, trying SLUICE_BUILDDIR (or "."), /var/tmp and /tmp, preferring a real file
 * system over tmpfs. On success writes it to OUT (CAP bytes), sets *ON_TMPFS (may be
 * NULL) and returns 0; the caller removes it with test_remove_tree(). With none, leaves
 * OUT "", writes a reason naming what was tried to WHY (WHY_CAP bytes) and returns
 * -ENOENT. */
static inline int test_pick_direct_dir(const char *prefix, char *out, size_t cap, bool *on_tmpfs,
				       char *why, size_t why_cap)
{
	const char *build = getenv("SLUICE_BUILDDIR");
	const char *candidates[] = {build && build[0] ? build : ".", "/var/tmp", "/tmp"};
	char tmpfs_dir[4096] = "", tried[1024] = "";

	out[0] = '\0';
	if (on_tmpfs)
		*on_tmpfs = false;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s-XXXXXX", candidates[i], prefix);
		if (!mkdtemp(dir))
			continue;
		bool ok = strlen(dir) < cap && test_accepts_o_direct(dir);
		if (ok && !test_is_tmpfs(dir)) {
			memcpy(out, dir, strlen(dir) + 1);
			break;
		}
		if (ok && !tmpfs_dir[0])
			snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s", dir);
		else
			rmdir(dir);
		size_t used = strlen(tried);
		snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? ", " : "",
			 candidates[i]);
	}
	if (!out[0] && tmpfs_dir[0]) {
		memcpy(out, tmpfs_dir, strlen(tmpfs_dir) + 1);
		if (on_tmpfs)
			*on_tmpfs = true;
	} else if (tmpfs_dir[0]) {
		rmdir(tmpfs_dir);
	}
	if (out[0])
		return 0;
	snprintf(why, why_cap, "no directory accepts O_DIRECT (tried %s); the shard log needs it",
		 tried[0] ? tried : "none could be created");
	return -ENOENT;
}

#endif
