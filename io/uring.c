/*
 * io/uring.c: io_uring ring creation with the setup-flag fallback chain, the opcode
 * probe, and the translation of failures into one line of advice. It does not run an
 * event loop (io/loop.c) or register buffers (io/pool.c).
 */
#include "io/uring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>

/* Setup modes, best first. DEFER_TASKRUN (Linux 6.1) runs completion work only when
 * the owning thread asks for events, which suits a thread that does nothing else;
 * COOP_TASKRUN (5.19) at least avoids interrupting the thread with IPIs. */
static const unsigned uring_setup_modes[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	0,
};

/* Opcodes sluice cannot work without: disk I/O through registered buffers, sockets,
 * timers, cancellation, the mesh wake-up, and the shard log's segment preparation and
 * file replacement off the loop's path (FALLOCATE, WRITE, RENAMEAT). */
static const struct {
	int op;
	const char *name;
} uring_required_ops[] = {
	{IORING_OP_READ_FIXED, "READ_FIXED"}, {IORING_OP_WRITE_FIXED, "WRITE_FIXED"},
	{IORING_OP_FSYNC, "FSYNC"},           {IORING_OP_RECV, "RECV"},
	{IORING_OP_SEND, "SEND"},             {IORING_OP_ACCEPT, "ACCEPT"},
	{IORING_OP_TIMEOUT, "TIMEOUT"},       {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
	{IORING_OP_CLOSE, "CLOSE"},           {IORING_OP_MSG_RING, "MSG_RING"},
	{IORING_OP_FALLOCATE, "FALLOCATE"},   {IORING_OP_WRITE, "WRITE"},
	{IORING_OP_RENAMEAT, "RENAMEAT"},
};

int uring_queue_init(struct io_uring *ring, unsigned entries, struct uring_features *features)
{
	int ret = -EINVAL;
	memset(features, 0, sizeof(*features));
	for (size_t i = 0; i < sizeof(uring_setup_modes) / sizeof(uring_setup_modes[0]); i++) {
		struct io_uring_params params;
		memset(&params, 0, sizeof(params));
		params.flags = uring_setup_modes[i];
		ret = io_uring_queue_init_params(entries, ring, &params);
		if (ret == 0) {
			features->setup_flags = params.flags;
			features->defer_taskrun = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
			features->coop_taskrun = (params.flags & IORING_SETUP_COOP_TASKRUN) != 0;
			features->kernel_features = params.features;
			return 0;
		}
		/* Only an unknown flag (EINVAL) is worth a retry with fewer flags; EPERM,
		 * ENOSYS and ENOMEM will fail the same way in every mode. */
		if (ret != -EINVAL)
			return ret;
	}
	return ret;
}

int uring_probe(struct io_uring *ring, struct uring_features *features, const char **missing)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	if (!probe) {
		*missing = "IORING_REGISTER_PROBE";
		return -EOPNOTSUPP;
	}
	int ret = 0;
	for (size_t i = 0; i < sizeof(uring_required_ops) / sizeof(uring_required_ops[0]); i++) {
		if (!io_uring_opcode_supported(probe, uring_required_ops[i].op)) {
			*missing = uring_required_ops[i].name;
			ret = -EOPNOTSUPP;
			break;
		}
	}
	features->msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	features->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	io_uring_free_probe(probe);
	return ret;
}

/* Reads a small integer sysctl; returns -1 when it does not exist. */
static int uring_read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int value = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%d", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

const char *uring_explain(int err, const char *stage, const char *missing_op, char *buf,
			  size_t len)
{
	struct utsname uts;
	if (uname(&uts) != 0)
		snprintf(uts.release, sizeof(uts.release), "unknown");
	int disabled = uring_read_sysctl("/proc/sys/kernel/io_uring_disabled");

	switch (err) {
	case -ENOSYS:
		snprintf(buf, len,
			 "io_uring %s failed: io_uring_setup is not available (kernel %s): the "
			 "kernel was built without io_uring or a seccomp profile blocks it; sluice "
			 "needs Linux >= 6.1, and in a container allow io_uring_setup, "
			 "io_uring_enter and io_uring_register in the seccomp profile",
			 stage, uts.release);
		break;
	case -EPERM:
	case -EACCES:
		if (disabled == 2)
			snprintf(buf, len,
				 "io_uring %s failed: io_uring is disabled by the sysctl "
				 "kernel.io_uring_disabled=2; fix: sysctl -w kernel.io_uring_disabled=0",
				 stage);
		else if (disabled == 1)
			snprintf(buf, len,
				 "io_uring %s failed: kernel.io_uring_disabled=1 allows io_uring only "
				 "to CAP_SYS_ADMIN and the group in kernel.io_uring_group; fix: run as "
				 "root, add the user to that group, or sysctl -w "
				 "kernel.io_uring_disabled=0",
				 stage);
		else
			snprintf(buf, len,
				 "io_uring %s failed: permission denied by a seccomp profile or LSM "
				 "(containers often block io_uring); fix: allow io_uring_setup, "
				 "io_uring_enter and io_uring_register for sluiced",
				 stage);
		break;
	case -ENOMEM: {
		struct rlimit lim;
		getrlimit(RLIMIT_MEMLOCK, &lim);
		if (lim.rlim_cur == RLIM_INFINITY)
			snprintf(buf, len,
				 "io_uring %s failed: out of memory; fix: lower --pool-bytes or free "
				 "memory",
				 stage);
		else
			snprintf(buf, len,
				 "io_uring %s failed: RLIMIT_MEMLOCK (%llu KiB) is too low to lock the "
				 "ring and registered buffers; fix: ulimit -l unlimited, "
				 "LimitMEMLOCK=infinity in the systemd unit, a memlock line in "
				 "/etc/security/limits.conf, or a smaller --pool-bytes",
				 stage, (unsigned long long)lim.rlim_cur / 1024);
		break;
	}
	case -EOPNOTSUPP:
		snprintf(buf, len,
			 "io_uring %s failed: the kernel's io_uring lacks %s (kernel %s); fix: run "
			 "on Linux >= 6.1",
			 stage, missing_op ? missing_op : "a required feature", uts.release);
		break;
	default:
		snprintf(buf, len, "io_uring %s failed: %s", stage, strerror(-err));
		break;
	}
	return buf;
}

const char *uring_mode_name(const struct uring_features *features)
{
	if (features->defer_taskrun)
		return "single_issuer+defer_taskrun";
	if (features->coop_taskrun)
		return "coop_taskrun";
	return "default";
}
