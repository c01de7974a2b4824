/*
 * io/disk.c: blocking disk primitives for start-up, recovery, metadata and tools:
 * directories, preallocated O_DIRECT segments, atomic small-file replacement, whole-file
 * reads, listings and full-length pread/pwrite loops. See io/disk.h for the contract.
 * The hot path's segment I/O goes through io_uring elsewhere.
 */
#include "io/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/logger.h"

/* A name for the file system under FD, for the one log line that explains a refusal. */
static const char *fs_name(int fd)
{
	struct statfs st;
	if (fstatfs(fd, &st) != 0)
		return "unknown";
	switch ((unsigned long)st.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x65735546:
		return "fuse";
	case 0x6969:
		return "nfs";
	case 0x2fc12fc1:
		return "zfs";
	case 0x01021997:
		return "9p";
	case 0x858458f6:
		return "ramfs";
	default:
		return "other";
	}
}

/* The path of DIR_FD for log lines, into BUF; "?" when the kernel cannot say. */
static const char *dir_path(int dir_fd, char *buf, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dir_fd);
	ssize_t n = readlink(link, buf, len - 1);
	if (n <= 0)
		return "?";
	buf[n] = '\0';
	return buf;
}

/* Creates one directory PATH (mode 0755) and, when it did not exist, fsyncs its parent
 * PARENT (the prefix of PATH before its last component, "/" or "."). */
static int mkdir_one(const char *path, const char *parent)
{
	if (mkdir(path, 0755) != 0) {
		if (errno == EEXIST)
			return 0;
		return -errno;
	}
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	int ret = disk_fsync_dir(pfd);
	close(pfd);
	return ret;
}

/* mkdir -p PATH: each prefix ending before a '/' and PATH itself. */
static int mkdir_all(const char *path)
{
	char buf[PATH_MAX];
	char parent[PATH_MAX];
	size_t n = strlen(path);
	memcpy(buf, path, n + 1);
	/* Strip trailing slashes ("a/b/" is "a/b"), keeping a lone "/". */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue; /* "a//b": the empty component was done */
		char saved = buf[i];
		buf[i] = '\0';
		/* The parent of buf is everything before its last '/'. */
		char *slash = strrchr(buf, '/');
		if (!slash)
			strcpy(parent, ".");
		else if (slash == buf)
			strcpy(parent, "/");
		else {
			memcpy(parent, buf, (size_t)(slash - buf));
			parent[slash - buf] = '\0';
		}
		int ret = mkdir_one(buf, parent);
		buf[i] = saved;
		if (ret < 0)
			return ret;
	}
	return 0;
}

int disk_open_dir(const char *path, bool create, int *dir_fd)
{
	if (!path || !path[0])
		return -ENOENT;
	if (strlen(path) >= PATH_MAX)
		return -ENAMETOOLONG;
	if (create) {
		int ret = mkdir_all(path);
		if (ret < 0)
			return ret;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*dir_fd = fd;
	return 0;
}

int disk_fsync_dir(int dir_fd)
{
	return fsync(dir_fd) == 0 ? 0 : -errno;
}

int disk_fsync(int fd)
{
	return fsync(fd) == 0 ? 0 : -errno;
}

int disk_file_size(int fd, uint64_t *size_bytes)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	*size_bytes = (uint64_t)st.st_size;
	return 0;
}

/* Turns O_DIRECT on for F (NAME in DIR_FD) with F_SETFL: the kernel applies the same
 * check there as at open, and this way a refusal cannot leave a file behind that we
 * cannot tell whether we created. Logs a refusal (-EINVAL) once as an error. */
static int direct_on(int dir_fd, const char *name, int f)
{
	int flags = fcntl(f, F_GETFL);
	if (flags >= 0 && fcntl(f, F_SETFL, flags | O_DIRECT) == 0)
		return 0;
	int ret = -errno;
	if (ret == -EINVAL) {
		char dir[256];
		LOG_ERROR("disk: %s/%s: the file system (%s) refuses O_DIRECT; put the "
			  "data directory on ext4 or xfs",
			  dir_path(dir_fd, dir, sizeof(dir)), name, fs_name(f));
	}
	return ret;
}

int disk_segment_open(int dir_fd, const char *name, uint64_t size_bytes, bool create, int *fd)
{
	bool created = false;
	int ret;
	/* Opened without O_DIRECT, which direct_on turns on. */
	int f = -1;
	if (create) {
		f = openat(dir_fd, name, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0644);
		if (f >= 0)
			created = true;
		else if (errno != EEXIST)
			return -errno;
	}
	if (f < 0) {
		f = openat(dir_fd, name, O_RDWR | O_CLOEXEC);
		if (f < 0)
			return -errno;
	}
	ret = direct_on(dir_fd, name, f);
	if (ret < 0)
		goto out_close;
	if (create) {
		uint64_t have = 0;
		ret = disk_file_size(f, &have);
		if (ret < 0)
			goto out_close;
		if (have < size_bytes) {
			if (fallocate(f, 0, 0, (off_t)size_bytes) != 0) {
				ret = -errno;
				LOG_ERROR("disk: %s: fallocate of %llu bytes failed on %s: %s",
					  name, (unsigned long long)size_bytes, fs_name(f),
					  strerror(-ret));
				goto out_close;
			}
		}
		if (created || have < size_bytes) {
			ret = disk_fsync(f);
			if (ret < 0)
				goto out_close;
			ret = disk_fsync_dir(dir_fd);
			if (ret < 0)
				goto out_close;
		}
	}
	*fd = f;
	return 0;

out_close:
	close(f);
	if (created)
		unlinkat(dir_fd, name, 0);
	return ret;
}

int disk_segment_create(int dir_fd, const char *name)
{
	int f = openat(dir_fd, name, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0644);
	if (f < 0)
		return -errno;
	int ret = direct_on(dir_fd, name, f);
	if (ret < 0) {
		close(f);
		unlinkat(dir_fd, name, 0);
		return ret;
	}
	return f;
}

int disk_pread_all(int fd, void *buf, size_t len, uint64_t pos)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		pos += (uint64_t)n;
	}
	return 0;
}

int disk_pwrite_all(int fd, const void *buf, size_t len, uint64_t pos)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* a regular file never accepts nothing; do not spin */
		p += n;
		len -= (size_t)n;
		pos += (uint64_t)n;
	}
	return 0;
}

int disk_atomic_open_tmp(int dir_fd, const char *name, char *tmp, size_t tmp_len)
{
	size_t n = strlen(name);
	if (n + sizeof(DISK_TMP_SUFFIX) > tmp_len || n + sizeof(DISK_TMP_SUFFIX) - 1 > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(tmp, name, n);
	memcpy(tmp + n, DISK_TMP_SUFFIX, sizeof(DISK_TMP_SUFFIX));
	int f = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return f < 0 ? -errno : f;
}

int disk_write_atomic(int dir_fd, const char *name, const void *buf, size_t len)
{
	char tmp[NAME_MAX + 1];
	int ret;
	int f = disk_atomic_open_tmp(dir_fd, name, tmp, sizeof(tmp));
	if (f < 0)
		return f;
	ret = disk_pwrite_all(f, buf, len, 0);
	if (ret < 0)
		goto out_unlink;
	ret = disk_fsync(f);
	if (ret < 0)
		goto out_unlink;
	if (close(f) != 0) {
		f = -1;
		ret = -errno;
		goto out_unlink;
	}
	f = -1;
	if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
		ret = -errno;
		goto out_unlink;
	}
	return disk_fsync_dir(dir_fd);

out_unlink:
	if (f >= 0)
		close(f);
	unlinkat(dir_fd, tmp, 0);
	return ret;
}

int disk_read_file(int dir_fd, const char *name, size_t max_bytes, void **buf, size_t *len)
{
	int ret;
	int f = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	uint64_t size;
	ret = disk_file_size(f, &size);
	if (ret < 0)
		goto out_close;
	if (size > max_bytes) {
		ret = -EFBIG;
		goto out_close;
	}
	/* One byte more than the size, to see a file that grew since fstat (it must still
	 * fit MAX_BYTES) and for the NUL. */
	size_t cap = (size_t)size + 1;
	uint8_t *data = malloc(cap + 1);
	if (!data) {
		ret = -ENOMEM;
		goto out_close;
	}
	size_t got = 0;
	for (;;) {
		ssize_t r = read(f, data + got, cap - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out_free;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == cap) {
			/* Grew while we read it: the result would be a torn copy. */
			ret = got > max_bytes ? -EFBIG : -EAGAIN;
			goto out_free;
		}
	}
	data[got] = '\0';
	close(f);
	*buf = data;
	*len = got;
	return 0;

out_free:
	free(data);
out_close:
	close(f);
	return ret;
}

int disk_unlink(int dir_fd, const char *name)
{
	if (unlinkat(dir_fd, name, 0) != 0)
		return -errno;
	return disk_fsync_dir(dir_fd);
}

uint32_t disk_direct_align(int fd)
{
	struct statx stx;
	uint32_t align = 0;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
		align = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align > align)
			align = stx.stx_dio_mem_align;
	}
	/* Zero (not reported, or the file cannot do direct I/O) or something that is not a
	 * power of two: assume the safe default. */
	if (align == 0 || (align & (align - 1)) != 0)
		align = DISK_DIRECT_ALIGN_DEFAULT;
	if (align < DISK_DIRECT_ALIGN_MIN)
		align = DISK_DIRECT_ALIGN_MIN;
	return align;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *name, const char *suffix, size_t suffix_len)
{
	size_t n = strlen(name);
	return n >= suffix_len && memcmp(name + n - suffix_len, suffix, suffix_len) == 0;
}

void disk_list_free(char **names, uint32_t count)
{
	if (!names)
		return;
	for (uint32_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int disk_list(int dir_fd, const char *suffix, char ***names, uint32_t *count)
{
	size_t suffix_len = suffix ? strlen(suffix) : 0;
	/* A descriptor of our own: fdopendir takes it over, and its read position must not
	 * be shared with the caller's. */
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *dir = fdopendir(fd);
	if (!dir) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	char **list = NULL;
	uint32_t n = 0, cap = 0;
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de) {
			ret = -errno; /* 0 at the end of the directory */
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (suffix_len && !has_suffix(de->d_name, suffix, suffix_len))
			continue;
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
				continue; /* removed meanwhile */
			type = S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (type != DT_REG)
			continue;
		if (n == UINT32_MAX) {
			ret = -EOVERFLOW;
			break;
		}
		if (n == cap) {
			uint32_t ncap = cap ? (cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2) : 16;
			char **grown = realloc(list, (size_t)ncap * sizeof(*list));
			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			list = grown;
			cap = ncap;
		}
		list[n] = strdup(de->d_name);
		if (!list[n]) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(dir);
	if (ret < 0) {
		disk_list_free(list, n);
		return ret;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), name_cmp);
	if (n == 0) {
		free(list);
		list = NULL;
	}
	*names = list;
	*count = n;
	return 0;
}
