/*
 * io/uring.h: creating a shard's io_uring and finding out what the kernel gives it.
 * uring_queue_init() asks for SINGLE_ISSUER|DEFER_TASKRUN and falls back to
 * COOP_TASKRUN, then to no flags, recording what it got; uring_probe() checks that every
 * opcode sluice uses is supported. When io_uring cannot be used at all (the
 * kernel.io_uring_disabled sysctl, a container's seccomp profile, a kernel that is too
 * old, RLIMIT_MEMLOCK too low to register buffers), uring_explain() turns the error
 * into one line that names the cause and the fix. Nothing here knows about Kafka.
 */
#ifndef SLUICE_IO_URING_H
#define SLUICE_IO_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>

/* What the kernel granted one ring; filled by uring_queue_init and uring_probe. */
struct uring_features {
	unsigned setup_flags;  /* IORING_SETUP_* flags the ring was created with */
	bool defer_taskrun;    /* SINGLE_ISSUER|DEFER_TASKRUN: completions run on our thread */
	bool coop_taskrun;     /* fallback: COOP_TASKRUN, fewer IPIs than the default */
	bool send_zc;          /* IORING_OP_SEND_ZC (zero-copy send) is available */
	bool msg_ring;         /* IORING_OP_MSG_RING: the mesh's wake-up */
	unsigned kernel_features; /* io_uring_params.features (IORING_FEAT_*) */
};

/* Creates RING with ENTRIES submission slots in the calling thread (with
 * SINGLE_ISSUER the creating thread is the only one that may submit). Returns 0 or the
 * negative errno of the last attempt; on success FEATURES says which mode it got. */
int uring_queue_init(struct io_uring *ring, unsigned entries, struct uring_features *features);

/* Checks that RING supports every opcode sluice uses. Returns 0, or -EOPNOTSUPP with
 * *MISSING set to the first unsupported opcode's name. Sets the optional-op fields of
 * FEATURES (send_zc). */
int uring_probe(struct io_uring *ring, struct uring_features *features, const char **missing);

/* Writes into BUF one line explaining why io_uring failed with ERR (a negative errno
 * from setup, probe or buffer registration) during STAGE ("setup", "probe",
 * "register buffers"), naming the cause and the fix. Returns BUF. */
const char *uring_explain(int err, const char *stage, const char *missing_op, char *buf,
			  size_t len);

/* "defer_taskrun", "coop_taskrun" or "default": for the start-up log. */
const char *uring_mode_name(const struct uring_features *features);

#endif
