/*
 * io/disk.h: the disk primitives the shard log, the metadata journal and the tools are
 * built on: opening (and creating) data directories, creating preallocated O_DIRECT
 * segment files, replacing small files atomically (write temp, fsync, rename, fsync the
 * directory), reading small files whole, listing a directory, and synchronous
 * read/write loops. These are blocking system calls for start-up, recovery, metadata
 * and tools; the hot path writes and reads segments through io_uring (io/loop.h), not
 * through this module. It knows nothing about frames, Kafka or partitions.
 *
 * Every function returns 0 or a negative errno and logs nothing on ordinary failures
 * (-ENOENT, -EEXIST, ...); the caller knows what the failure means. File names are
 * single path components relative to a directory descriptor (no '/').
 */
#ifndef SLUICE_IO_DISK_H
#define SLUICE_IO_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Suffix of the temporary file disk_write_atomic() writes before renaming it. */
#define DISK_TMP_SUFFIX ".tmp"
/* Alignment assumed for O_DIRECT when the kernel does not report one (statx
 * STATX_DIOALIGN, Linux 6.1+): a 4 KiB page, right for every common device. */
#define DISK_DIRECT_ALIGN_DEFAULT 4096u
/* No device has a smaller logical block than 512 bytes. */
#define DISK_DIRECT_ALIGN_MIN 512u

/* Opens the directory PATH (O_RDONLY|O_DIRECTORY|O_CLOEXEC) into *DIR_FD. When CREATE,
 * every missing component of PATH is created first (mkdir -p, mode 0755), and each
 * parent that gained an entry is fsynced so the new directories survive a crash.
 * Returns 0, or -ENOENT (missing and not CREATE), -ENOTDIR, -ENAMETOOLONG (PATH of
 * PATH_MAX or more), -EACCES, ... ; *DIR_FD is untouched on failure. */
int disk_open_dir(const char *path, bool create, int *dir_fd);

/*
 * Opens the segment file NAME in DIR_FD with O_RDWR|O_DIRECT|O_CLOEXEC into *FD.
 * When CREATE, a missing file is created (mode 0644); in either case, with CREATE,
 * the file is then made at least SIZE_BYTES long with fallocate(mode 0), so its blocks
 * are allocated (appends cannot hit ENOSPC) and read as zeros, and the file and the
 * directory are fsynced so the file and its size survive a crash. An existing file
 * longer than SIZE_BYTES is left as it is. Without CREATE, SIZE_BYTES is ignored and a
 * missing file is -ENOENT (use disk_file_size for its size).
 * Returns 0, or:
 *  -EINVAL  the file system refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE and
 *           network file systems): logged once as an error naming the directory's
 *           file system; sluice never falls back to buffered I/O silently. A file this
 *           call created is removed again.
 *  -ENOSPC, -EOPNOTSUPP (no fallocate), ...: from the kernel; a file this call created
 *           is removed again.
 */
int disk_segment_open(int dir_fd, const char *name, uint64_t size_bytes, bool create, int *fd);

/* Replaces NAME in DIR_FD with the LEN bytes at BUF so that, after a crash at any
 * point, NAME holds either its old content (or is absent, if it was) or the new one,
 * never a mix: writes NAME.tmp (created or truncated, mode 0644), fsyncs it, renames it
 * over NAME and fsyncs DIR_FD. A stale NAME.tmp from an earlier crash is overwritten.
 * On failure NAME is untouched and NAME.tmp is removed. Returns 0, -ENAMETOOLONG when
 * NAME.tmp would exceed NAME_MAX, or the kernel's error. */
int disk_write_atomic(int dir_fd, const char *name, const void *buf, size_t len);

/* The first step of disk_write_atomic for callers that do the rest through io_uring
 * (write, fsync, rename, fsync the directory, linked): writes NAME.tmp into TMP (of
 * TMP_LEN bytes) and opens it in DIR_FD created or truncated (mode 0644, O_WRONLY).
 * Returns the descriptor, or -ENAMETOOLONG or the kernel's error. */
int disk_atomic_open_tmp(int dir_fd, const char *name, char *tmp, size_t tmp_len);

/* Creates the new, empty file NAME in DIR_FD (O_EXCL: -EEXIST when it exists) and
 * opens it read-write with O_DIRECT for a segment whose preallocation and syncs the
 * caller does (through io_uring). On failure the file is removed again. Returns the
 * descriptor or a negative errno (-EINVAL: the file system refuses O_DIRECT). */
int disk_segment_create(int dir_fd, const char *name);

/* Reads the whole file NAME in DIR_FD into a new malloc'd buffer *BUF of *LEN bytes,
 * plus one NUL byte after them (so text parsers may treat it as a string); free() it.
 * Returns 0, -ENOENT when missing, -EFBIG when the file holds more than MAX_BYTES,
 * -EAGAIN when it grew while being read (files read here are only ever replaced
 * atomically, so this means someone writes it in place), -ENOMEM, or the kernel's
 * error; *BUF and *LEN are untouched on failure. */
int disk_read_file(int dir_fd, const char *name, size_t max_bytes, void **buf, size_t *len);

/* fsync()s the directory DIR_FD, making creates, renames and unlinks in it durable. */
int disk_fsync_dir(int dir_fd);

/* Removes NAME from DIR_FD and fsyncs DIR_FD. -ENOENT when missing. */
int disk_unlink(int dir_fd, const char *name);

/* fsync()s the file FD (data and metadata). */
int disk_fsync(int fd);

/* Size of the open file FD in bytes, into *SIZE_BYTES. */
int disk_file_size(int fd, uint64_t *size_bytes);

/* The alignment O_DIRECT I/O on FD needs, for buffer addresses, file positions and
 * lengths alike: the larger of the memory and offset alignment that statx
 * (STATX_DIOALIGN, Linux 6.1+) reports for FD, else DISK_DIRECT_ALIGN_DEFAULT. Always a
 * power of two >= DISK_DIRECT_ALIGN_MIN. */
uint32_t disk_direct_align(int fd);

/* Lists the regular files in DIR_FD whose names end with SUFFIX (NULL or "" for all),
 * sorted by strcmp (so zero-padded numeric names come in numeric order), into a new
 * malloc'd array *NAMES of *COUNT malloc'd strings; free it with disk_list_free. The
 * names "." and ".." never appear. An empty result is *NAMES == NULL, *COUNT == 0.
 * Returns 0, -ENOMEM, or the kernel's error (nothing allocated on failure). */
int disk_list(int dir_fd, const char *suffix, char ***names, uint32_t *count);

/* Frees what disk_list returned (NAMES may be NULL). */
void disk_list_free(char **names, uint32_t count);

/* Reads exactly LEN bytes at file position POS of FD into BUF, retrying short reads
 * and EINTR. Returns 0, -ENODATA when the file ends first, or the kernel's error
 * (-EINVAL for O_DIRECT misalignment). */
int disk_pread_all(int fd, void *buf, size_t len, uint64_t pos);

/* Writes exactly LEN bytes from BUF at file position POS of FD, retrying short writes
 * and EINTR. Returns 0 or the kernel's error (-ENOSPC, -EINVAL for O_DIRECT
 * misalignment, ...); on error some of the bytes may have been written. */
int disk_pwrite_all(int fd, const void *buf, size_t len, uint64_t pos);

#endif
