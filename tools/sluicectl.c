/*
 * tools/sluicectl.c: the admin command line of sluice (issue 6): lists, creates,
 * describes and deletes topics, and lists, describes and deletes consumer groups, by
 * speaking the Kafka protocol to the brokers of --brokers (any Kafka 2.3-compatible
 * broker, not only sluice). It is a plain blocking client: one TCP connection per
 * broker it needs, one request at a time, every connect, send and receive bounded by
 * --timeout-ms. It bootstraps from the first broker of --brokers that answers
 * ApiVersions, takes the broker list and partition leaders from Metadata, sends each
 * ListOffsets to the partition's leader, ListGroups to every broker, and the group
 * requests (DescribeGroups, OffsetFetch, DeleteGroups) to the group's coordinator found
 * with FindCoordinator, retrying COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE
 * and NOT_COORDINATOR until the timeout. `groups describe` decodes each member's
 * assignment (Kafka's ConsumerProtocol) and prints, per partition the group has
 * committed or been assigned, the committed offset, the end offset (ListOffsets latest),
 * the lag (end - committed) and the owning member. Output is aligned tables, or one
 * JSON document with --json. It reads only non-flexible API versions (no tagged
 * fields), through net/wire's bounds-checked reader: a malformed answer is an error,
 * never a crash. It changes nothing but what the command asks (create, delete).
 *
 * Exit status: 0 success; 1 an error a broker answered (its Kafka error name printed),
 * a broker that cannot be reached or timed out, or a malformed answer; 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/kafka.h"
#include "net/wire.h"

/* Exit statuses. */
#define CTL_EXIT_OK    0 /* everything asked was done */
#define CTL_EXIT_ERROR 1 /* a Kafka error, an unreachable broker, a malformed answer */
#define CTL_EXIT_USAGE 2 /* bad arguments */

#define CTL_CLIENT_ID		"sluicectl"
#define CTL_BROKERS_DEFAULT	"127.0.0.1:9092"
#define CTL_TIMEOUT_MS_DEFAULT	10000
#define CTL_TIMEOUT_MS_MAX	3600000 /* an hour: longer is a typo */
#define CTL_RETRY_BACKOFF_MS	100	/* between tries of a retriable coordinator error */
#define CTL_REQUEST_BYTES_FIRST 4096u	/* first request buffer; doubled until it fits */
/* Largest request built: a ListOffsets of every partition of a big cluster fits. */
#define CTL_REQUEST_BYTES_MAX (64u << 20)
/* Largest answer read: Kafka's socket.request.max.bytes default; nothing sluicectl asks
 * for comes near it, and a bigger size prefix means a broken stream. */
#define CTL_RESPONSE_BYTES_MAX (100u << 20)
#define CTL_CONNS_MAX	       1024u /* brokers connected to in one run (sluice: a shard each) */
#define CTL_API_KEYS	       64    /* API keys remembered from ApiVersions (Kafka 2.3: 0-47) */
#define CTL_HOST_BYTES	       256u  /* host name plus NUL (DNS names are at most 253) */
#define CTL_TOPIC_NAME_MAX     249u  /* Kafka's topic name limit (Topic.MAX_NAME_LENGTH) */
#define CTL_GROUP_ID_MAX       INT16_MAX /* a STRING's length */
#define CTL_CONFIG_BYTES_MAX   INT16_MAX /* a config name or value: a STRING */
#define CTL_PARTITIONS_MAX     1000000	 /* --partitions: far above any broker's limit */
#define CTL_JSON_DEPTH_MAX     16	 /* nesting of the JSON documents printed */
#define CTL_ARENA_CHUNK_BYTES  (64u << 10)

/* API versions spoken (all non-flexible; Kafka 2.3 and sluice answer each). */
#define CTL_V_METADATA	       4 /* topics nullable, allow_auto_topic_creation */
#define CTL_V_CREATE_TOPICS    2 /* throttle and per-topic error_message */
#define CTL_V_DELETE_TOPICS    1
#define CTL_V_LIST_OFFSETS     1 /* one offset per partition */
#define CTL_V_FIND_COORDINATOR 1 /* key_type */
#define CTL_V_DESCRIBE_GROUPS  1
#define CTL_V_LIST_GROUPS      1
#define CTL_V_OFFSET_FETCH     3 /* null topics = every committed offset of the group */
#define CTL_V_DELETE_GROUPS    1 /* v0 has the same layout, used when v1 is not there */

#define KAFKA_LATEST_TIMESTAMP	 (-1) /* ListOffsets: the end of the log */
#define KAFKA_EARLIEST_TIMESTAMP (-2) /* ListOffsets: the log start */

/* ---- memory: one arena freed at exit, so every early return is leak-free ---- */

struct arena_chunk {
	struct arena_chunk *next; /* older chunk */
	size_t used;		  /* bytes handed out from data */
	size_t cap;		  /* bytes in data */
	max_align_t data[];	  /* the memory */
};

static struct arena_chunk *arena_head;

static void *arena_alloc(size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (!arena_head || arena_head->cap - arena_head->used < n) {
		size_t cap = n > CTL_ARENA_CHUNK_BYTES ? n : CTL_ARENA_CHUNK_BYTES;
		struct arena_chunk *ch = malloc(sizeof(*ch) + cap);
		if (!ch) {
			fprintf(stderr, "sluicectl: out of memory\n");
			exit(CTL_EXIT_ERROR);
		}
		ch->next = arena_head;
		ch->used = 0;
		ch->cap = cap;
		arena_head = ch;
	}
	void *p = (uint8_t *)arena_head->data + arena_head->used;
	arena_head->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free_all(void)
{
	while (arena_head) {
		struct arena_chunk *next = arena_head->next;
		free(arena_head);
		arena_head = next;
	}
}

/* A NUL-terminated copy of LEN bytes at P (NULL stays NULL). */
static char *arena_strndup(const char *p, size_t len)
{
	if (!p)
		return NULL;
	char *s = arena_alloc(len + 1);
	memcpy(s, p, len);
	return s;
}

static char *arena_str(struct wire_str s)
{
	return arena_strndup(s.ptr, s.len);
}

static char *arena_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *arena_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = arena_alloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* ---- messages ---- */

static void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctl_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sluicectl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int64_t ctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ctl_sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- JSON output: one document on stdout ---- */

struct json {
	int depth;			    /* open objects and arrays */
	bool first[CTL_JSON_DEPTH_MAX + 1]; /* no element written yet at this depth */
};

/* Writes LEN bytes at S as a JSON string. Bytes that are not valid UTF-8 (member ids
 * and client ids are whatever clients sent) become U+FFFD so the document parses. */
static void json_escape(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	putchar('"');
	for (size_t i = 0; i < len;) {
		uint8_t ch = p[i];
		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
			i++;
		} else if (ch < 0x20) {
			printf("\\u%04x", ch);
			i++;
		} else if (ch < 0x80) {
			putchar(ch);
			i++;
		} else {
			size_t need = ch >= 0xf0 && ch <= 0xf4	 ? 4
				      : ch >= 0xe0		 ? 3
				      : ch >= 0xc2 && ch <= 0xdf ? 2
								 : 0;
			bool ok = need && i + need <= len;
			for (size_t k = 1; ok && k < need; k++)
				ok = (p[i + k] & 0xc0) == 0x80;
			if (ok) {
				fwrite(p + i, 1, need, stdout);
				i += need;
			} else {
				fputs("\\ufffd", stdout);
				i++;
			}
		}
	}
	putchar('"');
}

static void json_key(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		putchar(',');
	j->first[j->depth] = false;
	if (key) {
		json_escape(key, strlen(key));
		putchar(':');
	}
}

static void json_open(struct json *j, const char *key, char brace)
{
	json_key(j, key);
	putchar(brace);
	if (j->depth >= CTL_JSON_DEPTH_MAX) {
		/* A sluicectl bug, not an input: the documents have fixed shapes. */
		fprintf(stderr, "sluicectl: JSON nesting over %d\n", CTL_JSON_DEPTH_MAX);
		abort();
	}
	j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct json *j, char brace)
{
	j->depth--;
	putchar(brace);
	if (j->depth == 0)
		putchar('\n');
}

static void json_str(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	if (s)
		json_escape(s, strlen(s));
	else
		fputs("null", stdout);
}

static void json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	printf("%" PRId64, v);
}

static void json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", stdout);
}

static void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", stdout);
}

/* An error code as JSON: null for NONE, else Kafka's name. */
static void json_error(struct json *j, const char *key, int16_t err)
{
	if (err == KERR_NONE)
		json_null(j, key);
	else
		json_str(j, key, kafka_error_name(err));
}

/* ---- aligned tables ---- */

#define TABLE_COLS_MAX 8

struct table {
	int cols;			  /* columns, <= TABLE_COLS_MAX */
	const char *head[TABLE_COLS_MAX]; /* column titles */
	bool right[TABLE_COLS_MAX];	  /* right-aligned (numbers) */
	bool optional[TABLE_COLS_MAX];	  /* left out when every cell of it is empty */
	const char **cells;		  /* rows x cols, arena strings */
	size_t rows;			  /* rows added */
	size_t cap;			  /* rows cells can hold */
};

/* Starts T with the titles in HEADS, a NULL-terminated list; a title starting with '>'
 * is right-aligned, one starting with '?' left out when all its cells are empty (the
 * mark is not printed). */
static void table_init(struct table *t, const char *const *heads)
{
	memset(t, 0, sizeof(*t));
	for (; heads[t->cols]; t->cols++) {
		const char *h = heads[t->cols];
		t->right[t->cols] = h[0] == '>';
		t->optional[t->cols] = h[0] == '?';
		t->head[t->cols] = h + (h[0] == '>' || h[0] == '?');
	}
}

/* Appends one row of t->cols strings (NULL prints as "-"), copied, with control bytes
 * (ids are whatever clients sent) shown as '?' so that they cannot move the cursor. */
static void table_add(struct table *t, ...)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		const char **cells = arena_alloc(cap * (size_t)t->cols * sizeof(*cells));
		if (t->rows)
			memcpy(cells, t->cells, t->rows * (size_t)t->cols * sizeof(*cells));
		t->cells = cells;
		t->cap = cap;
	}
	va_list ap;
	va_start(ap, t);
	for (int c = 0; c < t->cols; c++) {
		const char *s = va_arg(ap, const char *);
		char *cell = arena_strndup(s ? s : "-", strlen(s ? s : "-"));
		for (char *p = cell; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		t->cells[t->rows * (size_t)t->cols + (size_t)c] = cell;
	}
	va_end(ap);
	t->rows++;
}

/* Prints one row: columns WIDTH wide (0: left out), two spaces apart, no trailing
 * blanks. */
static void table_print_row(const struct table *t, const char *const *row, const size_t *width)
{
	int last = -1;
	for (int c = 0; c < t->cols; c++)
		if (width[c] && (*row[c] || t->right[c]))
			last = c;
	bool first = true;
	for (int c = 0; c <= last; c++) {
		if (!width[c])
			continue;
		if (!first)
			fputs("  ", stdout);
		first = false;
		int w = (int)width[c];
		if (t->right[c])
			printf("%*s", w, row[c]);
		else if (c == last)
			fputs(row[c], stdout);
		else
			printf("%-*s", w, row[c]);
	}
	putchar('\n');
}

static void table_print(const struct table *t)
{
	size_t width[TABLE_COLS_MAX];
	for (int c = 0; c < t->cols; c++) {
		size_t widest = 0;
		for (size_t r = 0; r < t->rows; r++) {
			size_t n = strlen(t->cells[r * (size_t)t->cols + (size_t)c]);
			if (n > widest)
				widest = n;
		}
		width[c] = strlen(t->head[c]) > widest ? strlen(t->head[c]) : widest;
		if (t->optional[c] && widest == 0)
			width[c] = 0;
	}
	table_print_row(t, t->head, width);
	for (size_t r = 0; r < t->rows; r++)
		table_print_row(t, t->cells + r * (size_t)t->cols, width);
}

static const char *num(int64_t v)
{
	return arena_printf("%" PRId64, v);
}

/* ---- connections ---- */

struct ctl_conn {
	char host[CTL_HOST_BYTES]; /* as given or as Metadata advertised it */
	int32_t port;
	int fd;			       /* -1 once a call failed (the stream is out of step) */
	int32_t next_correlation_id;   /* of the next request */
	int16_t api_max[CTL_API_KEYS]; /* highest version advertised; -1 not advertised */
};

struct ctl {
	const char *brokers; /* --brokers */
	bool json;	     /* --json */
	int timeout_ms;	     /* --timeout-ms: each connect, call, and retry loop */
	struct ctl_conn *conns[CTL_CONNS_MAX];
	uint32_t conn_count;
	struct ctl_conn *boot; /* the bootstrap broker's connection */
};

/* Waits until FD is ready for EVENTS or DEADLINE_MS passes: 0, -ETIMEDOUT or -errno. */
static int ctl_wait(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - ctl_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0; /* ready, or an error the next call reports */
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* A non-blocking TCP connection to HOST:PORT made before DEADLINE_MS: the fd, or -errno
 * with WHY (WHY_CAP bytes) saying what failed. */
static int ctl_tcp_connect(const char *host, int32_t port, int64_t deadline_ms, char *why,
			   size_t why_cap)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	char service[16];
	snprintf(service, sizeof(service), "%d", (int)port);
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai) {
		snprintf(why, why_cap, "cannot resolve host: %s", gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	int ret = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		int err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			err = errno;
			if (err == EINPROGRESS) {
				int w = ctl_wait(fd, POLLOUT, deadline_ms);
				socklen_t len = sizeof(err);
				if (w < 0)
					err = -w;
				else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
					err = errno;
			}
		}
		if (err == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			ret = fd;
			break;
		}
		ret = -err;
		close(fd);
	}
	freeaddrinfo(res);
	if (ret < 0)
		snprintf(why, why_cap, "%s",
			 ret == -ETIMEDOUT ? "connect timed out" : strerror(-ret));
	return ret;
}

static int ctl_send_all(int fd, const uint8_t *p, size_t n, int64_t deadline_ms)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int ret = ctl_wait(fd, POLLOUT, deadline_ms);
			if (ret)
				return ret;
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int ctl_recv_all(int fd, uint8_t *p, size_t n, int64_t deadline_ms)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int ret = ctl_wait(fd, POLLIN, deadline_ms);
			if (ret)
				return ret;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void ctl_conn_close(struct ctl_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
}

/* Writes a request body into W from ARG. */
typedef void (*ctl_build_fn)(struct wire_writer *w, const void *arg);

/* An answer: the bytes after the correlation id (malloc'd; ctl_answer_free). */
struct ctl_answer {
	uint8_t *body;
	size_t len;
};

static void ctl_answer_free(struct ctl_answer *a)
{
	free(a->body);
	a->body = NULL;
	a->len = 0;
}

/*
 * Sends one request (header v1: KEY, VERSION, a correlation id, client id "sluicectl";
 * body from BUILD(W, ARG)) on CONN and reads its answer into A. Returns 0, or -1 after
 * printing why (connection lost, timeout after --timeout-ms, an answer out of step);
 * the connection is then closed, as its stream can no longer be trusted.
 */
static int ctl_call(struct ctl *c, struct ctl_conn *conn, int16_t key, int16_t version,
		    ctl_build_fn build, const void *arg, struct ctl_answer *a)
{
	const char *api = kafka_api_name(key);
	a->body = NULL;
	a->len = 0;
	if (conn->fd < 0) {
		ctl_err("%s to %s:%d: the connection was lost earlier", api, conn->host,
			conn->port);
		return -1;
	}
	int32_t corr = conn->next_correlation_id++;
	uint8_t *req = NULL;
	struct wire_writer w;
	for (size_t cap = CTL_REQUEST_BYTES_FIRST;; cap *= 2) {
		free(req);
		req = malloc(cap);
		if (!req) {
			ctl_err("out of memory");
			return -1;
		}
		wire_writer_init(&w, req, cap);
		size_t at = wire_writer_reserve_i32(&w);
		wire_write_i16(&w, key);
		wire_write_i16(&w, version);
		wire_write_i32(&w, corr);
		wire_write_string(&w, CTL_CLIENT_ID, strlen(CTL_CLIENT_ID));
		build(&w, arg);
		if (wire_write_response_end(&w, at, 0) == 0)
			break;
		if (cap >= CTL_REQUEST_BYTES_MAX) {
			free(req);
			ctl_err("%s request larger than %u bytes", api, CTL_REQUEST_BYTES_MAX);
			return -1;
		}
	}
	int64_t deadline = ctl_now_ms() + c->timeout_ms;
	int ret = ctl_send_all(conn->fd, req, w.len, deadline);
	free(req);
	uint8_t head[8];
	if (!ret)
		ret = ctl_recv_all(conn->fd, head, sizeof(head), deadline);
	if (ret) {
		ctl_err("%s to %s:%d: %s", api, conn->host, conn->port,
			ret == -ETIMEDOUT
			    ? arena_printf("no answer in %d ms (--timeout-ms)", c->timeout_ms)
			: ret == -ECONNRESET ? "the broker closed the connection"
					     : strerror(-ret));
		ctl_conn_close(conn);
		return -1;
	}
	struct wire_reader r;
	wire_reader_init(&r, head, sizeof(head));
	int32_t size = wire_read_i32(&r);
	int32_t got = wire_read_i32(&r);
	if (size < 4 || (uint32_t)size > CTL_RESPONSE_BYTES_MAX || got != corr) {
		ctl_err("%s to %s:%d: answer out of step (size %d, correlation id %d, sent %d)",
			api, conn->host, conn->port, (int)size, (int)got, (int)corr);
		ctl_conn_close(conn);
		return -1;
	}
	a->len = (size_t)size - 4;
	a->body = malloc(a->len ? a->len : 1);
	if (!a->body) {
		ctl_err("out of memory");
		ctl_conn_close(conn);
		return -1;
	}
	ret = ctl_recv_all(conn->fd, a->body, a->len, deadline);
	if (ret) {
		ctl_err("%s to %s:%d: %s", api, conn->host, conn->port,
			ret == -ETIMEDOUT ? "answer cut short by --timeout-ms" : strerror(-ret));
		ctl_answer_free(a);
		ctl_conn_close(conn);
		return -1;
	}
	return 0;
}

/* A malformed answer: prints it and returns -1. */
static int ctl_malformed(const struct ctl_conn *conn, int16_t key)
{
	ctl_err("malformed %s answer from %s:%d", kafka_api_name(key), conn->host, conn->port);
	return -1;
}

static void build_empty(struct wire_writer *w, const void *arg)
{
	(void)w;
	(void)arg;
}

/* ApiVersions v0 on a new connection: fills conn->api_max. 0 or -1 (printed). */
static int ctl_api_versions(struct ctl *c, struct ctl_conn *conn)
{
	struct ctl_answer a;
	if (ctl_call(c, conn, KAFKA_API_API_VERSIONS, 0, build_empty, NULL, &a))
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	int16_t err = wire_read_i16(&r);
	int32_t n = wire_read_array_len(&r, 6);
	for (int32_t i = 0; i < n; i++) {
		int16_t key = wire_read_i16(&r);
		(void)wire_read_i16(&r);
		int16_t max = wire_read_i16(&r);
		if (key >= 0 && key < CTL_API_KEYS)
			conn->api_max[key] = max;
	}
	bool ok = wire_reader_ok(&r);
	ctl_answer_free(&a);
	if (!ok)
		return ctl_malformed(conn, KAFKA_API_API_VERSIONS);
	if (err != KERR_NONE) {
		ctl_err("ApiVersions to %s:%d: %s", conn->host, conn->port, kafka_error_name(err));
		return -1;
	}
	return 0;
}

/* The connection to HOST:PORT, opened (with ApiVersions) on first use. NULL after
 * printing why when it cannot be opened; QUIET leaves the printing to the caller (WHY). */
static struct ctl_conn *ctl_conn_get(struct ctl *c, const char *host, int32_t port, bool quiet,
				     char *why, size_t why_cap)
{
	for (uint32_t i = 0; i < c->conn_count; i++)
		if (c->conns[i]->port == port && !strcmp(c->conns[i]->host, host))
			return c->conns[i];
	if (c->conn_count == CTL_CONNS_MAX) {
		ctl_err("more than %u brokers to connect to", CTL_CONNS_MAX);
		return NULL;
	}
	char local_why[256];
	if (!why) {
		why = local_why;
		why_cap = sizeof(local_why);
	}
	int fd = ctl_tcp_connect(host, port, ctl_now_ms() + c->timeout_ms, why, why_cap);
	if (fd < 0) {
		if (!quiet)
			ctl_err("cannot connect to %s:%d: %s", host, port, why);
		return NULL;
	}
	struct ctl_conn *conn = calloc(1, sizeof(*conn));
	if (!conn) {
		close(fd);
		ctl_err("out of memory");
		return NULL;
	}
	snprintf(conn->host, sizeof(conn->host), "%s", host);
	conn->port = port;
	conn->fd = fd;
	conn->next_correlation_id = 1;
	for (int k = 0; k < CTL_API_KEYS; k++)
		conn->api_max[k] = -1;
	c->conns[c->conn_count++] = conn;
	if (ctl_api_versions(c, conn)) {
		snprintf(why, why_cap, "ApiVersions failed");
		return NULL;
	}
	return conn;
}

static void ctl_conns_close(struct ctl *c)
{
	for (uint32_t i = 0; i < c->conn_count; i++) {
		ctl_conn_close(c->conns[i]);
		free(c->conns[i]);
	}
	c->conn_count = 0;
}

/* The version of KEY to send to CONN: WANT, or the highest at or above MIN_SAME_LAYOUT
 * (versions whose layout sluicectl reads the same way) the broker advertises; -1 after
 * printing why when it advertises none of them. */
static int16_t ctl_version(const struct ctl_conn *conn, int16_t key, int16_t want,
			   int16_t min_same_layout)
{
	int16_t max = key < CTL_API_KEYS ? conn->api_max[key] : -1;
	if (max >= want)
		return want;
	if (max >= min_same_layout)
		return max;
	if (max < 0)
		ctl_err("the broker at %s:%d does not answer %s (not in its ApiVersions)",
			conn->host, conn->port, kafka_api_name(key));
	else
		ctl_err("the broker at %s:%d answers %s up to v%d; sluicectl needs v%d", conn->host,
			conn->port, kafka_api_name(key), max, want);
	return -1;
}

/* Splits "host:port" or "[v6]:port" at SPEC into HOST and PORT; false when it is not
 * one. */
static bool ctl_parse_address(const char *spec, char *host, size_t host_cap, int32_t *port)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec)
		return false;
	const char *h = spec;
	size_t hlen = (size_t)(colon - spec);
	if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']')
			return false;
		h++;
		hlen -= 2;
	}
	if (hlen >= host_cap)
		return false;
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int32_t)p;
	return true;
}

/* Checks every address of --brokers; false after printing the bad one. */
static bool ctl_brokers_valid(const char *list)
{
	char *copy = arena_strndup(list, strlen(list));
	char *save = NULL;
	int n = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char host[CTL_HOST_BYTES];
		int32_t port;
		if (!ctl_parse_address(tok, host, sizeof(host), &port)) {
			ctl_err("--brokers: '%s' is not host:port (port 1-65535)", tok);
			return false;
		}
		n++;
	}
	if (n == 0) {
		ctl_err("--brokers: no broker given");
		return false;
	}
	return true;
}

/* Connects to the first broker of --brokers that answers ApiVersions. 0 or -1. */
static int ctl_bootstrap(struct ctl *c)
{
	char *copy = arena_strndup(c->brokers, strlen(c->brokers));
	char *save = NULL;
	char tried[1024] = "";
	size_t used = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char host[CTL_HOST_BYTES], why[256];
		int32_t port;
		if (!ctl_parse_address(tok, host, sizeof(host), &port))
			continue; /* ctl_brokers_valid ran first */
		c->boot = ctl_conn_get(c, host, port, true, why, sizeof(why));
		if (c->boot)
			return 0;
		int n = snprintf(tried + used, sizeof(tried) - used, "%s%s: %s", used ? "; " : "",
				 tok, why);
		if (n > 0 && (size_t)n < sizeof(tried) - used)
			used += (size_t)n;
	}
	ctl_err("no broker of --brokers %s answered (%s)", c->brokers, tried);
	return -1;
}

/* ---- Metadata ---- */

struct md_broker {
	int32_t id;
	char *host;
	int32_t port;
	char *rack;
};

struct md_partition {
	int16_t error;
	int32_t index;
	int32_t leader;
	int32_t *replicas;
	int32_t replica_count;
	int32_t *isr;
	int32_t isr_count;
};

struct md_topic {
	int16_t error;
	char *name;
	bool internal;
	struct md_partition *parts; /* sorted by index */
	int32_t part_count;
};

struct metadata {
	struct md_broker *brokers; /* sorted by id */
	int32_t broker_count;
	int32_t controller;
	struct md_topic *topics; /* sorted by name */
	int32_t topic_count;
};

/* What a Metadata request asks: every topic (ALL), none (COUNT 0), or NAMES. */
struct md_ask {
	bool all;
	const char *const *names;
	int32_t count;
};

static void build_metadata(struct wire_writer *w, const void *arg)
{
	const struct md_ask *ask = arg;
	if (ask->all) {
		wire_write_array_len(w, -1);
	} else {
		wire_write_array_len(w, ask->count);
		for (int32_t i = 0; i < ask->count; i++)
			wire_write_string(w, ask->names[i], strlen(ask->names[i]));
	}
	wire_write_bool(w, false); /* allow_auto_topic_creation: describe creates nothing */
}

static int cmp_broker(const void *a, const void *b)
{
	const struct md_broker *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_topic(const void *a, const void *b)
{
	const struct md_topic *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static int cmp_partition(const void *a, const void *b)
{
	const struct md_partition *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int32_t *read_i32_array(struct wire_reader *r, int32_t *count)
{
	int32_t n = wire_read_array_len(r, 4);
	int32_t *v = arena_alloc((size_t)(n ? n : 1) * sizeof(*v));
	for (int32_t i = 0; i < n; i++)
		v[i] = wire_read_i32(r);
	*count = n;
	return v;
}

/* Metadata v4 from the bootstrap broker. 0 or -1 (printed). */
static int ctl_metadata(struct ctl *c, const struct md_ask *ask, struct metadata *md)
{
	memset(md, 0, sizeof(*md));
	int16_t v = ctl_version(c->boot, KAFKA_API_METADATA, CTL_V_METADATA, CTL_V_METADATA);
	if (v < 0)
		return -1;
	struct ctl_answer a;
	if (ctl_call(c, c->boot, KAFKA_API_METADATA, v, build_metadata, ask, &a))
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	int32_t nb = wire_read_array_len(&r, 4 + 2 + 4 + 2);
	md->brokers = arena_alloc((size_t)(nb ? nb : 1) * sizeof(*md->brokers));
	for (int32_t i = 0; i < nb; i++) {
		struct md_broker *b = &md->brokers[i];
		b->id = wire_read_i32(&r);
		b->host = arena_str(wire_read_string(&r));
		b->port = wire_read_i32(&r);
		b->rack = arena_str(wire_read_nullable_string(&r));
	}
	md->broker_count = nb;
	(void)wire_read_nullable_string(&r); /* cluster_id */
	md->controller = wire_read_i32(&r);
	int32_t nt = wire_read_array_len(&r, 2 + 2 + 1 + 4);
	md->topics = arena_alloc((size_t)(nt ? nt : 1) * sizeof(*md->topics));
	for (int32_t i = 0; i < nt; i++) {
		struct md_topic *t = &md->topics[i];
		t->error = wire_read_i16(&r);
		t->name = arena_str(wire_read_string(&r));
		t->internal = wire_read_bool(&r);
		int32_t np = wire_read_array_len(&r, 2 + 4 + 4 + 4 + 4);
		t->parts = arena_alloc((size_t)(np ? np : 1) * sizeof(*t->parts));
		for (int32_t p = 0; p < np; p++) {
			struct md_partition *mp = &t->parts[p];
			mp->error = wire_read_i16(&r);
			mp->index = wire_read_i32(&r);
			mp->leader = wire_read_i32(&r);
			mp->replicas = read_i32_array(&r, &mp->replica_count);
			mp->isr = read_i32_array(&r, &mp->isr_count);
		}
		t->part_count = np;
		if (!t->name)
			t->name = "";
	}
	md->topic_count = nt;
	bool ok = wire_reader_ok(&r);
	ctl_answer_free(&a);
	if (!ok)
		return ctl_malformed(c->boot, KAFKA_API_METADATA);
	for (int32_t i = 0; i < nb; i++)
		if (!md->brokers[i].host)
			md->brokers[i].host = "";
	qsort(md->brokers, (size_t)nb, sizeof(*md->brokers), cmp_broker);
	qsort(md->topics, (size_t)nt, sizeof(*md->topics), cmp_topic);
	for (int32_t i = 0; i < nt; i++)
		qsort(md->topics[i].parts, (size_t)md->topics[i].part_count,
		      sizeof(*md->topics[i].parts), cmp_partition);
	return 0;
}

static const struct md_broker *md_broker(const struct metadata *md, int32_t id)
{
	for (int32_t i = 0; i < md->broker_count; i++)
		if (md->brokers[i].id == id)
			return &md->brokers[i];
	return NULL;
}

static const struct md_topic *md_topic(const struct metadata *md, const char *name)
{
	for (int32_t i = 0; i < md->topic_count; i++)
		if (!strcmp(md->topics[i].name, name))
			return &md->topics[i];
	return NULL;
}

static const struct md_partition *md_partition(const struct md_topic *t, int32_t index)
{
	for (int32_t i = 0; t && i < t->part_count; i++)
		if (t->parts[i].index == index)
			return &t->parts[i];
	return NULL;
}

/* ---- ListOffsets: end (or start) offsets from each partition's leader ---- */

struct tp_offset {
	const char *topic;
	int32_t partition;
	int64_t offset; /* -1 until known */
	int16_t error;	/* KERR_NONE when offset is */
};

struct lo_ask {
	struct tp_offset *const *tps; /* one leader's partitions, grouped by topic */
	size_t count;
	int64_t timestamp;
};

static void build_list_offsets(struct wire_writer *w, const void *arg)
{
	const struct lo_ask *ask = arg;
	wire_write_i32(w, -1); /* replica_id: a client */
	size_t topics_at = wire_writer_reserve_i32(w);
	int32_t topics = 0;
	for (size_t i = 0; i < ask->count;) {
		const char *name = ask->tps[i]->topic;
		size_t j = i;
		while (j < ask->count && !strcmp(ask->tps[j]->topic, name))
			j++;
		wire_write_string(w, name, strlen(name));
		wire_write_array_len(w, (int32_t)(j - i));
		for (; i < j; i++) {
			wire_write_i32(w, ask->tps[i]->partition);
			wire_write_i64(w, ask->timestamp);
		}
		topics++;
	}
	wire_writer_patch_i32(w, topics_at, topics);
}

struct tp_sort {
	struct tp_offset *tp;
	int32_t leader;
};

static int cmp_tp_sort(const void *a, const void *b)
{
	const struct tp_sort *x = a, *y = b;
	if (x->leader != y->leader)
		return x->leader < y->leader ? -1 : 1;
	int c = strcmp(x->tp->topic, y->tp->topic);
	if (c)
		return c;
	return x->tp->partition < y->tp->partition ? -1 : x->tp->partition > y->tp->partition;
}

/*
 * Fills offset/error of the COUNT partitions at TPS with ListOffsets v1 at TIMESTAMP
 * (-1 latest, -2 earliest), one request per leader in MD. A partition without a leader
 * gets LEADER_NOT_AVAILABLE, one MD does not list UNKNOWN_TOPIC_OR_PARTITION, one the
 * leader leaves out of its answer UNKNOWN_SERVER_ERROR. Returns 0, or -1 (printed) when
 * a leader cannot be reached or answers malformed.
 */
static int ctl_list_offsets(struct ctl *c, const struct metadata *md, struct tp_offset *tps,
			    size_t count, int64_t timestamp)
{
	if (count == 0)
		return 0;
	struct tp_sort *order = arena_alloc(count * sizeof(*order));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		struct tp_offset *tp = &tps[i];
		tp->offset = -1;
		const struct md_topic *t = md_topic(md, tp->topic);
		const struct md_partition *p = md_partition(t, tp->partition);
		if (!t || t->error || !p) {
			tp->error = t && t->error ? t->error : KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		if (p->leader < 0 || !md_broker(md, p->leader)) {
			tp->error = KERR_LEADER_NOT_AVAILABLE;
			continue;
		}
		tp->error = KERR_UNKNOWN_SERVER_ERROR; /* until the leader answers for it */
		order[n++] = (struct tp_sort){.tp = tp, .leader = p->leader};
	}
	qsort(order, n, sizeof(*order), cmp_tp_sort);
	struct tp_offset **group = arena_alloc((n ? n : 1) * sizeof(*group));
	for (size_t i = 0; i < n;) {
		int32_t leader = order[i].leader;
		size_t g = 0;
		for (; i < n && order[i].leader == leader; i++)
			group[g++] = order[i].tp;
		const struct md_broker *b = md_broker(md, leader);
		struct ctl_conn *conn = ctl_conn_get(c, b->host, b->port, false, NULL, 0);
		if (!conn)
			return -1;
		int16_t v = ctl_version(conn, KAFKA_API_LIST_OFFSETS, CTL_V_LIST_OFFSETS,
					CTL_V_LIST_OFFSETS);
		if (v < 0)
			return -1;
		struct lo_ask ask = {.tps = group, .count = g, .timestamp = timestamp};
		struct ctl_answer a;
		if (ctl_call(c, conn, KAFKA_API_LIST_OFFSETS, v, build_list_offsets, &ask, &a))
			return -1;
		struct wire_reader r;
		wire_reader_init(&r, a.body, a.len);
		int32_t nt = wire_read_array_len(&r, 2 + 4);
		for (int32_t t = 0; t < nt; t++) {
			struct wire_str name = wire_read_string(&r);
			int32_t np = wire_read_array_len(&r, 4 + 2 + 8 + 8);
			for (int32_t p = 0; p < np; p++) {
				int32_t index = wire_read_i32(&r);
				int16_t err = wire_read_i16(&r);
				(void)wire_read_i64(&r); /* timestamp */
				int64_t offset = wire_read_i64(&r);
				for (size_t k = 0; k < g && wire_reader_ok(&r); k++) {
					if (group[k]->partition != index ||
					    !wire_str_eq(name, group[k]->topic))
						continue;
					group[k]->error = err;
					group[k]->offset = err == KERR_NONE ? offset : -1;
				}
			}
		}
		bool ok = wire_reader_ok(&r);
		ctl_answer_free(&a);
		if (!ok)
			return ctl_malformed(conn, KAFKA_API_LIST_OFFSETS);
	}
	return 0;
}

/* ---- topics ---- */

static int topics_list(struct ctl *c)
{
	struct metadata md;
	struct md_ask ask = {.all = true};
	if (ctl_metadata(c, &ask, &md))
		return CTL_EXIT_ERROR;
	if (c->json) {
		struct json j = {.first = {true}};
		json_open(&j, NULL, '{');
		json_open(&j, "topics", '[');
		for (int32_t i = 0; i < md.topic_count; i++) {
			const struct md_topic *t = &md.topics[i];
			json_open(&j, NULL, '{');
			json_str(&j, "name", t->name);
			json_error(&j, "error", t->error);
			json_i64(&j, "partitions", t->part_count);
			json_bool(&j, "internal", t->internal);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		return CTL_EXIT_OK;
	}
	struct table tab;
	table_init(&tab, (const char *const[]){"TOPIC", ">PARTITIONS", "INTERNAL", NULL});
	for (int32_t i = 0; i < md.topic_count; i++) {
		const struct md_topic *t = &md.topics[i];
		table_add(&tab, t->name, num(t->part_count), t->internal ? "yes" : "no");
	}
	table_print(&tab);
	return CTL_EXIT_OK;
}

struct ct_config {
	const char *name;
	const char *value;
};

struct ct_ask {
	const char *name;
	int32_t partitions; /* -1: the broker's num.partitions */
	const struct ct_config *configs;
	int32_t config_count;
	int32_t timeout_ms;
};

static void build_create_topics(struct wire_writer *w, const void *arg)
{
	const struct ct_ask *ask = arg;
	wire_write_array_len(w, 1);
	wire_write_string(w, ask->name, strlen(ask->name));
	wire_write_i32(w, ask->partitions);
	wire_write_i16(w, -1);	    /* replication_factor: the broker's default (KIP-464) */
	wire_write_array_len(w, 0); /* assignments */
	wire_write_array_len(w, ask->config_count);
	for (int32_t i = 0; i < ask->config_count; i++) {
		wire_write_string(w, ask->configs[i].name, strlen(ask->configs[i].name));
		wire_write_nullable_string(w, ask->configs[i].value, strlen(ask->configs[i].value));
	}
	wire_write_i32(w, ask->timeout_ms);
	wire_write_bool(w, false); /* validate_only */
}

static int topics_create(struct ctl *c, const struct ct_ask *ask)
{
	int16_t v =
	    ctl_version(c->boot, KAFKA_API_CREATE_TOPICS, CTL_V_CREATE_TOPICS, CTL_V_CREATE_TOPICS);
	if (v < 0)
		return CTL_EXIT_ERROR;
	struct ctl_answer a;
	if (ctl_call(c, c->boot, KAFKA_API_CREATE_TOPICS, v, build_create_topics, ask, &a))
		return CTL_EXIT_ERROR;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	int32_t n = wire_read_array_len(&r, 2 + 2 + 2);
	int16_t err = KERR_UNKNOWN_SERVER_ERROR;
	char *message = NULL;
	bool found = false;
	for (int32_t i = 0; i < n; i++) {
		struct wire_str name = wire_read_string(&r);
		int16_t e = wire_read_i16(&r);
		struct wire_str m = wire_read_nullable_string(&r);
		if (wire_str_eq(name, ask->name)) {
			found = true;
			err = e;
			message = arena_str(m);
		}
	}
	bool ok = wire_reader_ok(&r);
	ctl_answer_free(&a);
	if (!ok || !found) {
		ctl_malformed(c->boot, KAFKA_API_CREATE_TOPICS);
		return CTL_EXIT_ERROR;
	}
	if (c->json) {
		struct json j = {.first = {true}};
		json_open(&j, NULL, '{');
		json_str(&j, "topic", ask->name);
		json_error(&j, "error", err);
		json_str(&j, "message", message);
		json_close(&j, '}');
	}
	if (err != KERR_NONE) {
		ctl_err("create topic '%s': %s%s%s", ask->name, kafka_error_name(err),
			message && *message ? ": " : "", message && *message ? message : "");
		return CTL_EXIT_ERROR;
	}
	if (!c->json)
		printf("created topic %s\n", ask->name);
	return CTL_EXIT_OK;
}

struct dt_ask {
	char *const *names;
	int32_t count;
	int32_t timeout_ms;
};

static void build_delete_topics(struct wire_writer *w, const void *arg)
{
	const struct dt_ask *ask = arg;
	wire_write_array_len(w, ask->count);
	for (int32_t i = 0; i < ask->count; i++)
		wire_write_string(w, ask->names[i], strlen(ask->names[i]));
	wire_write_i32(w, ask->timeout_ms);
}

static int topics_delete(struct ctl *c, const struct dt_ask *ask)
{
	int16_t v =
	    ctl_version(c->boot, KAFKA_API_DELETE_TOPICS, CTL_V_DELETE_TOPICS, CTL_V_DELETE_TOPICS);
	if (v < 0)
		return CTL_EXIT_ERROR;
	struct ctl_answer a;
	if (ctl_call(c, c->boot, KAFKA_API_DELETE_TOPICS, v, build_delete_topics, ask, &a))
		return CTL_EXIT_ERROR;
	int16_t *errs = arena_alloc((size_t)ask->count * sizeof(*errs));
	for (int32_t i = 0; i < ask->count; i++)
		errs[i] = KERR_UNKNOWN_SERVER_ERROR; /* unless the answer names it */
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	int32_t n = wire_read_array_len(&r, 2 + 2);
	for (int32_t i = 0; i < n; i++) {
		struct wire_str name = wire_read_string(&r);
		int16_t e = wire_read_i16(&r);
		for (int32_t k = 0; k < ask->count && wire_reader_ok(&r); k++)
			if (wire_str_eq(name, ask->names[k]))
				errs[k] = e;
	}
	bool ok = wire_reader_ok(&r);
	ctl_answer_free(&a);
	if (!ok) {
		ctl_malformed(c->boot, KAFKA_API_DELETE_TOPICS);
		return CTL_EXIT_ERROR;
	}
	int status = CTL_EXIT_OK;
	struct json j = {.first = {true}};
	if (c->json) {
		json_open(&j, NULL, '{');
		json_open(&j, "topics", '[');
	}
	for (int32_t i = 0; i < ask->count; i++) {
		if (c->json) {
			json_open(&j, NULL, '{');
			json_str(&j, "topic", ask->names[i]);
			json_error(&j, "error", errs[i]);
			json_close(&j, '}');
		}
		if (errs[i] != KERR_NONE) {
			ctl_err("delete topic '%s': %s", ask->names[i], kafka_error_name(errs[i]));
			status = CTL_EXIT_ERROR;
		} else if (!c->json) {
			printf("deleted topic %s\n", ask->names[i]);
		}
	}
	if (c->json) {
		json_close(&j, ']');
		json_close(&j, '}');
	}
	return status;
}

static const char *ids_text(const int32_t *ids, int32_t n)
{
	size_t cap = (size_t)n * 12 + 1;
	char *s = arena_alloc(cap);
	size_t used = 0;
	for (int32_t i = 0; i < n; i++)
		used += (size_t)snprintf(s + used, cap - used, "%s%d", i ? "," : "", (int)ids[i]);
	return s;
}

static int topics_describe(struct ctl *c, char *const *names, int32_t count)
{
	struct metadata md;
	struct md_ask ask = {.names = (const char *const *)names, .count = count};
	if (ctl_metadata(c, &ask, &md))
		return CTL_EXIT_ERROR;
	size_t total = 0;
	for (int32_t i = 0; i < md.topic_count; i++)
		if (!md.topics[i].error)
			total += (size_t)md.topics[i].part_count;
	struct tp_offset *starts = arena_alloc((total ? total : 1) * sizeof(*starts));
	struct tp_offset *ends = arena_alloc((total ? total : 1) * sizeof(*ends));
	size_t n = 0;
	for (int32_t i = 0; i < md.topic_count; i++) {
		const struct md_topic *t = &md.topics[i];
		for (int32_t p = 0; !t->error && p < t->part_count; p++, n++) {
			starts[n] =
			    (struct tp_offset){.topic = t->name, .partition = t->parts[p].index};
			ends[n] = starts[n];
		}
	}
	if (ctl_list_offsets(c, &md, starts, n, KAFKA_EARLIEST_TIMESTAMP) ||
	    ctl_list_offsets(c, &md, ends, n, KAFKA_LATEST_TIMESTAMP))
		return CTL_EXIT_ERROR;

	int status = CTL_EXIT_OK;
	for (int32_t k = 0; k < count; k++) {
		const struct md_topic *t = md_topic(&md, names[k]);
		if (!t || t->error) {
			ctl_err("topic '%s': %s", names[k],
				kafka_error_name(t ? t->error : KERR_UNKNOWN_TOPIC_OR_PARTITION));
			status = CTL_EXIT_ERROR;
		}
	}
	struct json j = {.first = {true}};
	struct table tab;
	table_init(&tab, (const char *const[]){"TOPIC", ">PARTITION", ">LEADER", "REPLICAS", "ISR",
					       ">START", ">END", "?ERROR", NULL});
	if (c->json) {
		json_open(&j, NULL, '{');
		json_open(&j, "topics", '[');
	}
	n = 0;
	for (int32_t i = 0; i < md.topic_count; i++) {
		const struct md_topic *t = &md.topics[i];
		if (c->json) {
			json_open(&j, NULL, '{');
			json_str(&j, "name", t->name);
			json_error(&j, "error", t->error);
			json_bool(&j, "internal", t->internal);
			json_open(&j, "partitions", '[');
		}
		for (int32_t p = 0; !t->error && p < t->part_count; p++, n++) {
			const struct md_partition *mp = &t->parts[p];
			int16_t err = mp->error	      ? mp->error
				      : ends[n].error ? ends[n].error
						      : starts[n].error;
			if (c->json) {
				json_open(&j, NULL, '{');
				json_i64(&j, "partition", mp->index);
				json_error(&j, "error", err);
				json_i64(&j, "leader", mp->leader);
				json_open(&j, "replicas", '[');
				for (int32_t x = 0; x < mp->replica_count; x++)
					json_i64(&j, NULL, mp->replicas[x]);
				json_close(&j, ']');
				json_open(&j, "isr", '[');
				for (int32_t x = 0; x < mp->isr_count; x++)
					json_i64(&j, NULL, mp->isr[x]);
				json_close(&j, ']');
				if (starts[n].error)
					json_null(&j, "start");
				else
					json_i64(&j, "start", starts[n].offset);
				if (ends[n].error)
					json_null(&j, "end");
				else
					json_i64(&j, "end", ends[n].offset);
				json_close(&j, '}');
			} else {
				table_add(&tab, t->name, num(mp->index), num(mp->leader),
					  ids_text(mp->replicas, mp->replica_count),
					  ids_text(mp->isr, mp->isr_count),
					  starts[n].error ? NULL : num(starts[n].offset),
					  ends[n].error ? NULL : num(ends[n].offset),
					  err ? kafka_error_name(err) : "");
			}
		}
		if (c->json) {
			json_close(&j, ']');
			json_close(&j, '}');
		}
	}
	if (c->json) {
		json_close(&j, ']');
		json_close(&j, '}');
	} else if (tab.rows) {
		table_print(&tab);
	}
	return status;
}

/* ---- groups: coordinator lookup ---- */

/* Errors after which a group request is tried again (until --timeout-ms): the
 * coordinator is loading, moving, or being created. */
static bool coordinator_retriable(int16_t err)
{
	return err == KERR_COORDINATOR_LOAD_IN_PROGRESS || err == KERR_COORDINATOR_NOT_AVAILABLE ||
	       err == KERR_NOT_COORDINATOR;
}

struct fc_ask {
	const char *group;
};

static void build_find_coordinator(struct wire_writer *w, const void *arg)
{
	const struct fc_ask *ask = arg;
	wire_write_string(w, ask->group, strlen(ask->group));
	wire_write_i8(w, 0); /* key_type: a group */
}

struct coordinator {
	int32_t id;
	char *host;
	int32_t port;
	struct ctl_conn *conn;
};

/* FindCoordinator v1 for GROUP, then a connection to it. Returns 0, a Kafka error code
 * (> 0; a retriable one is for the caller to retry), or -1 (printed). */
static int ctl_find_coordinator(struct ctl *c, const char *group, struct coordinator *co)
{
	int16_t v = ctl_version(c->boot, KAFKA_API_FIND_COORDINATOR, CTL_V_FIND_COORDINATOR,
				CTL_V_FIND_COORDINATOR);
	if (v < 0)
		return -1;
	struct fc_ask ask = {.group = group};
	struct ctl_answer a;
	if (ctl_call(c, c->boot, KAFKA_API_FIND_COORDINATOR, v, build_find_coordinator, &ask, &a))
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	int16_t err = wire_read_i16(&r);
	(void)wire_read_nullable_string(&r); /* error_message */
	co->id = wire_read_i32(&r);
	co->host = arena_str(wire_read_string(&r));
	co->port = wire_read_i32(&r);
	bool ok = wire_reader_ok(&r);
	ctl_answer_free(&a);
	if (!ok)
		return ctl_malformed(c->boot, KAFKA_API_FIND_COORDINATOR);
	if (err != KERR_NONE)
		return err;
	co->conn = ctl_conn_get(c, co->host, co->port, false, NULL, 0);
	return co->conn ? 0 : -1;
}

/* ---- groups describe ---- */

struct assigned {
	char *topic;
	int32_t partition;
};

struct member {
	char *member_id;
	char *client_id;
	char *host;
	bool decoded;		/* assignment decoded (consumer protocol) */
	struct assigned *parts; /* the member's partitions, as assigned */
	int32_t part_count;
	char **subscription; /* topics the member subscribed to */
	int32_t subscription_count;
};

struct group_row {
	char *topic;
	int32_t partition;
	int64_t committed; /* -1: nothing committed */
	char *metadata;	   /* committed with the offset; NULL when none */
	int16_t error;	   /* OffsetFetch's for this partition */
	struct tp_offset end;
	const char *member; /* member id of the owner, NULL when none */
};

struct group {
	const char *id;
	int16_t error; /* KERR_NONE, or what stops the description */
	const char *error_note;
	struct coordinator co;
	char *state;
	char *protocol_type;
	char *protocol;
	struct member *members;
	int32_t member_count;
	struct group_row *rows; /* sorted by topic, partition */
	size_t row_count;
};

/*
 * Kafka's ConsumerProtocol assignment (ConsumerProtocolAssignment.json; versions 0 and
 * 1 share the fields read here, later fields after user_data are ignored):
 *
 *   field                 type                   meaning
 *  +---------------------+----------------------+----------------------------------+
 *  | version             | INT16                | 0 or 1 (2.3's clients)           |
 *  | assigned_partitions | ARRAY of             |                                  |
 *  |   topic             |   STRING             |                                  |
 *  |   partitions        |   ARRAY of INT32     |                                  |
 *  | user_data           | NULLABLE_BYTES       | the assignor's, not read         |
 *  +---------------------+----------------------+----------------------------------+
 *
 * Empty bytes (a member that got nothing, or before SyncGroup) are no partitions.
 * Returns false when the bytes do not hold that layout.
 */
static bool decode_assignment(struct wire_bytes b, struct member *m)
{
	if (b.len == 0) {
		m->decoded = true;
		return true;
	}
	struct wire_reader r;
	wire_reader_init(&r, b.ptr, b.len);
	int16_t version = wire_read_i16(&r);
	int32_t nt = wire_read_array_len(&r, 2 + 4);
	if (!wire_reader_ok(&r) || version < 0)
		return false;
	/* Count first: the partition arrays are bounded by the bytes, so is the total. */
	struct wire_reader count = r;
	int32_t total = 0;
	for (int32_t t = 0; t < nt; t++) {
		(void)wire_read_string(&count);
		int32_t np = wire_read_array_len(&count, 4);
		wire_skip(&count, (size_t)np * 4);
		total += np;
	}
	if (!wire_reader_ok(&count))
		return false;
	m->parts = arena_alloc((size_t)(total ? total : 1) * sizeof(*m->parts));
	for (int32_t t = 0; t < nt; t++) {
		char *topic = arena_str(wire_read_string(&r));
		int32_t np = wire_read_array_len(&r, 4);
		for (int32_t p = 0; p < np; p++)
			m->parts[m->part_count++] =
			    (struct assigned){.topic = topic, .partition = wire_read_i32(&r)};
	}
	(void)wire_read_nullable_bytes(&r); /* user_data */
	m->decoded = wire_reader_ok(&r);
	if (!m->decoded)
		m->part_count = 0;
	return m->decoded;
}

/* ConsumerProtocol subscription (ConsumerProtocolSubscription.json): INT16 version,
 * ARRAY of STRING topics, NULLABLE_BYTES user_data, (v1) owned partitions. Only the
 * topics are read; on other bytes the subscription stays empty. */
static void decode_subscription(struct wire_bytes b, struct member *m)
{
	struct wire_reader r;
	wire_reader_init(&r, b.ptr, b.len);
	(void)wire_read_i16(&r);
	int32_t n = wire_read_array_len(&r, 2);
	char **topics = arena_alloc((size_t)(n ? n : 1) * sizeof(*topics));
	for (int32_t i = 0; i < n; i++)
		topics[i] = arena_str(wire_read_string(&r));
	if (wire_reader_ok(&r)) {
		m->subscription = topics;
		m->subscription_count = n;
	}
}

struct names_ask {
	const char *const *names;
	int32_t count;
};

static void build_names(struct wire_writer *w, const void *arg)
{
	const struct names_ask *ask = arg;
	wire_write_array_len(w, ask->count);
	for (int32_t i = 0; i < ask->count; i++)
		wire_write_string(w, ask->names[i], strlen(ask->names[i]));
}

/* One group as DescribeGroups v1 reports it. */
struct dg_group {
	int16_t error;
	char *id;
	char *state;
	char *protocol_type;
	char *protocol;
	struct member *members;
	int32_t member_count;
};

/* DescribeGroups v1 of the COUNT groups at NAMES on CONN into OUT (COUNT entries, in
 * the order the answer gives). Returns 0 or -1 (printed). */
static int ctl_describe_groups(struct ctl *c, struct ctl_conn *conn, const char *const *names,
			       int32_t count, struct dg_group *out, int32_t *out_count)
{
	int16_t v = ctl_version(conn, KAFKA_API_DESCRIBE_GROUPS, CTL_V_DESCRIBE_GROUPS,
				CTL_V_DESCRIBE_GROUPS);
	if (v < 0)
		return -1;
	struct names_ask ask = {.names = names, .count = count};
	struct ctl_answer a;
	if (ctl_call(c, conn, KAFKA_API_DESCRIBE_GROUPS, v, build_names, &ask, &a))
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	int32_t n = wire_read_array_len(&r, 2 + 2 + 2 + 2 + 2 + 4);
	if (n > count)
		n = -1; /* more groups than asked: not an answer to this request */
	for (int32_t i = 0; i < n; i++) {
		struct dg_group *g = &out[i];
		g->error = wire_read_i16(&r);
		g->id = arena_str(wire_read_string(&r));
		g->state = arena_str(wire_read_string(&r));
		g->protocol_type = arena_str(wire_read_string(&r));
		g->protocol = arena_str(wire_read_string(&r));
		int32_t nm = wire_read_array_len(&r, 2 + 2 + 2 + 4 + 4);
		g->members = arena_alloc((size_t)(nm ? nm : 1) * sizeof(*g->members));
		g->member_count = nm;
		for (int32_t k = 0; k < nm; k++) {
			struct member *m = &g->members[k];
			m->member_id = arena_str(wire_read_string(&r));
			m->client_id = arena_str(wire_read_string(&r));
			m->host = arena_str(wire_read_string(&r));
			struct wire_bytes meta = wire_read_bytes(&r);
			struct wire_bytes assignment = wire_read_bytes(&r);
			if (wire_reader_ok(&r) && g->protocol_type &&
			    !strcmp(g->protocol_type, "consumer")) {
				decode_subscription(meta, m);
				decode_assignment(assignment, m);
			}
			if (!m->member_id)
				m->member_id = "";
		}
	}
	bool ok = wire_reader_ok(&r) && n >= 0;
	ctl_answer_free(&a);
	if (!ok)
		return ctl_malformed(conn, KAFKA_API_DESCRIBE_GROUPS);
	*out_count = n;
	return 0;
}

struct of_ask {
	const char *group;
};

static void build_offset_fetch(struct wire_writer *w, const void *arg)
{
	const struct of_ask *ask = arg;
	wire_write_string(w, ask->group, strlen(ask->group));
	wire_write_array_len(w, -1); /* every committed offset of the group */
}

static int cmp_row(const void *a, const void *b)
{
	const struct group_row *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	if (c)
		return c;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* OffsetFetch v3 (all topics) of G from its coordinator into g->rows. Returns 0, a
 * Kafka error code (> 0), or -1 (printed). Leaves room in rows for EXTRA more. */
static int ctl_offset_fetch(struct ctl *c, struct group *g, size_t extra)
{
	struct ctl_conn *conn = g->co.conn;
	int16_t v =
	    ctl_version(conn, KAFKA_API_OFFSET_FETCH, CTL_V_OFFSET_FETCH, CTL_V_OFFSET_FETCH);
	if (v < 0)
		return -1;
	struct of_ask ask = {.group = g->id};
	struct ctl_answer a;
	if (ctl_call(c, conn, KAFKA_API_OFFSET_FETCH, v, build_offset_fetch, &ask, &a))
		return -1;
	struct wire_reader r;
	wire_reader_init(&r, a.body, a.len);
	(void)wire_read_i32(&r); /* throttle_time_ms */
	/* Count first, to size rows. */
	struct wire_reader count = r;
	size_t total = 0;
	int32_t nt = wire_read_array_len(&count, 2 + 4);
	for (int32_t t = 0; t < nt; t++) {
		(void)wire_read_string(&count);
		int32_t np = wire_read_array_len(&count, 4 + 8 + 2 + 2);
		for (int32_t p = 0; p < np; p++) {
			wire_skip(&count, 4 + 8);
			(void)wire_read_nullable_string(&count);
			wire_skip(&count, 2);
		}
		total += (size_t)np;
	}
	g->rows = arena_alloc((total + extra + 1) * sizeof(*g->rows));
	g->row_count = 0;
	nt = wire_read_array_len(&r, 2 + 4);
	for (int32_t t = 0; t < nt && wire_reader_ok(&count); t++) {
		char *topic = arena_str(wire_read_string(&r));
		int32_t np = wire_read_array_len(&r, 4 + 8 + 2 + 2);
		for (int32_t p = 0; p < np; p++) {
			struct group_row *row = &g->rows[g->row_count];
			row->topic = topic ? topic : "";
			row->partition = wire_read_i32(&r);
			row->committed = wire_read_i64(&r);
			row->metadata = arena_str(wire_read_nullable_string(&r));
			row->error = wire_read_i16(&r);
			/* A partition without a committed offset is not a row of its own. */
			if (row->committed >= 0 || row->error)
				g->row_count++;
		}
	}
	int16_t err = wire_read_i16(&r);
	bool ok = wire_reader_ok(&r) && wire_reader_ok(&count);
	ctl_answer_free(&a);
	if (!ok)
		return ctl_malformed(conn, KAFKA_API_OFFSET_FETCH);
	return err;
}

/* Waits CTL_RETRY_BACKOFF_MS before another try of a retriable error; false when
 * DEADLINE_MS has passed (the caller reports ERR). */
static bool retry_backoff(int64_t deadline_ms)
{
	if (ctl_now_ms() + CTL_RETRY_BACKOFF_MS > deadline_ms)
		return false;
	ctl_sleep_ms(CTL_RETRY_BACKOFF_MS);
	return true;
}

/* Fills G (g->id set) from its coordinator: state, members, committed offsets. Returns
 * 0 (g->error may be a Kafka error) or -1 (printed). */
static int group_fetch(struct ctl *c, struct group *g)
{
	int64_t deadline = ctl_now_ms() + c->timeout_ms;
	for (;;) {
		int ret = ctl_find_coordinator(c, g->id, &g->co);
		struct dg_group dg = {0};
		int32_t got = 0;
		if (ret == 0) {
			const char *names[1] = {g->id};
			if (ctl_describe_groups(c, g->co.conn, names, 1, &dg, &got))
				return -1;
			if (got != 1 || !dg.id || strcmp(dg.id, g->id)) {
				ctl_err("DescribeGroups from %s:%d did not describe group '%s'",
					g->co.conn->host, g->co.conn->port, g->id);
				return -1;
			}
			ret = dg.error;
		}
		if (ret == 0) {
			size_t assigned = 0;
			for (int32_t k = 0; k < dg.member_count; k++)
				assigned += (size_t)dg.members[k].part_count;
			ret = ctl_offset_fetch(c, g, assigned);
		}
		if (ret < 0)
			return -1;
		if (ret > 0 && coordinator_retriable((int16_t)ret) && retry_backoff(deadline))
			continue;
		g->error = (int16_t)ret;
		if (ret > 0)
			return 0;
		g->state = dg.state ? dg.state : "";
		g->protocol_type = dg.protocol_type ? dg.protocol_type : "";
		g->protocol = dg.protocol ? dg.protocol : "";
		g->members = dg.members;
		g->member_count = dg.member_count;
		return 0;
	}
}

/* Adds the assigned partitions that have no committed offset as rows, names each row's
 * owner, and sorts the rows. */
static void group_rows_complete(struct group *g)
{
	for (int32_t k = 0; k < g->member_count; k++) {
		const struct member *m = &g->members[k];
		for (int32_t p = 0; p < m->part_count; p++) {
			const struct assigned *as = &m->parts[p];
			struct group_row *found = NULL;
			for (size_t i = 0; i < g->row_count && !found; i++)
				if (g->rows[i].partition == as->partition &&
				    !strcmp(g->rows[i].topic, as->topic ? as->topic : ""))
					found = &g->rows[i];
			if (!found) {
				found = &g->rows[g->row_count++];
				*found = (struct group_row){.topic = as->topic ? as->topic : "",
							    .partition = as->partition,
							    .committed = -1};
			}
			found->member = m->member_id;
		}
	}
	qsort(g->rows, g->row_count, sizeof(*g->rows), cmp_row);
}

/* End offsets of every row of G (Metadata for their topics, then ListOffsets). */
static int group_end_offsets(struct ctl *c, struct group *g)
{
	if (g->row_count == 0)
		return 0;
	const char **topics = arena_alloc(g->row_count * sizeof(*topics));
	int32_t nt = 0;
	for (size_t i = 0; i < g->row_count; i++)
		if (nt == 0 || strcmp(topics[nt - 1], g->rows[i].topic))
			topics[nt++] = g->rows[i].topic; /* rows are sorted by topic */
	struct metadata md;
	struct md_ask ask = {.names = topics, .count = nt};
	if (ctl_metadata(c, &ask, &md))
		return -1;
	struct tp_offset *tps = arena_alloc(g->row_count * sizeof(*tps));
	for (size_t i = 0; i < g->row_count; i++)
		tps[i] = (struct tp_offset){.topic = g->rows[i].topic,
					    .partition = g->rows[i].partition};
	if (ctl_list_offsets(c, &md, tps, g->row_count, KAFKA_LATEST_TIMESTAMP))
		return -1;
	for (size_t i = 0; i < g->row_count; i++)
		g->rows[i].end = tps[i];
	return 0;
}

static bool row_has_lag(const struct group_row *row)
{
	return row->committed >= 0 && row->end.error == KERR_NONE;
}

static void group_print_json(struct json *j, const struct group *g)
{
	json_open(j, NULL, '{');
	json_str(j, "group", g->id);
	json_error(j, "error", g->error);
	if (g->error) {
		if (g->error_note)
			json_str(j, "message", g->error_note);
		json_close(j, '}');
		return;
	}
	json_open(j, "coordinator", '{');
	json_i64(j, "id", g->co.id);
	json_str(j, "host", g->co.host);
	json_i64(j, "port", g->co.port);
	json_close(j, '}');
	json_str(j, "state", g->state);
	json_str(j, "protocol_type", g->protocol_type);
	json_str(j, "protocol", g->protocol);
	json_open(j, "members", '[');
	for (int32_t k = 0; k < g->member_count; k++) {
		const struct member *m = &g->members[k];
		json_open(j, NULL, '{');
		json_str(j, "member_id", m->member_id);
		json_str(j, "client_id", m->client_id);
		json_str(j, "host", m->host);
		json_open(j, "subscription", '[');
		for (int32_t s = 0; s < m->subscription_count; s++)
			json_str(j, NULL, m->subscription[s]);
		json_close(j, ']');
		if (!m->decoded) {
			json_null(j, "assignment");
		} else {
			json_open(j, "assignment", '[');
			for (int32_t p = 0; p < m->part_count;) {
				const char *topic = m->parts[p].topic;
				json_open(j, NULL, '{');
				json_str(j, "topic", topic);
				json_open(j, "partitions", '[');
				for (; p < m->part_count &&
				       !strcmp(m->parts[p].topic ? m->parts[p].topic : "",
					       topic ? topic : "");
				     p++)
					json_i64(j, NULL, m->parts[p].partition);
				json_close(j, ']');
				json_close(j, '}');
			}
			json_close(j, ']');
		}
		json_close(j, '}');
	}
	json_close(j, ']');
	int64_t total = 0;
	json_open(j, "partitions", '[');
	for (size_t i = 0; i < g->row_count; i++) {
		const struct group_row *row = &g->rows[i];
		json_open(j, NULL, '{');
		json_str(j, "topic", row->topic);
		json_i64(j, "partition", row->partition);
		if (row->committed >= 0)
			json_i64(j, "committed", row->committed);
		else
			json_null(j, "committed");
		if (row->end.error)
			json_null(j, "end");
		else
			json_i64(j, "end", row->end.offset);
		if (row_has_lag(row)) {
			json_i64(j, "lag", row->end.offset - row->committed);
			total += row->end.offset - row->committed;
		} else {
			json_null(j, "lag");
		}
		json_str(j, "member", row->member);
		json_str(j, "metadata", row->metadata);
		json_error(j, "error", row->error ? row->error : row->end.error);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_i64(j, "lag", total);
	json_close(j, '}');
}

static const char *assignment_text(const struct member *m)
{
	if (!m->decoded)
		return "(not a consumer assignment)";
	size_t cap = 1;
	for (int32_t p = 0; p < m->part_count; p++)
		cap += strlen(m->parts[p].topic ? m->parts[p].topic : "") + 16;
	char *s = arena_alloc(cap);
	size_t used = 0;
	for (int32_t p = 0; p < m->part_count; p++) {
		const char *topic = m->parts[p].topic ? m->parts[p].topic : "";
		bool same =
		    p > 0 && !strcmp(m->parts[p - 1].topic ? m->parts[p - 1].topic : "", topic);
		if (same)
			used += (size_t)snprintf(s + used, cap - used, ",%d",
						 (int)m->parts[p].partition);
		else
			used += (size_t)snprintf(s + used, cap - used, "%s%s:%d", p ? " " : "",
						 topic, (int)m->parts[p].partition);
	}
	return s;
}

static void group_print_table(const struct group *g, bool first)
{
	if (!first)
		putchar('\n');
	printf("GROUP %s  STATE %s  PROTOCOL %s%s%s  COORDINATOR %d (%s:%d)  MEMBERS %d\n", g->id,
	       g->state, g->protocol_type, *g->protocol ? "/" : "", g->protocol, (int)g->co.id,
	       g->co.host, (int)g->co.port, (int)g->member_count);
	if (g->member_count) {
		putchar('\n');
		struct table tab;
		table_init(&tab, (const char *const[]){"MEMBER-ID", "CLIENT-ID", "HOST",
						       "PARTITIONS", NULL});
		for (int32_t k = 0; k < g->member_count; k++) {
			const struct member *m = &g->members[k];
			table_add(&tab, m->member_id, m->client_id, m->host, assignment_text(m));
		}
		table_print(&tab);
	}
	putchar('\n');
	struct table tab;
	table_init(&tab, (const char *const[]){"TOPIC", ">PARTITION", ">COMMITTED", ">END", ">LAG",
					       "MEMBER", "?ERROR", NULL});
	int64_t total = 0;
	for (size_t i = 0; i < g->row_count; i++) {
		const struct group_row *row = &g->rows[i];
		int16_t err = row->error ? row->error : row->end.error;
		if (row_has_lag(row))
			total += row->end.offset - row->committed;
		table_add(&tab, row->topic, num(row->partition),
			  row->committed >= 0 ? num(row->committed) : NULL,
			  row->end.error ? NULL : num(row->end.offset),
			  row_has_lag(row) ? num(row->end.offset - row->committed) : NULL,
			  row->member, err ? kafka_error_name(err) : "");
	}
	table_print(&tab);
	printf("TOTAL LAG %" PRId64 "\n", total);
}

static int groups_describe(struct ctl *c, char *const *ids, int32_t count)
{
	struct group *groups = arena_alloc((size_t)count * sizeof(*groups));
	int status = CTL_EXIT_OK;
	for (int32_t i = 0; i < count; i++) {
		struct group *g = &groups[i];
		g->id = ids[i];
		if (group_fetch(c, g))
			return CTL_EXIT_ERROR;
		/* Kafka answers a group it does not know as state Dead, not an error. */
		if (!g->error && g->member_count == 0 && g->row_count == 0 &&
		    (!strcmp(g->state, "Dead") || !*g->state)) {
			g->error = KERR_GROUP_ID_NOT_FOUND;
			g->error_note = "no such group: no members and no committed offsets";
		}
		if (g->error) {
			if (g->error_note)
				ctl_err("group '%s': %s (%s)", g->id, kafka_error_name(g->error),
					g->error_note);
			else
				ctl_err("group '%s': %s", g->id, kafka_error_name(g->error));
			status = CTL_EXIT_ERROR;
			continue;
		}
		group_rows_complete(g);
		if (group_end_offsets(c, g))
			return CTL_EXIT_ERROR;
	}
	if (c->json) {
		struct json j = {.first = {true}};
		json_open(&j, NULL, '{');
		json_open(&j, "groups", '[');
		for (int32_t i = 0; i < count; i++)
			group_print_json(&j, &groups[i]);
		json_close(&j, ']');
		json_close(&j, '}');
	} else {
		bool first = true;
		for (int32_t i = 0; i < count; i++) {
			if (groups[i].error)
				continue;
			group_print_table(&groups[i], first);
			first = false;
		}
	}
	return status;
}

/* ---- groups list, delete ---- */

struct listed_group {
	char *id;
	char *protocol_type;
	int32_t coordinator;
	char *state;	      /* from DescribeGroups; NULL when it failed */
	int32_t member_count; /* idem */
};

static int cmp_listed(const void *a, const void *b)
{
	const struct listed_group *x = a, *y = b;
	return strcmp(x->id, y->id);
}

/* ListGroups v1 to BROKER (retrying a loading coordinator), then DescribeGroups of what
 * it lists. Appends to *OUT (grown in the arena). Returns 0 or -1 (printed). */
static int groups_list_broker(struct ctl *c, const struct md_broker *b, struct listed_group **out,
			      size_t *count)
{
	struct ctl_conn *conn = ctl_conn_get(c, b->host, b->port, false, NULL, 0);
	if (!conn)
		return -1;
	int16_t v = ctl_version(conn, KAFKA_API_LIST_GROUPS, CTL_V_LIST_GROUPS, CTL_V_LIST_GROUPS);
	if (v < 0)
		return -1;
	int64_t deadline = ctl_now_ms() + c->timeout_ms;
	for (;;) {
		struct ctl_answer a;
		if (ctl_call(c, conn, KAFKA_API_LIST_GROUPS, v, build_empty, NULL, &a))
			return -1;
		struct wire_reader r;
		wire_reader_init(&r, a.body, a.len);
		(void)wire_read_i32(&r); /* throttle_time_ms */
		int16_t err = wire_read_i16(&r);
		int32_t n = wire_read_array_len(&r, 2 + 2);
		struct listed_group *all = arena_alloc((*count + (size_t)n + 1) * sizeof(*all));
		if (*count)
			memcpy(all, *out, *count * sizeof(*all));
		for (int32_t i = 0; i < n; i++) {
			struct listed_group *lg = &all[*count + (size_t)i];
			lg->id = arena_str(wire_read_string(&r));
			lg->protocol_type = arena_str(wire_read_string(&r));
			lg->coordinator = b->id;
			if (!lg->id)
				lg->id = "";
		}
		bool ok = wire_reader_ok(&r);
		ctl_answer_free(&a);
		if (!ok)
			return ctl_malformed(conn, KAFKA_API_LIST_GROUPS);
		if (err != KERR_NONE && coordinator_retriable(err) && retry_backoff(deadline))
			continue;
		if (err != KERR_NONE) {
			ctl_err("ListGroups to broker %d (%s:%d): %s", (int)b->id, b->host,
				(int)b->port, kafka_error_name(err));
			return -1;
		}
		if (n > 0) {
			/* The broker coordinates what it lists: describe them there, at once. */
			const char **names = arena_alloc((size_t)n * sizeof(*names));
			for (int32_t i = 0; i < n; i++)
				names[i] = all[*count + (size_t)i].id;
			struct dg_group *dg = arena_alloc((size_t)n * sizeof(*dg));
			int32_t got = 0;
			if (ctl_describe_groups(c, conn, names, n, dg, &got))
				return -1;
			for (int32_t i = 0; i < n; i++)
				for (int32_t k = 0; k < got; k++)
					if (dg[k].id && !dg[k].error &&
					    !strcmp(dg[k].id, names[i])) {
						all[*count + (size_t)i].state = dg[k].state;
						all[*count + (size_t)i].member_count =
						    dg[k].member_count;
					}
		}
		*out = all;
		*count += (size_t)n;
		return 0;
	}
}

static int groups_list(struct ctl *c)
{
	struct metadata md;
	struct md_ask ask = {.count = 0};
	if (ctl_metadata(c, &ask, &md))
		return CTL_EXIT_ERROR;
	struct listed_group *groups = NULL;
	size_t count = 0;
	for (int32_t i = 0; i < md.broker_count; i++)
		if (groups_list_broker(c, &md.brokers[i], &groups, &count))
			return CTL_EXIT_ERROR;
	if (count)
		qsort(groups, count, sizeof(*groups), cmp_listed);
	/* Kafka lists a group at its coordinator only; a broker that lists every group it
	 * knows of would repeat some: keep the first of each name. */
	size_t kept = 0;
	for (size_t i = 0; i < count; i++)
		if (kept == 0 || strcmp(groups[kept - 1].id, groups[i].id))
			groups[kept++] = groups[i];
	count = kept;
	if (c->json) {
		struct json j = {.first = {true}};
		json_open(&j, NULL, '{');
		json_open(&j, "groups", '[');
		for (size_t i = 0; i < count; i++) {
			json_open(&j, NULL, '{');
			json_str(&j, "group", groups[i].id);
			json_str(&j, "protocol_type", groups[i].protocol_type);
			json_i64(&j, "coordinator", groups[i].coordinator);
			json_str(&j, "state", groups[i].state);
			if (groups[i].state)
				json_i64(&j, "members", groups[i].member_count);
			else
				json_null(&j, "members");
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		return CTL_EXIT_OK;
	}
	struct table tab;
	table_init(&tab, (const char *const[]){"GROUP", "PROTOCOL-TYPE", "STATE", ">MEMBERS",
					       ">COORDINATOR", NULL});
	for (size_t i = 0; i < count; i++)
		table_add(&tab, groups[i].id, groups[i].protocol_type, groups[i].state,
			  groups[i].state ? num(groups[i].member_count) : NULL,
			  num(groups[i].coordinator));
	table_print(&tab);
	return CTL_EXIT_OK;
}

/* DeleteGroups of GROUP at its coordinator: 0, a Kafka error (> 0), or -1 (printed). */
static int group_delete_one(struct ctl *c, const char *group)
{
	int64_t deadline = ctl_now_ms() + c->timeout_ms;
	for (;;) {
		struct coordinator co;
		int ret = ctl_find_coordinator(c, group, &co);
		if (ret == 0) {
			int16_t v =
			    ctl_version(co.conn, KAFKA_API_DELETE_GROUPS, CTL_V_DELETE_GROUPS, 0);
			if (v < 0)
				return -1;
			const char *names[1] = {group};
			struct names_ask ask = {.names = names, .count = 1};
			struct ctl_answer a;
			if (ctl_call(c, co.conn, KAFKA_API_DELETE_GROUPS, v, build_names, &ask, &a))
				return -1;
			struct wire_reader r;
			wire_reader_init(&r, a.body, a.len);
			(void)wire_read_i32(&r); /* throttle_time_ms */
			int32_t n = wire_read_array_len(&r, 2 + 2);
			bool found = false;
			for (int32_t i = 0; i < n; i++) {
				struct wire_str id = wire_read_string(&r);
				int16_t err = wire_read_i16(&r);
				if (wire_str_eq(id, group)) {
					found = true;
					ret = err;
				}
			}
			bool ok = wire_reader_ok(&r) && found;
			ctl_answer_free(&a);
			if (!ok)
				return ctl_malformed(co.conn, KAFKA_API_DELETE_GROUPS);
		}
		if (ret > 0 && coordinator_retriable((int16_t)ret) && retry_backoff(deadline))
			continue;
		return ret;
	}
}

static int groups_delete(struct ctl *c, char *const *ids, int32_t count)
{
	int status = CTL_EXIT_OK;
	struct json j = {.first = {true}};
	if (c->json) {
		json_open(&j, NULL, '{');
		json_open(&j, "groups", '[');
	}
	for (int32_t i = 0; i < count; i++) {
		int ret = group_delete_one(c, ids[i]);
		if (ret < 0) {
			status = CTL_EXIT_ERROR;
			break;
		}
		if (c->json) {
			json_open(&j, NULL, '{');
			json_str(&j, "group", ids[i]);
			json_error(&j, "error", (int16_t)ret);
			json_close(&j, '}');
		}
		if (ret) {
			ctl_err("delete group '%s': %s", ids[i], kafka_error_name((int16_t)ret));
			status = CTL_EXIT_ERROR;
		} else if (!c->json) {
			printf("deleted group %s\n", ids[i]);
		}
	}
	if (c->json) {
		json_close(&j, ']');
		json_close(&j, '}');
	}
	return status;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("usage: sluicectl [--brokers HOST:PORT[,...]] [--json] [--timeout-ms N] COMMAND\n"
	      "\n"
	      "commands:\n"
	      "  topics list                       every topic, its partition count\n"
	      "  topics create NAME [--partitions N] [--config KEY=VALUE]...\n"
	      "                                    create a topic (default: the broker's\n"
	      "                                    num.partitions); configs as in Kafka\n"
	      "  topics describe NAME...           per partition: leader, replicas, ISR,\n"
	      "                                    log start and end offsets\n"
	      "  topics delete NAME...             delete topics\n"
	      "  groups list                       every consumer group of every broker\n"
	      "  groups describe GROUP...          state, protocol, members and their\n"
	      "                                    partitions; per partition: committed offset,\n"
	      "                                    end offset, lag, owning member\n"
	      "  groups delete GROUP...            delete groups that have no members\n"
	      "\n"
	      "options:\n"
	      "  --brokers LIST     brokers to bootstrap from, the first that answers is used\n"
	      "                     (default " CTL_BROKERS_DEFAULT ")\n"
	      "  --json             print one JSON document instead of tables\n"
	      "  --timeout-ms N     bound on each connect and request, and on retries of a\n"
	      "                     coordinator that is loading (default 10000)\n"
	      "  -h, --help         print this help\n"
	      "\n"
	      "exit status: 0 success, 1 an error from a broker (its Kafka error name is\n"
	      "printed), an unreachable broker or a timeout, 2 a usage error\n",
	      f);
}

/* Parses a decimal integer in [MIN, MAX] for OPTION; false after printing why. */
static bool parse_int(const char *option, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		ctl_err("%s: '%s' is not a number in %ld-%ld", option, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

static bool names_valid(const char *what, char *const *names, int count, size_t max_len)
{
	for (int i = 0; i < count; i++) {
		size_t n = strlen(names[i]);
		if (n == 0 || n > max_len) {
			ctl_err("%s '%s': must be 1 to %zu bytes", what, names[i], max_len);
			return false;
		}
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"brokers", required_argument, 0, 'b'},
	    {"json", no_argument, 0, 'j'},
	    {"timeout-ms", required_argument, 0, 't'},
	    {"partitions", required_argument, 0, 'p'},
	    {"config", required_argument, 0, 'c'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	struct ctl c = {.brokers = CTL_BROKERS_DEFAULT, .timeout_ms = CTL_TIMEOUT_MS_DEFAULT};
	long partitions = -1;
	struct ct_config *configs = arena_alloc((size_t)argc * sizeof(*configs));
	int config_count = 0;
	int status = CTL_EXIT_USAGE;
	int opt;
	long v;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			c.brokers = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 't':
			if (!parse_int("--timeout-ms", optarg, 1, CTL_TIMEOUT_MS_MAX, &v))
				goto out;
			c.timeout_ms = (int)v;
			break;
		case 'p':
			if (!parse_int("--partitions", optarg, 1, CTL_PARTITIONS_MAX, &v))
				goto out;
			partitions = v;
			break;
		case 'c': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || (size_t)(eq - optarg) > CTL_CONFIG_BYTES_MAX ||
			    strlen(eq + 1) > CTL_CONFIG_BYTES_MAX) {
				ctl_err("--config: '%s' is not KEY=VALUE", optarg);
				goto out;
			}
			configs[config_count].name = arena_strndup(optarg, (size_t)(eq - optarg));
			configs[config_count].value = eq + 1;
			config_count++;
			break;
		}
		case 'h':
			usage(stdout);
			status = CTL_EXIT_OK;
			goto out;
		default:
			if (optopt)
				ctl_err("option -%c: unknown or missing its value", optopt);
			else
				ctl_err("option '%s': unknown or missing its value",
					argv[optind - 1]);
			fputs("try 'sluicectl --help'\n", stderr);
			goto out;
		}
	}
	char *const *args = argv + optind;
	int nargs = argc - optind;
	if (nargs < 2) {
		ctl_err("%s", nargs ? "missing the subcommand" : "missing the command");
		fputs("try 'sluicectl --help'\n", stderr);
		goto out;
	}
	const char *what = args[0], *verb = args[1];
	char *const *names = args + 2;
	int name_count = nargs - 2;
	bool topics = !strcmp(what, "topics"), groups = !strcmp(what, "groups");
	bool list = !strcmp(verb, "list"), create = topics && !strcmp(verb, "create");
	bool describe = !strcmp(verb, "describe"), delete = !strcmp(verb, "delete");
	if (!topics && !groups) {
		ctl_err("unknown command '%s' (topics or groups)", what);
		goto out;
	}
	if (!list && !create && !describe && !delete) {
		ctl_err("unknown subcommand '%s %s' (%s)", what, verb,
			topics ? "list, create, describe or delete" : "list, describe or delete");
		goto out;
	}
	if (list && name_count) {
		ctl_err("%s list takes no argument ('%s')", what, names[0]);
		goto out;
	}
	if (create && name_count != 1) {
		ctl_err("topics create takes one topic name");
		goto out;
	}
	if ((describe || delete) && name_count == 0) {
		ctl_err("%s %s needs at least one %s", what, verb, topics ? "topic" : "group");
		goto out;
	}
	if (!create && (partitions != -1 || config_count)) {
		ctl_err("--partitions and --config go with 'topics create' only");
		goto out;
	}
	if (!names_valid(topics ? "topic" : "group", names, name_count,
			 topics ? CTL_TOPIC_NAME_MAX : CTL_GROUP_ID_MAX))
		goto out;
	if (!ctl_brokers_valid(c.brokers))
		goto out;

	status = CTL_EXIT_ERROR;
	if (ctl_bootstrap(&c))
		goto out;
	if (topics && list) {
		status = topics_list(&c);
	} else if (create) {
		struct ct_ask ask = {.name = names[0],
				     .partitions = (int32_t)partitions,
				     .configs = configs,
				     .config_count = config_count,
				     .timeout_ms = c.timeout_ms};
		status = topics_create(&c, &ask);
	} else if (topics && describe) {
		status = topics_describe(&c, names, name_count);
	} else if (topics && delete) {
		struct dt_ask ask = {
		    .names = names, .count = name_count, .timeout_ms = c.timeout_ms};
		status = topics_delete(&c, &ask);
	} else if (list) {
		status = groups_list(&c);
	} else if (describe) {
		status = groups_describe(&c, names, name_count);
	} else {
		status = groups_delete(&c, names, name_count);
	}
out:
	fflush(stdout);
	ctl_conns_close(&c);
	arena_free_all();
	return status;
}
