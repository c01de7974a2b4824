/*
 * tests/unit/check_conn.c: the connection layer (net/server, net/conn, net/api) on one
 * shard built by hand on the test thread: its own io_uring loop, a small registered
 * pool and the "net" layer started on a free loopback port, with clients on plain
 * sockets and the loop turned between their steps. Checks what a client sees:
 * ApiVersions answered; answers given out of order still leave in request order, and
 * a response's external slices (Fetch's zero-copy path) are sent after its buffer and
 * released exactly once, after the send; a response larger than the socket buffer goes
 * out whole through short sends; a client that leaves with an answer outstanding frees
 * its table entry only once the answer came, and the slices are released; a full table
 * refuses the next connection; frames that do not fit the assembly budget wait for it
 * (the connection stops reading) and are served once it has room; frames of about
 * 1 MiB that span many receive buffers and arrive in odd pieces are assembled byte for
 * byte (the rest of each read straight into the stash) and answered in order with a
 * small frame behind them; a client that closes in the middle of a large frame is
 * counted as a truncated frame and its stash given back; stopping the layer abandons
 * deferred requests through their callback.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/shard.h"
#include "io/loop.h"
#include "io/pool.h"
#include "net/api.h"
#include "net/conn.h"
#include "net/kafka.h"
#include "net/server.h"
#include "unit.h"

#define TEST_POOL_BYTES (8u * 1024 * 1024)

static struct config cfg;
static struct shard_set set;
static struct shard shard;
static struct shard_layer layer;
static struct server *srv;

/* A port nothing listens on right now (bind to 0, read it back, let it go). */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(in);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	close(fd);
	return ntohs(in.sin_port);
}

static void start_layer(uint32_t max_connections)
{
	config_defaults(&cfg);
	cfg.port = free_port();
	cfg.max_connections = max_connections;
	snprintf(cfg.listen_host, sizeof(cfg.listen_host), "127.0.0.1");
	snprintf(cfg.advertised_host, sizeof(cfg.advertised_host), "127.0.0.1");
	memset(&set, 0, sizeof(set));
	memset(&shard, 0, sizeof(shard));
	layer = server_layer();
	set.cfg = &cfg;
	set.count = 1;
	set.shards = &shard;
	set.layers = &layer;
	set.layer_count = 1;
	shard.set = &set;
	char err[256];
	ck_assert_msg(loop_init(&shard.loop, 256, err, sizeof(err)) == 0, "loop: %s", err);
	ck_assert_int_eq(
	    pool_init(&shard.pool, TEST_POOL_BYTES, LIMITS_POOL_CHUNK_BYTES, -1, POOL_MODE_NORMAL),
	    0);
	ck_assert_int_eq(pool_register(&shard.pool, &shard.loop.ring), 0);
	ck_assert_msg(layer.start(&shard, NULL, err, sizeof(err)) == 0, "net start: %s", err);
	srv = server_of(&shard);
	ck_assert_ptr_nonnull(srv);
}

static void setup(void)
{
	start_layer(8);
}

static void teardown(void)
{
	if (server_of(&shard))
		layer.stop(&shard, NULL);
	loop_destroy(&shard.loop);
	pool_destroy(&shard.pool);
}

static uint64_t now_ms(void)
{
	return loop_now_ns() / 1000000u;
}

/* Turns the loop (without blocking) until COND(ARG) holds or 5 s passed. */
static bool pump_until(bool (*cond)(void *), void *arg)
{
	uint64_t deadline = now_ms() + 5000;
	while (!cond(arg)) {
		if (now_ms() > deadline)
			return false;
		ck_assert_int_ge(loop_run_once(&shard.loop, false), 0);
		usleep(200);
	}
	return true;
}

static void pump(unsigned turns)
{
	for (unsigned i = 0; i < turns; i++) {
		ck_assert_int_ge(loop_run_once(&shard.loop, false), 0);
		usleep(200);
	}
}

/* ---- a client ---- */

struct client {
	int fd;
	uint8_t *in; /* bytes received */
	size_t len, cap;
	bool eof; /* the broker closed */
};

static void client_connect(struct client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(cl->fd, 0);
	int one = 1;
	setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in in = {.sin_family = AF_INET,
				 .sin_port = htons(cfg.port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ret = connect(cl->fd, (struct sockaddr *)&in, sizeof(in));
	ck_assert(ret == 0 || errno == EINPROGRESS);
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	free(cl->in);
	cl->in = NULL;
}

/* Sends all LEN bytes, turning the loop while the socket is full. */
static void client_send(struct client *cl, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t deadline = now_ms() + 5000;
	while (len > 0) {
		ssize_t n = send(cl->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN || errno == ENOTCONN), "send: %s",
			      strerror(errno));
		ck_assert(now_ms() < deadline);
		pump(1);
	}
}

/* Reads what has arrived. */
static void client_poll(struct client *cl)
{
	for (;;) {
		if (cl->cap - cl->len < 65536) {
			cl->cap = cl->cap ? 2 * cl->cap : 131072;
			cl->in = realloc(cl->in, cl->cap);
			ck_assert_ptr_nonnull(cl->in);
		}
		ssize_t n = recv(cl->fd, cl->in + cl->len, cl->cap - cl->len, 0);
		if (n > 0) {
			cl->len += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			cl->eof = true;
		return;
	}
}

struct want {
	struct client *cl;
	size_t bytes;
};

static bool client_has(void *arg)
{
	struct want *w = arg;
	client_poll(w->cl);
	return w->cl->len >= w->bytes || w->cl->eof;
}

static bool client_closed(void *arg)
{
	struct client *cl = arg;
	client_poll(cl);
	return cl->eof;
}

/* Turns the loop until CL has received BYTES bytes in all. */
static void client_wait(struct client *cl, size_t bytes)
{
	struct want w = {cl, bytes};
	ck_assert_msg(
	    pump_until(client_has, &w), "got %zu of %zu bytes (sends %llu, short %llu, out %llu)",
	    cl->len, bytes, (unsigned long long)srv->stats.sends,
	    (unsigned long long)srv->stats.sends_short, (unsigned long long)srv->stats.bytes_out);
	ck_assert_uint_ge(cl->len, bytes);
}

/* An ApiVersions request of VERSION with CORRELATION_ID and BODY_BYTES zeros after the
 * header (ApiVersions v0-2 reads no body) into BUF; returns its size. */
static size_t api_versions_request(uint8_t *buf, int16_t version, int32_t corr, size_t body_bytes)
{
	uint32_t size = 10 + (uint32_t)body_bytes;
	uint8_t head[14] = {size >> 24,
			    size >> 16,
			    size >> 8,
			    size,
			    0,
			    KAFKA_API_API_VERSIONS,
			    (uint8_t)(version >> 8),
			    (uint8_t)version,
			    (uint8_t)(corr >> 24),
			    (uint8_t)(corr >> 16),
			    (uint8_t)(corr >> 8),
			    (uint8_t)corr,
			    0xff,
			    0xff};
	memcpy(buf, head, sizeof(head));
	memset(buf + sizeof(head), 0, body_bytes);
	return sizeof(head) + body_bytes;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The table entry of the only open connection, once it exists. */
static bool one_open(void *arg)
{
	return srv->stats.conns_open == 1 && srv->stats.conns_accepted >= 1;
}

static struct conn *the_conn(void)
{
	ck_assert(pump_until(one_open, NULL));
	for (uint32_t i = 0; i < srv->conn_count; i++)
		if (srv->conns[i].state == CONN_OPEN)
			return &srv->conns[i];
	ck_abort_msg("no open connection");
	return NULL;
}

/* Makes N slots of C WAITING, as if N requests had been dispatched (white box: the
 * tests answer them by hand, the way a deferred handler would). */
static void take_slots(struct conn *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		c->slots[(c->head + c->count) % LIMITS_CONN_INFLIGHT_MAX].state = CONN_SLOT_WAITING;
		c->count++;
		c->waiting++;
	}
}

static int releases;
static void count_release(void *ctx)
{
	releases++;
	if (ctx)
		free(ctx);
}

static uint8_t *response_buf(uint32_t size_prefix, uint8_t fill, size_t len)
{
	uint8_t *b = malloc(len);
	ck_assert_ptr_nonnull(b);
	memset(b, fill, len);
	b[0] = size_prefix >> 24;
	b[1] = size_prefix >> 16;
	b[2] = size_prefix >> 8;
	b[3] = size_prefix;
	return b;
}

/* ---- tests ---- */

START_TEST(test_api_versions_round_trip)
{
	struct client cl;
	client_connect(&cl);
	uint8_t req[64];
	client_send(&cl, req, api_versions_request(req, 2, 42, 0));
	client_wait(&cl, 4);
	uint32_t size = be32(cl.in);
	size_t listed = 0; /* ApiVersions lists the APIs that have a handler */
	for (size_t i = 0; i < kafka_api_range_count(); i++)
		listed += api_implemented(kafka_api_range_at(i)->api_key);
	ck_assert_uint_ge(listed, 10);
	ck_assert_uint_eq(size, 4 + 2 + 4 + listed * 6 + 4);
	client_wait(&cl, 4 + size);
	ck_assert_uint_eq(be32(cl.in + 4), 42);			      /* correlation id */
	ck_assert_uint_eq(cl.in[8] << 8 | cl.in[9], 0);		      /* error */
	ck_assert_uint_eq(be32(cl.in + 10), listed); /* entries */
	ck_assert_uint_eq(srv->stats.requests_by_api[KAFKA_API_API_VERSIONS], 1);
	client_close(&cl);
}
END_TEST

START_TEST(test_answers_leave_in_request_order_with_slices)
{
	struct client cl;
	client_connect(&cl);
	struct conn *c = the_conn();
	take_slots(c, 2);
	uint32_t first = c->head, second = (c->head + 1) % LIMITS_CONN_INFLIGHT_MAX;

	/* The second request is answered first: nothing may leave yet. */
	struct conn_response late = {.buf = response_buf(8, 'B', 12), .len = 12};
	conn_respond(c, second, &late);
	pump(20);
	client_poll(&cl);
	ck_assert_uint_eq(cl.len, 0);

	/* The first: 16 bytes of buffer, then two slices sent straight from where they lie. */
	static uint8_t slice_a[1000], slice_b[3000];
	memset(slice_a, 'a', sizeof(slice_a));
	memset(slice_b, 'b', sizeof(slice_b));
	static struct iovec ext[2] = {{slice_a, sizeof(slice_a)}, {slice_b, sizeof(slice_b)}};
	releases = 0;
	struct conn_response early = {.buf = response_buf(12 + 4000, 'A', 16),
				      .len = 16,
				      .ext = ext,
				      .ext_count = 2,
				      .release = count_release};
	conn_respond(c, first, &early);
	client_wait(&cl, 16 + 4000 + 12);
	ck_assert_uint_eq(cl.len, 16 + 4000 + 12);
	ck_assert_uint_eq(be32(cl.in), 4012);
	for (size_t i = 4; i < 16; i++)
		ck_assert_uint_eq(cl.in[i], 'A');
	for (size_t i = 16; i < 1016; i++)
		ck_assert_uint_eq(cl.in[i], 'a');
	for (size_t i = 1016; i < 4016; i++)
		ck_assert_uint_eq(cl.in[i], 'b');
	ck_assert_uint_eq(be32(cl.in + 4016), 8);
	ck_assert_uint_eq(cl.in[4020], 'B');
	pump(5);
	ck_assert_int_eq(releases, 1);
	ck_assert_uint_eq(c->count, 0);
	client_close(&cl);
}
END_TEST

START_TEST(test_large_response_goes_out_through_short_sends)
{
	struct client cl;
	client_connect(&cl);
	/* A small send buffer on the broker's side makes every send short. (Not a small
	 * receive buffer on the client's: on loopback's 64 KiB MSS it would leave TCP
	 * probing a zero window for seconds.) */
	int small = 4096;
	struct conn *c = the_conn();
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	take_slots(c, 1);
	size_t big = 8u << 20;
	uint8_t *slice = malloc(big);
	ck_assert_ptr_nonnull(slice);
	for (size_t i = 0; i < big; i++)
		slice[i] = (uint8_t)(i * 7 + 1);
	static struct iovec ext[1];
	ext[0] = (struct iovec){slice, big};
	releases = 0;
	struct conn_response resp = {.buf = response_buf(4 + (uint32_t)big, 'H', 8),
				     .len = 8,
				     .ext = ext,
				     .ext_count = 1,
				     .release = count_release,
				     .release_ctx = slice};
	conn_respond(c, c->head, &resp);
	client_wait(&cl, 8 + big);
	ck_assert_uint_eq(cl.len, 8 + big);
	for (size_t i = 0; i < big; i++)
		if (cl.in[8 + i] != (uint8_t)(i * 7 + 1))
			ck_abort_msg("byte %zu differs", i);
	pump(5);
	ck_assert_int_eq(releases, 1); /* and it freed the slice */
	ck_assert_uint_gt(srv->stats.sends_short, 0);
	client_close(&cl);
}
END_TEST

static bool table_empty(void *arg)
{
	return srv->stats.conns_open == 0;
}

START_TEST(test_client_gone_with_an_answer_outstanding)
{
	struct client cl;
	client_connect(&cl);
	struct conn *c = the_conn();
	uint32_t gen = c->generation;
	take_slots(c, 1);
	client_close(&cl);
	pump(50);
	/* Closed for the client, but the deferred answer still refers to the entry. */
	ck_assert_int_eq(c->state, CONN_CLOSING);
	ck_assert_uint_eq(srv->stats.conns_open, 1);
	static uint8_t slice[100];
	static struct iovec ext[1] = {{slice, sizeof(slice)}};
	releases = 0;
	struct conn_response resp = {.buf = response_buf(104, 'x', 8),
				     .len = 8,
				     .ext = ext,
				     .ext_count = 1,
				     .release = count_release};
	conn_respond(c, c->head, &resp);
	ck_assert(pump_until(table_empty, NULL));
	ck_assert_int_eq(releases, 1);
	ck_assert_int_eq(c->state, CONN_FREE);
	ck_assert_uint_eq(c->generation, gen + 1);
	ck_assert_uint_eq(srv->stats.conns_closed, 1);
}
END_TEST

START_TEST(test_full_table_refuses)
{
	layer.stop(&shard, NULL);
	loop_destroy(&shard.loop);
	pool_destroy(&shard.pool);
	start_layer(2);
	struct client cl[3];
	uint8_t req[64];
	size_t n = api_versions_request(req, 0, 1, 0);
	for (int i = 0; i < 2; i++) {
		client_connect(&cl[i]);
		client_send(&cl[i], req, n);
		client_wait(&cl[i], 4);
	}
	client_connect(&cl[2]);
	ck_assert(pump_until(client_closed, &cl[2]));
	ck_assert_uint_eq(srv->stats.conns_refused, 1);
	ck_assert_uint_eq(srv->stats.conns_accepted, 2);
	/* The two still work. */
	for (int i = 0; i < 2; i++) {
		size_t had = cl[i].len;
		client_send(&cl[i], req, n);
		client_wait(&cl[i], had + 4);
		client_close(&cl[i]);
	}
	client_close(&cl[2]);
}
END_TEST

START_TEST(test_frames_wait_for_the_assembly_budget)
{
	/* Two requests of 600 KiB each against a budget of 1 MiB: the second connection's
	 * frame does not fit while the first one's is held, so it stops reading; once the
	 * first is answered, the second gets its room and is answered too. */
	srv->assembly_budget = 1024 * 1024;
	size_t body = 600 * 1024;
	uint8_t *req = malloc(body + 64);
	ck_assert_ptr_nonnull(req);
	struct client a, b;
	client_connect(&a);
	client_connect(&b);
	size_t n = api_versions_request(req, 1, 7, body);
	/* Half of each first, so both frames are being assembled at once. */
	client_send(&a, req, n / 2);
	pump(20);
	client_send(&b, req, n / 2);
	pump(20);
	ck_assert_uint_eq(srv->stats.paused_budget, 1);
	ck_assert_uint_le(srv->stats.assembly_bytes, srv->assembly_budget + 2 * 65536);
	client_send(&a, req + n / 2, n - n / 2);
	client_send(&b, req + n / 2, n - n / 2);
	client_wait(&a, 4);
	client_wait(&b, 4);
	client_wait(&a, 4 + be32(a.in));
	client_wait(&b, 4 + be32(b.in));
	ck_assert_uint_eq(be32(a.in + 4), 7);
	ck_assert_uint_eq(be32(b.in + 4), 7);
	ck_assert_uint_eq(srv->stats.requests, 2);
	pump(5);
	ck_assert_uint_eq(srv->stats.assembly_bytes, 0);
	client_close(&a);
	client_close(&b);
	free(req);
}
END_TEST

/* A large ApiVersions v1 frame into a new buffer (*LEN: its bytes): BODY_BYTES of a
 * pattern that depends on SEED after the header, which the broker does not read. */
static uint8_t *large_request(int32_t corr, size_t body_bytes, unsigned seed, size_t *len)
{
	uint8_t *req = malloc(body_bytes + 64);
	ck_assert_ptr_nonnull(req);
	*len = api_versions_request(req, 1, corr, body_bytes);
	for (size_t i = 14; i < *len; i++)
		req[i] = (uint8_t)(i * seed + (i >> 16) + 7);
	return req;
}

struct stash_want {
	struct conn *c;
	size_t bytes;
};

/* The connection paused for slots with at least BYTES in its stash (a whole frame it
 * may not dispatch yet). */
static bool stash_holds(void *arg)
{
	struct stash_want *w = arg;
	return (w->c->pause & CONN_PAUSE_INFLIGHT) && w->c->rx_end - w->c->rx_start >= w->bytes;
}

/* Sends the LEN bytes at BUF in pieces of the sizes in PIECES (cycled), turning the loop
 * a little after each, so the broker sees them in as many reads. */
static void send_in_pieces(struct client *cl, const uint8_t *buf, size_t len,
			   const size_t *pieces, size_t piece_count)
{
	for (size_t at = 0, i = 0; at < len; i++) {
		size_t n = pieces[i % piece_count];
		if (n > len - at)
			n = len - at;
		client_send(cl, buf + at, n);
		at += n;
		pump(2);
	}
}

/* Answers the oldest slot of C still WAITING (one that take_slots made: ApiVersions
 * answers at once) with no response. */
static void free_one_slot(struct conn *c)
{
	for (uint32_t i = 0; i < c->count; i++) {
		uint32_t slot = (c->head + i) % LIMITS_CONN_INFLIGHT_MAX;
		if (c->slots[slot].state == CONN_SLOT_WAITING) {
			conn_respond_none(c, slot);
			return;
		}
	}
	ck_abort_msg("no slot to free");
}

START_TEST(test_large_frames_in_odd_pieces_are_byte_identical)
{
	/* Two frames of about 1 MiB (16 and more receive buffers each) and a small one. Every
	 * slot is taken first, so that each large frame, once whole, stays in the stash
	 * where the test compares it with what was sent; freeing a slot lets it go. */
	size_t na, nb;
	uint8_t *a = large_request(1, 1024 * 1024 + 12345, 131, &na);
	uint8_t *b = large_request(2, 1024 * 1024 - 777, 89, &nb);
	uint8_t small[64];
	size_t nc = api_versions_request(small, 1, 3, 0);
	struct client cl;
	client_connect(&cl);
	struct conn *c = the_conn();
	take_slots(c, LIMITS_CONN_INFLIGHT_MAX);
	static const size_t odd[] = {1, 2, 1, 5, 70001, 3, 131075, 1, 65536, 99991, 4093, 200003};
	send_in_pieces(&cl, a, na, odd, sizeof(odd) / sizeof(odd[0]));
	struct stash_want wa = {c, na};
	ck_assert_msg(pump_until(stash_holds, &wa), "stash holds %zu of %zu bytes",
		      c->rx_end - c->rx_start, na);
	ck_assert_uint_eq(c->rx_end - c->rx_start, na);
	ck_assert_msg(memcmp(c->rx_buf + c->rx_start, a, na) == 0, "frame A differs");
	ck_assert(c->recv_large); /* its rest was read directly */
	ck_assert_uint_le(c->rx_cap, na + 2 * 65536);

	/* B arrives whole behind A, then the small frame C: the size prefix alone, B's rest
	 * directly, and C through the multishot recv again. */
	static const size_t odd_b[] = {3, 1, 262147, 7};
	send_in_pieces(&cl, b, nb, odd_b, sizeof(odd_b) / sizeof(odd_b[0]));
	client_send(&cl, small, nc);
	free_one_slot(c); /* A is dispatched; B fills the slots again */
	struct stash_want wb = {c, nb};
	ck_assert_msg(pump_until(stash_holds, &wb), "stash holds %zu of %zu bytes",
		      c->rx_end - c->rx_start, nb);
	ck_assert_msg(memcmp(c->rx_buf + c->rx_start, b, nb) == 0, "frame B differs");
	ck_assert_uint_eq(srv->stats.requests, 1);
	while (c->count > 0 && c->waiting > 0)
		free_one_slot(c);
	client_wait(&cl, 4);
	size_t at = 0;
	for (int32_t corr = 1; corr <= 3; corr++) {
		client_wait(&cl, at + 4);
		size_t size = be32(cl.in + at);
		client_wait(&cl, at + 4 + size);
		ck_assert_uint_eq(be32(cl.in + at + 4), (uint32_t)corr);
		ck_assert_uint_eq(cl.in[at + 8] << 8 | cl.in[at + 9], 0); /* no error */
		at += 4 + size;
	}
	ck_assert_uint_eq(srv->stats.requests, 3);
	ck_assert_uint_eq(srv->stats.bytes_in, na + nb + nc);
	ck_assert(!c->recv_large); /* C turned the multishot recv back on */
	pump(5);
	ck_assert_uint_eq(srv->stats.assembly_bytes, 0);
	ck_assert_uint_eq(srv->stats.truncated_frames, 0);
	client_close(&cl);
	free(a);
	free(b);
}
END_TEST

static bool reading_directly(void *arg)
{
	struct conn *c = arg;
	return c->recv_direct;
}

START_TEST(test_close_in_the_middle_of_a_large_frame)
{
	size_t n;
	uint8_t *req = large_request(9, 1024 * 1024, 7, &n);
	struct client cl;
	client_connect(&cl);
	struct conn *c = the_conn();
	client_send(&cl, req, 300 * 1024 + 17);
	ck_assert(pump_until(reading_directly, c)); /* the rest is awaited in the stash */
	ck_assert_uint_ge(srv->stats.assembly_bytes, n);
	client_close(&cl);
	ck_assert(pump_until(table_empty, NULL));
	ck_assert_uint_eq(srv->stats.truncated_frames, 1);
	ck_assert_uint_eq(srv->stats.requests, 0);
	ck_assert_uint_eq(srv->stats.assembly_bytes, 0);
	ck_assert_uint_eq(srv->stats.conns_closed, 1);
	ck_assert_uint_eq(srv->stats.bytes_in, 300 * 1024 + 17);

	/* A new connection on the same entry works, large frames included. */
	client_connect(&cl);
	c = the_conn();
	client_send(&cl, req, n);
	client_wait(&cl, 4);
	client_wait(&cl, 4 + be32(cl.in));
	ck_assert_uint_eq(be32(cl.in + 4), 9);
	client_close(&cl);
	free(req);
}
END_TEST

static int abandoned;
static void count_abandon(struct api_request *req)
{
	abandoned++;
	free(req->ctx);
}

START_TEST(test_stop_abandons_deferred_requests)
{
	struct client cl;
	client_connect(&cl);
	struct conn *c = the_conn();
	take_slots(c, 1);
	struct api_request *req = &c->reqs[c->head];
	req->ctx = malloc(32);
	req->abandon = count_abandon;
	abandoned = 0;
	layer.stop(&shard, NULL);
	ck_assert_int_eq(abandoned, 1);
	ck_assert_ptr_null(server_of(&shard));
	ck_assert(pump_until(client_closed, &cl));
	client_close(&cl);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
	    {"api_versions_round_trip", test_api_versions_round_trip},
	    {"answers_leave_in_request_order_with_slices",
	     test_answers_leave_in_request_order_with_slices},
	    {"large_response_goes_out_through_short_sends",
	     test_large_response_goes_out_through_short_sends},
	    {"client_gone_with_an_answer_outstanding", test_client_gone_with_an_answer_outstanding},
	    {"full_table_refuses", test_full_table_refuses},
	    {"frames_wait_for_the_assembly_budget", test_frames_wait_for_the_assembly_budget},
	    {"large_frames_in_odd_pieces_are_byte_identical",
	     test_large_frames_in_odd_pieces_are_byte_identical},
	    {"close_in_the_middle_of_a_large_frame", test_close_in_the_middle_of_a_large_frame},
	    {"stop_abandons_deferred_requests", test_stop_abandons_deferred_requests},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].test);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return unit_run(conn_suite());
}
