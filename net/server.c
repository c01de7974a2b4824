/*
 * net/server.c: the "net" shard layer (contract in net/server.h): the listening socket
 * and its multishot accept, the preallocated connection table with its free list, the
 * provided-buffer ring of pool chunks for the connections' multishot receives, the
 * assembly budget and its wait list, the per-shard counters, and the layer's start and
 * stop. The connections themselves are net/conn's.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/broker.h"
#include "core/logger.h"
#include "net/api.h"
#include "net/kafka.h"

/* A failed accept is re-armed after this pause, so a lasting error (EMFILE) does not
 * spin the loop. */
#define SERVER_ACCEPT_RETRY_MS 100

static int server_start(struct shard *shard, void *ctx, char *err, size_t err_len);
static void server_stop(struct shard *shard, void *ctx);

struct shard_layer server_layer(void)
{
	return (struct shard_layer){.name = "net", .start = server_start, .stop = server_stop};
}

/* The position of the net layer among SHARD's layers, or -1. */
static int server_layer_index(const struct shard *shard)
{
	const struct shard_set *set = shard->set;
	for (uint32_t i = 0; i < set->layer_count; i++)
		if (set->layers[i].start == server_start)
			return (int)i;
	return -1;
}

struct server *server_of(const struct shard *shard)
{
	int index = server_layer_index(shard);
	return index < 0 ? NULL : shard->layer_state[index];
}

void server_stats(const struct server *s, struct server_stats *out)
{
	*out = s->stats;
}

/* ---- receive buffers ---- */

uint8_t *server_buffer(const struct server *s, uint32_t bid)
{
	ASSERT(bid < s->buf_count);
	return s->bufs[bid];
}

void server_buffer_return(struct server *s, uint32_t bid)
{
	ASSERT(bid < s->buf_count);
	io_uring_buf_ring_add(s->buf_ring, s->bufs[bid], s->buf_bytes, (unsigned short)bid,
			      io_uring_buf_ring_mask(s->buf_count), 0);
	/* A store-release of the tail: the kernel sees the entry before the new tail. */
	io_uring_buf_ring_advance(s->buf_ring, 1);
}

/* The ring's size: LIMITS_NET_RECV_BUFFERS, or the largest power of two up to half the
 * pool chunks still free; 0 when that is below LIMITS_NET_RECV_BUFFERS_MIN. */
static uint32_t server_buffer_count(const struct pool *pool)
{
	uint32_t n = LIMITS_NET_RECV_BUFFERS;
	while (n > pool->free_count / 2 && n >= LIMITS_NET_RECV_BUFFERS_MIN)
		n /= 2;
	return n >= LIMITS_NET_RECV_BUFFERS_MIN ? n : 0;
}

static int server_buffers_setup(struct server *s, char *err, size_t err_len)
{
	struct pool *pool = &s->shard->pool;
	s->buf_count = server_buffer_count(pool);
	if (s->buf_count == 0) {
		snprintf(err, err_len,
			 "the buffer pool has only %u free chunks of %u KiB; receiving needs at "
			 "least %u: raise --pool-bytes",
			 pool->free_count, pool->chunk_bytes / 1024,
			 2 * LIMITS_NET_RECV_BUFFERS_MIN);
		return -ENOBUFS;
	}
	s->buf_bytes = pool->chunk_bytes;
	s->bufs = calloc(s->buf_count, sizeof(*s->bufs));
	size_t ring_bytes = (size_t)s->buf_count * sizeof(struct io_uring_buf);
	void *ring = NULL;
	if (!s->bufs || posix_memalign(&ring, 4096, ring_bytes) != 0) {
		snprintf(err, err_len, "cannot allocate the receive buffer ring");
		return -ENOMEM;
	}
	memset(ring, 0, ring_bytes);
	s->buf_ring = ring;
	for (uint32_t i = 0; i < s->buf_count; i++) {
		s->bufs[i] = pool_alloc(pool);
		ASSERT(s->bufs[i]); /* server_buffer_count left half the free chunks */
	}
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uint64_t)(uintptr_t)ring,
	    .ring_entries = s->buf_count,
	    .bgid = SERVER_RECV_BGID,
	};
	int ret = io_uring_register_buf_ring(&s->loop->ring, &reg, 0);
	if (ret < 0) {
		snprintf(err, err_len,
			 "io_uring cannot register a provided-buffer ring: %s; fix: Linux 5.19 or "
			 "later is needed for multishot receives",
			 strerror(-ret));
		return ret;
	}
	s->buf_registered = true;
	io_uring_buf_ring_init(s->buf_ring);
	for (uint32_t i = 0; i < s->buf_count; i++)
		io_uring_buf_ring_add(s->buf_ring, s->bufs[i], s->buf_bytes, (unsigned short)i,
				      io_uring_buf_ring_mask(s->buf_count), (int)i);
	io_uring_buf_ring_advance(s->buf_ring, (int)s->buf_count);
	return 0;
}

static void server_buffers_teardown(struct server *s)
{
	if (s->buf_registered)
		io_uring_unregister_buf_ring(&s->loop->ring, SERVER_RECV_BGID);
	s->buf_registered = false;
	if (s->bufs)
		for (uint32_t i = 0; i < s->buf_count; i++)
			if (s->bufs[i])
				pool_free(&s->shard->pool, s->bufs[i]);
	free(s->bufs);
	s->bufs = NULL;
	free(s->buf_ring);
	s->buf_ring = NULL;
}

/* ---- assembly budget ---- */

void server_assembly_add(struct server *s, int64_t delta)
{
	ASSERT(delta >= 0 || s->stats.assembly_bytes >= (uint64_t)-delta);
	s->stats.assembly_bytes += (uint64_t)delta;
	if (s->stats.assembly_bytes > s->stats.assembly_bytes_max)
		s->stats.assembly_bytes_max = s->stats.assembly_bytes;
}

void server_budget_wait(struct server *s, struct conn *c)
{
	c->wait_next = CONN_NONE;
	c->wait_prev = s->wait_tail;
	if (s->wait_tail == CONN_NONE)
		s->wait_head = c->index;
	else
		s->conns[s->wait_tail].wait_next = c->index;
	s->wait_tail = c->index;
}

void server_budget_unwait(struct server *s, struct conn *c)
{
	if (c->wait_prev == CONN_NONE)
		s->wait_head = c->wait_next;
	else
		s->conns[c->wait_prev].wait_next = c->wait_next;
	if (c->wait_next == CONN_NONE)
		s->wait_tail = c->wait_prev;
	else
		s->conns[c->wait_next].wait_prev = c->wait_prev;
	c->wait_prev = c->wait_next = CONN_NONE;
}

/* Before each wait: resumes the connections waiting for the budget, oldest first, as
 * long as the oldest one's frame fits (first come, first served: a large frame is not
 * overtaken for ever by small ones). */
static void server_hook(void *ctx, struct loop *loop)
{
	struct server *s = ctx;
	while (s->wait_head != CONN_NONE) {
		struct conn *c = &s->conns[s->wait_head];
		size_t need = conn_stash_needed(c);
		uint64_t grow = need > c->rx_cap ? need - c->rx_cap : 0;
		bool alone = s->stats.assembly_bytes == c->rx_cap;
		if (grow && !alone && s->stats.assembly_bytes + grow > s->assembly_budget)
			break;
		server_budget_unwait(s, c);
		conn_resume_budget(c);
	}
}

/* ---- connections ---- */

static void server_log_rate_limited(struct server *s, uint64_t *logged_ns, uint64_t *unlogged,
				    enum logger_level level, const char *what)
{
	uint64_t now = loop_now_ns();
	if (*logged_ns && now - *logged_ns < SERVER_LOG_INTERVAL_MS * 1000000ull) {
		(*unlogged)++;
		return;
	}
	if (*unlogged)
		logger_write(level, "%s (and %llu more like it not logged)", what,
			     (unsigned long long)*unlogged);
	else
		logger_write(level, "%s", what);
	*logged_ns = now;
	*unlogged = 0;
}

void server_log_bad_frame(struct server *s, const struct conn *c, const char *why)
{
	char line[256];
	snprintf(line, sizeof(line), "net: closed connection from %s: %s", c->peer, why);
	server_log_rate_limited(s, &s->badframe_logged_ns, &s->badframe_unlogged, LOGGER_WARN,
				line);
}

void server_conn_release(struct server *s, struct conn *c)
{
	ASSERT(c->state == CONN_CLOSING && s->stats.conns_open > 0);
	c->state = CONN_FREE;
	c->generation++;
	c->free_next = s->free_head;
	s->free_head = c->index;
	s->stats.conns_open--;
}

static void server_peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(buf, len, "%s:%u", addr, port);
}

static void server_refuse(struct server *s, int fd)
{
	s->stats.conns_refused++;
	char peer[64], line[256];
	server_peer_name(fd, peer, sizeof(peer));
	close(fd);
	snprintf(line, sizeof(line),
		 "net: connection from %s refused: all %u connection slots of this shard are in "
		 "use (max-connections); %llu refused so far",
		 peer, s->conn_count, (unsigned long long)s->stats.conns_refused);
	server_log_rate_limited(s, &s->refused_logged_ns, &s->refused_unlogged, LOGGER_WARN, line);
}

static void server_accepted(struct server *s, int fd)
{
	if (s->stopping) {
		close(fd);
		return;
	}
	if (s->free_head == CONN_NONE) {
		server_refuse(s, fd);
		return;
	}
	struct conn *c = &s->conns[s->free_head];
	s->free_head = c->free_next;
	c->free_next = CONN_NONE;
	s->stats.conns_accepted++;
	if (++s->stats.conns_open > s->stats.conns_open_max)
		s->stats.conns_open_max = s->stats.conns_open;
	/* Kafka clients send small requests and wait for their answers: no Nagle delay. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	server_peer_name(fd, c->peer, sizeof(c->peer));
	LOG_DEBUG("net: connection %u from %s", c->index, c->peer);
	conn_open(c, fd);
}

static void server_arm_accept(struct server *s)
{
	struct io_uring_sqe *sqe = loop_get_sqe(s->loop);
	io_uring_prep_multishot_accept(sqe, s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_ACCEPT, 0));
	s->accept_armed = true;
}

static void server_accept_retry(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	struct server *s = ctx;
	if (!s->stopping && !s->accept_armed)
		server_arm_accept(s);
}

static void server_on_accept(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct server *s = ctx;
	if (cqe->res >= 0) {
		server_accepted(s, cqe->res);
	} else if (cqe->res != -ECANCELED || !s->stopping) {
		s->stats.accept_errors++;
		char line[128];
		snprintf(line, sizeof(line), "net: accept on port %u failed: %s", s->port,
			 strerror(-cqe->res));
		server_log_rate_limited(s, &s->accept_logged_ns, &s->accept_unlogged, LOGGER_WARN,
					line);
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		s->accept_armed = false;
		if (s->stopping)
			return;
		if (cqe->res < 0)
			loop_timer_arm(loop, &s->accept_retry, SERVER_ACCEPT_RETRY_MS);
		else
			server_arm_accept(s);
	}
}

/* The connection a completion names; its generation must match (a completion can only
 * name a live connection: entries are reused after their last completion). */
static struct conn *server_conn_of(struct server *s, uint64_t udata)
{
	uint64_t id = loop_udata_value(udata);
	uint32_t index = conn_id_index(id);
	ASSERT(index < s->conn_count);
	struct conn *c = &s->conns[index];
	ASSERT(c->state != CONN_FREE && (c->generation & 0xffffffffu) == conn_id_generation(id));
	return c;
}

static void server_on_recv(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct server *s = ctx;
	struct conn *c = server_conn_of(s, cqe->user_data);
	conn_on_recv(c, cqe);
	DASSERT(c->state == CONN_FREE || conn_sanity(c));
}

static void server_on_send(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct server *s = ctx;
	struct conn *c = server_conn_of(s, cqe->user_data);
	conn_on_send(c, cqe);
	DASSERT(c->state == CONN_FREE || conn_sanity(c));
}

/* Cancels answer with how many operations they found (or -ENOENT, -EALREADY): nothing to
 * do, the cancelled operations' own completions tell. */
static void server_on_cancel(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
}

/* After the layer stopped: completions that still arrive while the layers below turn
 * the loop find no server; an accepted socket is closed. */
static void server_on_late(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	if (loop_udata_kind(cqe->user_data) == LOOP_KIND_NET_ACCEPT && cqe->res >= 0)
		close(cqe->res);
}

/* ---- start and stop ---- */

/* Binds and listens on HOST:PORT (an IPv4 or IPv6 literal). Returns the socket or
 * -errno with one line in ERR. */
static int server_listen(const char *host, uint16_t port, char *err, size_t err_len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	char literal[INET6_ADDRSTRLEN + 2];
	size_t hl = strlen(host);
	if (hl >= sizeof(literal))
		hl = sizeof(literal) - 1; /* too long for a literal: inet_pton says no */
	memcpy(literal, host, hl);
	literal[hl] = '\0';
	if (hl >= 2 && literal[0] == '[' && literal[hl - 1] == ']') { /* "[::1]" */
		memmove(literal, literal + 1, hl - 2);
		literal[hl - 2] = '\0';
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, literal, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		sl = sizeof(*in);
	} else if (inet_pton(AF_INET6, literal, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		sl = sizeof(*in6);
	} else {
		snprintf(err, err_len,
			 "listen-host '%s' is not an IPv4 or IPv6 address literal; fix: give "
			 "--listen-host an address such as 0.0.0.0, 127.0.0.1 or ::",
			 host);
		return -EINVAL;
	}
	const char *fmt = ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u";
	char where[INET6_ADDRSTRLEN + 16];
	snprintf(where, sizeof(where), fmt, literal, (unsigned)port);

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int ret = -errno;
		snprintf(err, err_len, "cannot create a socket for %s: %s", where, strerror(-ret));
		return ret;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		int ret = -errno;
		snprintf(err, err_len, "cannot listen on %s: %s%s", where, strerror(-ret),
			 ret == -EADDRINUSE ? " (another process has the port; fix: stop it or "
					      "choose another --port)"
			 : ret == -EADDRNOTAVAIL ? " (no interface has this address; fix: "
						   "choose another --listen-host)"
						 : "");
		close(fd);
		return ret;
	}
	if (listen(fd, LIMITS_NET_LISTEN_BACKLOG) != 0) {
		int ret = -errno;
		snprintf(err, err_len, "cannot listen on %s: %s", where, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

/* A stable cluster id without storing one: FNV-1a 64 of the data directory's real path,
 * so a broker keeps its id across restarts and two brokers on one machine differ. */
static void server_cluster_id(const char *data_dir, char *out, size_t len)
{
	char real[PATH_MAX];
	const char *path = realpath(data_dir, real) ? real : data_dir;
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	snprintf(out, len, "sluice-%016llx", (unsigned long long)h);
}

static void server_free(struct server *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	server_buffers_teardown(s);
	free(s->conns);
	free(s->reqs);
	free(s);
}

static int server_start(struct shard *shard, void *ctx, char *err, size_t err_len)
{
	const struct config *cfg = shard->set->cfg;
	int index = server_layer_index(shard);
	ASSERT(index >= 0);
	struct server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, err_len, "cannot allocate the net layer");
		return -ENOMEM;
	}
	s->shard = shard;
	s->loop = &shard->loop;
	s->cfg = cfg;
	s->topics = broker_topics(shard);
	s->listen_fd = -1;
	s->free_head = s->wait_head = s->wait_tail = CONN_NONE;
	s->assembly_budget = LIMITS_NET_ASSEMBLY_BYTES;
	s->port = (uint16_t)(cfg->port + shard->id);
	loop_timer_init(&s->accept_retry, server_accept_retry, s);

	if (strlen(cfg->advertised_host) >= sizeof(s->host)) {
		snprintf(err, err_len, "advertised-host is longer than %zu bytes",
			 sizeof(s->host) - 1);
		free(s);
		return -EINVAL;
	}
	if (cfg->advertised_host[0]) {
		memcpy(s->host, cfg->advertised_host, strlen(cfg->advertised_host) + 1);
	} else if (gethostname(s->host, sizeof(s->host) - 1) != 0 || !s->host[0]) {
		snprintf(s->host, sizeof(s->host), "localhost");
	}
	server_cluster_id(cfg->data_dir, s->cluster_id, sizeof(s->cluster_id));

	int ret = server_listen(cfg->listen_host, s->port, err, err_len);
	if (ret < 0)
		goto out_free;
	s->listen_fd = ret;

	s->conn_count = cfg->max_connections;
	s->conns = calloc(s->conn_count, sizeof(*s->conns));
	s->reqs = calloc((size_t)s->conn_count * LIMITS_CONN_INFLIGHT_MAX, sizeof(*s->reqs));
	if (!s->conns || !s->reqs) {
		snprintf(err, err_len,
			 "cannot allocate a table of %u connections; fix: lower --max-connections",
			 s->conn_count);
		ret = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = s->conn_count; i-- > 0;) {
		struct conn *c = &s->conns[i];
		c->server = s;
		c->index = i;
		c->fd = -1;
		c->reqs = &s->reqs[(size_t)i * LIMITS_CONN_INFLIGHT_MAX];
		c->wait_prev = c->wait_next = CONN_NONE;
		c->free_next = s->free_head;
		s->free_head = i;
	}
	ret = server_buffers_setup(s, err, err_len);
	if (ret < 0)
		goto out_free;
	ret = loop_add_hook(s->loop, server_hook, s);
	if (ret < 0) {
		snprintf(err, err_len, "no free hook in the shard's loop");
		goto out_free;
	}
	loop_on(s->loop, LOOP_KIND_NET_ACCEPT, server_on_accept, s);
	loop_on(s->loop, LOOP_KIND_NET_RECV, server_on_recv, s);
	loop_on(s->loop, LOOP_KIND_NET_SEND, server_on_send, s);
	loop_on(s->loop, LOOP_KIND_NET_CANCEL, server_on_cancel, s);
	server_arm_accept(s); /* submitted with the loop's first turn */
	shard->layer_state[index] = s;
	/* Peers forward reads of this shard's partitions from their first request on. */
	if (s->topics) {
		api_fetch_shard_init(shard);
		api_list_offsets_shard_init(shard);
		api_forward_shard_init(s);
	}
	LOG_INFO("net: listening on %s port %u, %u connection slots, %u receive buffers of %u KiB, "
		 "advertised as %s:%u%s",
		 cfg->listen_host, (unsigned)s->port, s->conn_count, s->buf_count,
		 s->buf_bytes / 1024, s->host, (unsigned)s->port,
		 s->topics ? "" : " (no broker layer: no topics)");
	return 0;

out_free:
	server_free(s);
	return ret;
}

/* Turns the loop until every connection and the accept have no operation left in the
 * kernel, for at most SERVER_STOP_DRAIN_MS. */
static bool server_drained(const struct server *s)
{
	if (s->accept_armed)
		return false;
	for (uint32_t i = 0; i < s->conn_count; i++) {
		const struct conn *c = &s->conns[i];
		if (c->state != CONN_FREE && (c->recv_armed || c->send_inflight))
			return false;
	}
	return true;
}

static void server_drain_timeout(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	*(bool *)ctx = true;
}

static void server_log_stats(const struct server *s)
{
	const struct server_stats *st = &s->stats;
	char by_api[512] = "";
	size_t at = 0;
	for (int k = 0; k < SERVER_API_KEYS && at < sizeof(by_api); k++)
		if (st->requests_by_api[k])
			at += (size_t)snprintf(by_api + at, sizeof(by_api) - at, " %s=%llu",
					       kafka_api_name((int16_t)k),
					       (unsigned long long)st->requests_by_api[k]);
	LOG_INFO("net: stats: accepted=%llu refused=%llu closed=%llu open_max=%u requests=%llu "
		 "bad_frames=%llu oversized_frames=%llu truncated_frames=%llu unknown_api_keys=%llu "
		 "unsupported_versions=%llu unimplemented=%llu bad_requests=%llu bytes_in=%llu "
		 "bytes_out=%llu sends=%llu sends_short=%llu recv_no_buffers=%llu "
		 "paused_inflight=%llu paused_budget=%llu assembly_bytes_max=%llu "
		 "forwarded_requests=%llu served_forwarded=%llu;%s",
		 (unsigned long long)st->conns_accepted, (unsigned long long)st->conns_refused,
		 (unsigned long long)st->conns_closed, st->conns_open_max,
		 (unsigned long long)st->requests, (unsigned long long)st->bad_frames,
		 (unsigned long long)st->oversized_frames, (unsigned long long)st->truncated_frames,
		 (unsigned long long)st->unknown_api_keys,
		 (unsigned long long)st->unsupported_versions,
		 (unsigned long long)st->unimplemented, (unsigned long long)st->bad_requests,
		 (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
		 (unsigned long long)st->sends, (unsigned long long)st->sends_short,
		 (unsigned long long)st->recv_no_buffers, (unsigned long long)st->paused_inflight,
		 (unsigned long long)st->paused_budget, (unsigned long long)st->assembly_bytes_max,
		 (unsigned long long)st->forwarded_requests,
		 (unsigned long long)st->served_forwarded, by_api[0] ? by_api : " no requests");
}

static void server_stop(struct shard *shard, void *ctx)
{
	int index = server_layer_index(shard);
	ASSERT(index >= 0);
	struct server *s = shard->layer_state[index];
	if (!s)
		return;
	s->stopping = true;
	/* No topic answer may reach a request from here on: those still deferred are
	 * abandoned below, and their contexts freed. */
	if (s->topics)
		topics_quiesce(s->topics);
	loop_timer_disarm(s->loop, &s->accept_retry);
	if (s->accept_armed) {
		struct io_uring_sqe *sqe = loop_get_sqe(s->loop);
		io_uring_prep_cancel_fd(sqe, s->listen_fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, loop_udata(LOOP_KIND_NET_CANCEL, 0));
	}
	for (uint32_t i = 0; i < s->conn_count; i++)
		if (s->conns[i].state != CONN_FREE)
			conn_abandon(&s->conns[i]);
	api_forward_abandon_all(s);

	bool timed_out = false;
	struct loop_timer deadline;
	loop_timer_init(&deadline, server_drain_timeout, &timed_out);
	loop_timer_arm(s->loop, &deadline, SERVER_STOP_DRAIN_MS);
	while (!server_drained(s) && !timed_out) {
		int ret = loop_run_once(s->loop, true);
		if (ret < 0)
			break;
	}
	loop_timer_disarm(s->loop, &deadline);
	if (!server_drained(s))
		LOG_WARN("net: operations still in the kernel after %u ms; leaving them",
			 SERVER_STOP_DRAIN_MS);

	loop_remove_hook(s->loop, server_hook, s);
	for (enum loop_kind k = LOOP_KIND_NET_ACCEPT; k <= LOOP_KIND_NET_CANCEL; k++)
		loop_on(s->loop, k, server_on_late, NULL);
	server_log_stats(s);
	shard->layer_state[index] = NULL;
	server_free(s);
}
