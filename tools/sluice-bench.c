/*
 * tools/sluice-bench.c: a Kafka-protocol load generator on io_uring (its own client, not
 * librdkafka), for sluice and any Kafka-compatible broker (Kafka 2.3+: it speaks
 * Metadata v4, CreateTopics v0, ListOffsets v1, Produce v7 and Fetch v11, all
 * non-flexible). It bootstraps with blocking sockets: CreateTopics (an existing topic is
 * fine; a broker without it falls back on Metadata's auto-create), then Metadata until
 * every partition has a leader. Then one thread runs one io_uring loop (io/loop.h) with
 * --connections connections to each leader broker (for sluice: each shard), each
 * partition's traffic going to its leader over one of them. Modes:
 *   produce  builds RecordBatch v2 batches (tools/bench_batch.h) of up to --batch-bytes
 *            per partition (copies of one batch, rebuilt every BENCH_TEMPLATE_MS with a
 *            fresh timestamp) and pipelines Produce requests, --window in flight per
 *            connection; latency = request sent -> response received.
 *   consume  Fetch long-polls from offset 0 (or the end with --from-latest), counting
 *            records and bytes; latency = fetch round trip.
 *   e2e      both at once in one loop; the consumer starts at the end and measures
 *            each record's end-to-end latency from the stamp the producer put in it.
 * One progress line a second on stderr, then totals and latency percentiles from a
 * log-linear histogram (tools/bench_hist.h) on stdout; with --json the last stdout line
 * is one JSON object. It does not do compression, idempotence, transactions, consumer
 * groups, TLS or SASL. A partition answering NOT_LEADER_OR_FOLLOWER,
 * UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE (a leader moved, a topic was
 * re-created) is not an error: its batch counts as "retried" (with --messages its records
 * are sent again), Metadata is refreshed (at most every BENCH_META_REFRESH_MS, from the
 * bootstrap brokers) and each partition's traffic is routed to its new leader, opening
 * connections to brokers not seen before. Other failed batches count as errors and are
 * not retried.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/limits.h"
#include "core/logger.h"
#include "io/loop.h"
#include "net/kafka.h"
#include "net/wire.h"
#include "tools/bench_batch.h"
#include "tools/bench_hist.h"

#define BENCH_BROKERS_MAX	 256u	  /* brokers Metadata may list (sluice: one per shard) */
#define BENCH_CONNECTIONS_MAX	 64u	  /* --connections per broker */
#define BENCH_WINDOW_MAX	 64u	  /* --window: requests in flight per connection */
#define BENCH_TOPICS_MAX	 100000u  /* --topics */
#define BENCH_PARTITIONS_MAX	 1000000u /* topics x partitions */
#define BENCH_MESSAGE_BYTES_MAX	 (1u << 20)
#define BENCH_BATCH_BYTES_MAX	 LIMITS_BATCH_BYTES_MAX
#define BENCH_REQUEST_BYTES	 (1u << 20) /* a Produce request stops growing past this */
#define BENCH_FETCH_PART_BYTES	 (1u << 20) /* Fetch partition_max_bytes */
#define BENCH_FETCH_BYTES	 (4u << 20) /* Fetch max_bytes */
#define BENCH_FETCH_WAIT_MS	 500	    /* Fetch long-poll */
#define BENCH_RX_SLACK		 (64u << 10)
#define BENCH_META_BYTES	 (64u << 20) /* largest bootstrap response taken */
#define BENCH_BOOT_TIMEOUT_MS	 10000	     /* bootstrap: topics must have leaders by then */
#define BENCH_DRAIN_NS		 (10ull * 1000000000ull) /* wait for in-flight after the end */
#define BENCH_PRODUCE_TIMEOUT_MS 30000
#define BENCH_TEMPLATE_MS	 100 /* produce: a batch template is rebuilt this often */
/* The tick that paces a --rate producer (and checks linger): 100 us, so batches leave
 * about as they fill, as a client's do (a 64 KiB batch of 1 KiB records fills in ~96 us
 * per partition at 1.33 M msgs/s), rather than in one 1.3 MB burst per millisecond,
 * which also broke --linger-us below 1 ms. Measured, e2e 1 KiB acks=1 at 1.33 M msgs/s
 * against the same broker, 4 interleaved pairs: 1 ms tick p50 0.85-0.91 ms, p99
 * 1.97-2.29 ms; 100 us tick p50 0.49-0.60 ms, p99 1.18-1.99 ms. Without --rate the
 * window paces the producer (linger applies with --rate only) and the tick only
 * checks the end: 1 ms. */
#define BENCH_RATE_TICK_NS 100000ull
#define BENCH_TICK_NS	   1000000ull
#define BENCH_META_REFRESH_MS                                                                      \
	100 /* at most one Metadata refresh per this (Kafka's                                      \
	     * retry.backoff.ms default) */
#define BENCH_TOPIC_NAME_MAX 200u
#define BENCH_CLIENT_ID	     "sluice-bench"
#define NS_PER_S	     1000000000ull

enum bench_mode { MODE_PRODUCE, MODE_CONSUME, MODE_E2E };

struct options {
	enum bench_mode mode;
	char brokers[1024];	/* host:port[,host:port...] */
	char topic_prefix[128]; /* topics are PREFIX-0 .. PREFIX-(N-1) */
	uint32_t topics;	/* --topics */
	uint32_t partitions;	/* --partitions-per-topic (for creation) */
	uint32_t message_bytes; /* --message-size */
	uint32_t batch_bytes;	/* --batch-bytes */
	uint32_t linger_us;	/* --linger-us: wait this long for a full batch (rate mode) */
	int16_t acks;		/* --acks 0, 1, -1 */
	uint32_t connections;	/* --connections per broker */
	uint32_t window;	/* --window requests in flight per connection */
	uint64_t rate;		/* --rate msgs/s, 0 = max */
	double duration_s;	/* --duration, 0 = until --messages */
	uint64_t messages;	/* --messages, 0 = until --duration */
	bool from_latest;	/* consume: start at the end */
	bool json;		/* --json */
};

struct broker {
	int32_t node_id; /* Metadata's id (sluice: the shard) */
	char host[256];	 /* advertised host */
	int32_t port;	 /* advertised port */
};

struct part {
	uint32_t topic;	      /* index into topic names */
	int32_t index;	      /* partition number */
	int32_t leader;	      /* node id of its leader */
	int64_t fetch_offset; /* consumer: next offset to fetch */
};

struct inflight {
	uint64_t sent_ns; /* when the request was queued for send */
	uint32_t records; /* records per batch in it (produce) */
	uint32_t batches; /* batches in it (produce) */
	uint64_t bytes;	  /* batch bytes in it */
};

struct conn {
	int fd;					/* socket */
	uint32_t id;				/* index in bench.conns */
	int32_t node_id;			/* the broker it is connected to */
	bool consumer;				/* a Fetch connection, else Produce */
	uint32_t *parts;			/* indexes into bench.parts */
	uint32_t part_count;			/* entries of parts */
	uint32_t parts_cap;			/* allocated entries of parts */
	uint32_t cursor;			/* produce: next partition to put in a request */
	uint8_t *tx;				/* requests waiting for / in the send */
	size_t tx_cap;				/* bytes of tx */
	size_t tx_len;				/* bytes queued */
	size_t tx_sent;				/* of them, sent */
	bool sending;				/* a send is submitted */
	uint8_t *rx;				/* received bytes */
	size_t rx_cap;				/* bytes of rx */
	size_t rx_len;				/* bytes held */
	struct inflight ring[BENCH_WINDOW_MAX]; /* requests awaiting responses, FIFO */
	uint32_t head;				/* oldest in ring */
	uint32_t count;				/* entries in ring */
	int32_t next_corr;			/* correlation id of the next request */
	uint64_t last_send_ns; /* produce: when a request was last built (linger) */
	bool dead;	       /* an I/O or protocol error closed it */
};

struct totals {
	uint64_t msgs;	   /* records acknowledged (produce) or received (consume) */
	uint64_t bytes;	   /* batch bytes of them */
	uint64_t errors;   /* failed partitions, protocol and I/O errors */
	uint64_t retried;  /* batches (fetches: partitions) refused because the leader moved */
	uint64_t requests; /* responses received */
};

struct bench {
	struct options o;
	struct loop loop;
	struct broker brokers[BENCH_BROKERS_MAX];
	uint32_t broker_count;
	char (*topic_names)[BENCH_TOPIC_NAME_MAX + 1];
	struct part *parts;
	uint32_t part_count;
	struct conn *conns;
	uint32_t conn_count;
	uint32_t conn_cap;	    /* allocated entries of conns */
	bool running;		    /* the loop runs: new connections get a recv */
	bool meta_stale;	    /* a partition's leader moved: refresh Metadata */
	uint64_t meta_next_ns;	    /* no refresh before this */
	uint64_t meta_refreshes;    /* Metadata refreshes done while running */
	uint8_t *meta_buf;	    /* BENCH_META_BYTES for refreshes, allocated at the first */
	uint8_t *tmpl;		    /* produce mode: the batch copied into requests */
	uint32_t tmpl_records;	    /* its record count, 0 = none built */
	uint64_t tmpl_ns;	    /* when it was built */
	uint64_t run_id;	    /* stamps of this run, to tell them from older records */
	uint32_t records_per_batch; /* from --batch-bytes and --message-size */
	size_t batch_cap;	    /* bytes of the largest batch */
	uint64_t planned;	    /* produce: records put in requests */
	uint64_t start_ns;	    /* when the load started */
	uint64_t end_ns;	    /* when the last counted response arrived */
	uint64_t stop_ns;	    /* past this no new requests (duration), 0 = none */
	bool stopping;		    /* no new requests */
	uint64_t stop_since_ns;	    /* when stopping was set */
	struct totals prod, cons;   /* running totals */
	struct totals prod_last, cons_last; /* at the previous progress line */
	uint64_t in_flight;		    /* requests awaiting a response */
	struct bench_hist lat;		    /* produce or fetch latency, ns */
	struct bench_hist e2e;		    /* e2e latency, ns */
	struct loop_timer tick;		    /* rate, linger, stop checks (BENCH_*TICK_NS) */
	struct loop_timer second;	    /* progress line */
	uint32_t seconds;		    /* progress lines printed */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = interrupted + 1; /* a second signal skips the drain */
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sluice-bench produce|consume|e2e [options]\n"
	    "  --brokers HOST:PORT[,..]     bootstrap brokers (default 127.0.0.1:9092)\n"
	    "  --topic-prefix NAME          topics are NAME-0..NAME-(N-1) (default sluice-bench)\n"
	    "  --topics N                   topics (default 1)\n"
	    "  --partitions-per-topic N     partitions of each created topic (default 2)\n"
	    "  --message-size B             record value bytes (default 100)\n"
	    "  --batch-bytes B              records per batch up to B bytes (default 1048576)\n"
	    "  --linger-us U                with --rate: wait up to U for a full batch (default "
	    "1000)\n"
	    "  --acks 0|1|-1                Produce acks (default 1)\n"
	    "  --connections N              connections per broker per role (default 1)\n"
	    "  --window N                   requests in flight per connection (default 8)\n"
	    "  --rate R                     messages/s, 0 = as fast as possible (default 0)\n"
	    "  --duration S                 seconds of load (default 5 unless --messages)\n"
	    "  --messages N                 stop after N messages (acked / consumed)\n"
	    "  --from-latest                consume: start at the end, not offset 0\n"
	    "  --json                       last stdout line: one JSON object\n"
	    "  --help\n"
	    "produce latency: request sent -> response; consume: fetch round trip;\n"
	    "e2e: producer stamp -> record consumed (same process clock).\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"brokers", required_argument, 0, 'b'},
	    {"topic-prefix", required_argument, 0, 'P'},
	    {"topics", required_argument, 0, 't'},
	    {"partitions-per-topic", required_argument, 0, 'p'},
	    {"message-size", required_argument, 0, 's'},
	    {"batch-bytes", required_argument, 0, 'B'},
	    {"linger-us", required_argument, 0, 'l'},
	    {"acks", required_argument, 0, 'a'},
	    {"connections", required_argument, 0, 'c'},
	    {"window", required_argument, 0, 'w'},
	    {"rate", required_argument, 0, 'r'},
	    {"duration", required_argument, 0, 'd'},
	    {"messages", required_argument, 0, 'm'},
	    {"from-latest", no_argument, 0, 'L'},
	    {"json", no_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	memset(o, 0, sizeof(*o));
	snprintf(o->brokers, sizeof(o->brokers), "127.0.0.1:9092");
	snprintf(o->topic_prefix, sizeof(o->topic_prefix), "sluice-bench");
	o->topics = 1;
	o->partitions = 2;
	o->message_bytes = 100;
	/* Large batches by default: with acks=-1 each connection keeps at most window x
	 * batch bytes waiting for an fdatasync round trip, and 8 x 16 KiB measured that
	 * window (326 MB/s of 1 KiB records on a disk fio writes at 1.7-3 GB/s), not the
	 * broker; 1 MiB is the batch.size a tuned Kafka producer uses. */
	o->batch_bytes = 1u << 20;
	o->linger_us = 1000;
	o->acks = 1;
	o->connections = 1;
	o->window = 8;
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		usage(stderr);
		return -EINVAL;
	}
	if (strcmp(argv[1], "produce") == 0)
		o->mode = MODE_PRODUCE;
	else if (strcmp(argv[1], "consume") == 0)
		o->mode = MODE_CONSUME;
	else if (strcmp(argv[1], "e2e") == 0)
		o->mode = MODE_E2E;
	else {
		fprintf(stderr, "sluice-bench: unknown mode '%s'\n", argv[1]);
		return -EINVAL;
	}
	int c, longindex = 0;
	uint64_t v;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, &longindex)) != -1) {
		int ret = 0;
		switch (c) {
		case 'b':
			snprintf(o->brokers, sizeof(o->brokers), "%s", optarg);
			break;
		case 'P':
			if (strlen(optarg) == 0 || strlen(optarg) > 100)
				ret = -EINVAL;
			else
				snprintf(o->topic_prefix, sizeof(o->topic_prefix), "%s", optarg);
			break;
		case 't':
			ret = parse_u64(optarg, 1, BENCH_TOPICS_MAX, &v);
			o->topics = (uint32_t)v;
			break;
		case 'p':
			ret = parse_u64(optarg, 1, BENCH_PARTITIONS_MAX, &v);
			o->partitions = (uint32_t)v;
			break;
		case 's':
			ret = parse_u64(optarg, 0, BENCH_MESSAGE_BYTES_MAX, &v);
			o->message_bytes = (uint32_t)v;
			break;
		case 'B':
			ret = parse_u64(optarg, BATCH_HEADER_BYTES + 8, BENCH_BATCH_BYTES_MAX, &v);
			o->batch_bytes = (uint32_t)v;
			break;
		case 'l':
			ret = parse_u64(optarg, 0, 10000000, &v);
			o->linger_us = (uint32_t)v;
			break;
		case 'a':
			if (strcmp(optarg, "0") == 0 || strcmp(optarg, "1") == 0 ||
			    strcmp(optarg, "-1") == 0 || strcmp(optarg, "all") == 0)
				o->acks = strcmp(optarg, "all") == 0 ? -1 : (int16_t)atoi(optarg);
			else
				ret = -EINVAL;
			break;
		case 'c':
			ret = parse_u64(optarg, 1, BENCH_CONNECTIONS_MAX, &v);
			o->connections = (uint32_t)v;
			break;
		case 'w':
			ret = parse_u64(optarg, 1, BENCH_WINDOW_MAX, &v);
			o->window = (uint32_t)v;
			break;
		case 'r':
			ret = parse_u64(optarg, 0, UINT32_MAX, &v);
			o->rate = v;
			break;
		case 'd': {
			char *end;
			o->duration_s = strtod(optarg, &end);
			if (end == optarg || *end || !(o->duration_s > 0) || o->duration_s > 86400)
				ret = -EINVAL;
			break;
		}
		case 'm':
			ret = parse_u64(optarg, 1, UINT64_MAX / 2, &v);
			o->messages = v;
			break;
		case 'L':
			o->from_latest = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (ret) {
			fprintf(stderr, "sluice-bench: bad value '%s' for --%s\n", optarg,
				longopts[longindex].name);
			return ret;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sluice-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->duration_s == 0 && o->messages == 0)
		o->duration_s = 5;
	if (o->mode == MODE_E2E && o->message_bytes < BENCH_BATCH_STAMP_BYTES) {
		fprintf(stderr, "sluice-bench: e2e needs --message-size >= %u\n",
			BENCH_BATCH_STAMP_BYTES);
		return -EINVAL;
	}
	if (o->mode == MODE_E2E)
		o->from_latest = true;
	return 0;
}

/* ---- blocking bootstrap ---- */

static int tcp_connect(const char *host, int32_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char service[16];
	snprintf(service, sizeof(service), "%d", (int)port);
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai)
		return -EHOSTUNREACH;
	int ret = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			ret = fd;
			break;
		}
		ret = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return ret;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Sends the framed request in W and reads its response body (after the correlation id)
 * into RESP (cap RESP_CAP); returns the body length or -errno. */
static long sync_call(int fd, struct wire_writer *w, size_t frame_at, int32_t corr, uint8_t *resp,
		      size_t resp_cap)
{
	if (wire_write_response_end(w, frame_at, 0))
		return -ENOBUFS;
	int ret = write_all(fd, w->buf, w->len);
	if (ret)
		return ret;
	uint8_t hdr[8];
	ret = read_all(fd, hdr, 8);
	if (ret)
		return ret;
	struct wire_reader r;
	wire_reader_init(&r, hdr, 8);
	int32_t size = wire_read_i32(&r);
	int32_t got_corr = wire_read_i32(&r);
	if (size < 4 || (size_t)size - 4 > resp_cap || got_corr != corr)
		return -EBADMSG;
	ret = read_all(fd, resp, (size_t)size - 4);
	return ret ? ret : (long)size - 4;
}

/* Starts a request frame in W: size, api key, version, correlation id, client id. */
static size_t request_begin(struct wire_writer *w, int16_t key, int16_t version, int32_t corr)
{
	size_t at = wire_writer_reserve_i32(w);
	wire_write_i16(w, key);
	wire_write_i16(w, version);
	wire_write_i32(w, corr);
	wire_write_string(w, BENCH_CLIENT_ID, strlen(BENCH_CLIENT_ID));
	return at;
}

static int bootstrap_connect(struct bench *b)
{
	char list[sizeof(b->o.brokers)];
	snprintf(list, sizeof(list), "%s", b->o.brokers);
	char *save = NULL;
	int last = -EINVAL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		if (!colon)
			return -EINVAL;
		*colon = '\0';
		char *host = tok;
		if (host[0] == '[') { /* [v6]:port */
			host++;
			char *close_br = strchr(host, ']');
			if (close_br)
				*close_br = '\0';
		}
		int fd = tcp_connect(host, atoi(colon + 1));
		if (fd >= 0)
			return fd;
		last = fd;
		LOG_WARN("bench: bootstrap connect failed: broker=%s:%s err=%s", host, colon + 1,
			 strerror(-fd));
	}
	return last;
}

static int create_topics(struct bench *b, int fd, uint8_t *buf, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	size_t at = request_begin(&w, KAFKA_API_CREATE_TOPICS, 0, 1);
	wire_write_array_len(&w, (int32_t)b->o.topics);
	for (uint32_t t = 0; t < b->o.topics; t++) {
		wire_write_string(&w, b->topic_names[t], strlen(b->topic_names[t]));
		wire_write_i32(&w, (int32_t)b->o.partitions);
		wire_write_i16(&w, 1);
		wire_write_array_len(&w, 0); /* assignments */
		wire_write_array_len(&w, 0); /* configs */
	}
	wire_write_i32(&w, BENCH_BOOT_TIMEOUT_MS);
	long n = sync_call(fd, &w, at, 1, buf, cap);
	if (n < 0)
		return (int)n;
	struct wire_reader r;
	wire_reader_init(&r, buf, (size_t)n);
	int32_t count = wire_read_array_len(&r, 4);
	uint32_t created = 0, existed = 0;
	for (int32_t i = 0; i < count; i++) {
		struct wire_str name = wire_read_string(&r);
		int16_t err = wire_read_i16(&r);
		if (err == KERR_NONE)
			created++;
		else if (err == KERR_TOPIC_ALREADY_EXISTS)
			existed++;
		else
			LOG_WARN("bench: CreateTopics refused: topic=%.*s err=%s", (int)name.len,
				 name.ptr ? name.ptr : "", kafka_error_name(err));
	}
	if (!wire_reader_ok(&r))
		return -EBADMSG;
	LOG_INFO("bench: topics created=%u existing=%u", created, existed);
	return 0;
}

static int topic_index(struct bench *b, struct wire_str name)
{
	/* Names are PREFIX-N: parse N rather than search. */
	size_t plen = strlen(b->o.topic_prefix);
	if (!name.ptr || name.len <= plen + 1 || memcmp(name.ptr, b->o.topic_prefix, plen) ||
	    name.ptr[plen] != '-')
		return -1;
	uint64_t v = 0;
	for (size_t i = plen + 1; i < name.len; i++) {
		if (name.ptr[i] < '0' || name.ptr[i] > '9' || v > BENCH_TOPICS_MAX)
			return -1;
		v = v * 10 + (uint64_t)(name.ptr[i] - '0');
	}
	return v < b->o.topics ? (int)v : -1;
}

/* One Metadata v4 round: fills brokers and parts; returns 0 when every topic has every
 * partition led, -EAGAIN when not yet, or -errno. */
static int metadata(struct bench *b, int fd, uint8_t *buf, size_t cap)
{
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	size_t at = request_begin(&w, KAFKA_API_METADATA, 4, 2);
	wire_write_array_len(&w, (int32_t)b->o.topics);
	for (uint32_t t = 0; t < b->o.topics; t++)
		wire_write_string(&w, b->topic_names[t], strlen(b->topic_names[t]));
	wire_write_bool(&w, true); /* allow_auto_topic_creation */
	long n = sync_call(fd, &w, at, 2, buf, cap);
	if (n < 0)
		return (int)n;
	struct wire_reader r;
	wire_reader_init(&r, buf, (size_t)n);
	(void)wire_read_i32(&r); /* throttle */
	int32_t nb = wire_read_array_len(&r, 4 + 2 + 4 + 2);
	if (nb > (int32_t)BENCH_BROKERS_MAX)
		return -E2BIG;
	b->broker_count = 0;
	for (int32_t i = 0; i < nb; i++) {
		struct broker *br = &b->brokers[b->broker_count++];
		br->node_id = wire_read_i32(&r);
		struct wire_str host = wire_read_string(&r);
		br->port = wire_read_i32(&r);
		(void)wire_read_nullable_string(&r); /* rack */
		snprintf(br->host, sizeof(br->host), "%.*s", (int)host.len,
			 host.ptr ? host.ptr : "");
	}
	(void)wire_read_nullable_string(&r); /* cluster id */
	(void)wire_read_i32(&r);	     /* controller */
	int32_t nt = wire_read_array_len(&r, 2 + 2 + 1 + 4);
	b->part_count = 0;
	bool missing = false;
	uint32_t seen_topics = 0;
	for (int32_t i = 0; i < nt && wire_reader_ok(&r); i++) {
		int16_t terr = wire_read_i16(&r);
		struct wire_str name = wire_read_string(&r);
		(void)wire_read_bool(&r);
		int32_t np = wire_read_array_len(&r, 2 + 4 + 4 + 4 + 4);
		int t = topic_index(b, name);
		if (terr != KERR_NONE || t < 0 || np == 0)
			missing = true;
		else
			seen_topics++;
		for (int32_t p = 0; p < np; p++) {
			int16_t perr = wire_read_i16(&r);
			int32_t index = wire_read_i32(&r);
			int32_t leader = wire_read_i32(&r);
			int32_t nr = wire_read_array_len(&r, 4);
			wire_skip(&r, (size_t)nr * 4);
			int32_t ni = wire_read_array_len(&r, 4);
			wire_skip(&r, (size_t)ni * 4);
			if (t < 0 || terr != KERR_NONE)
				continue;
			if (perr != KERR_NONE || leader < 0) {
				missing = true;
				continue;
			}
			if (b->part_count == BENCH_PARTITIONS_MAX)
				return -E2BIG;
			b->parts[b->part_count++] =
			    (struct part){.topic = (uint32_t)t, .index = index, .leader = leader};
		}
	}
	if (!wire_reader_ok(&r))
		return -EBADMSG;
	if (missing || seen_topics < b->o.topics)
		return -EAGAIN;
	return 0;
}

static int part_cmp(const void *a, const void *bb)
{
	const struct part *x = a, *y = bb;
	if (x->topic != y->topic)
		return x->topic < y->topic ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* ListOffsets v1 (latest) for every partition led by BROKER's node; sets fetch_offset. */
static int list_offsets_latest(struct bench *b, const struct broker *br, uint8_t *buf, size_t cap)
{
	int fd = tcp_connect(br->host, br->port);
	if (fd < 0)
		return fd;
	struct wire_writer w;
	wire_writer_init(&w, buf, cap);
	size_t at = request_begin(&w, KAFKA_API_LIST_OFFSETS, 1, 3);
	wire_write_i32(&w, -1);
	size_t count_at = wire_writer_reserve_i32(&w);
	int32_t topics = 0;
	for (uint32_t i = 0; i < b->part_count;) {
		uint32_t t = b->parts[i].topic;
		size_t pcount_at = 0;
		int32_t pc = 0;
		for (; i < b->part_count && b->parts[i].topic == t; i++) {
			if (b->parts[i].leader != br->node_id)
				continue;
			if (pc == 0) {
				wire_write_string(&w, b->topic_names[t], strlen(b->topic_names[t]));
				pcount_at = wire_writer_reserve_i32(&w);
				topics++;
			}
			wire_write_i32(&w, b->parts[i].index);
			wire_write_i64(&w, -1); /* latest */
			pc++;
		}
		if (pc)
			wire_writer_patch_i32(&w, pcount_at, pc);
	}
	wire_writer_patch_i32(&w, count_at, topics);
	long n = sync_call(fd, &w, at, 3, buf, cap);
	close(fd);
	if (n < 0)
		return (int)n;
	struct wire_reader r;
	wire_reader_init(&r, buf, (size_t)n);
	int32_t nt = wire_read_array_len(&r, 2 + 4);
	for (int32_t i = 0; i < nt; i++) {
		struct wire_str name = wire_read_string(&r);
		int t = topic_index(b, name);
		int32_t np = wire_read_array_len(&r, 4 + 2 + 8 + 8);
		for (int32_t p = 0; p < np; p++) {
			int32_t index = wire_read_i32(&r);
			int16_t err = wire_read_i16(&r);
			(void)wire_read_i64(&r);
			int64_t offset = wire_read_i64(&r);
			if (err != KERR_NONE) {
				LOG_WARN("bench: ListOffsets failed: partition=%d err=%s", index,
					 kafka_error_name(err));
				return -EIO;
			}
			struct part key = {.topic = (uint32_t)t, .index = index};
			struct part *found =
			    t < 0 ? NULL
				  : bsearch(&key, b->parts, b->part_count, sizeof(key), part_cmp);
			if (found)
				found->fetch_offset = offset;
		}
	}
	return wire_reader_ok(&r) ? 0 : -EBADMSG;
}

static int bootstrap(struct bench *b)
{
	uint8_t *buf = malloc(BENCH_META_BYTES);
	if (!buf)
		return -ENOMEM;
	int ret;
	int fd = bootstrap_connect(b);
	if (fd < 0) {
		ret = fd;
		LOG_ERROR("bench: no bootstrap broker reachable: brokers=%s err=%s", b->o.brokers,
			  strerror(-fd));
		goto out_free;
	}
	if (b->o.mode != MODE_CONSUME) {
		ret = create_topics(b, fd, buf, BENCH_META_BYTES);
		if (ret)
			LOG_WARN("bench: CreateTopics failed (auto-create relied on): err=%s",
				 strerror(-ret));
		if (ret && ret != -EBADMSG) {
			close(fd);
			fd = bootstrap_connect(b);
			if (fd < 0) {
				ret = fd;
				goto out_free;
			}
		}
	}
	uint64_t deadline = loop_now_ns() + BENCH_BOOT_TIMEOUT_MS * 1000000ull;
	for (;;) {
		ret = metadata(b, fd, buf, BENCH_META_BYTES);
		if (ret != -EAGAIN || loop_now_ns() > deadline)
			break;
		usleep(100000);
	}
	close(fd);
	if (ret) {
		LOG_ERROR("bench: metadata incomplete: err=%s", strerror(-ret));
		goto out_free;
	}
	qsort(b->parts, b->part_count, sizeof(*b->parts), part_cmp);
	if (b->o.mode != MODE_CONSUME && b->part_count != b->o.topics * b->o.partitions) {
		/* CreateTopics refused (a limit) and auto-creation made its default, or the
		 * topics existed with another count: the run would not measure what was asked. */
		LOG_ERROR("bench: the topics have %u partitions in all, not the %u asked for "
			  "(--topics %u x --partitions-per-topic %u); see the broker's log, or "
			  "use another --topic-prefix",
			  b->part_count, b->o.topics * b->o.partitions, b->o.topics,
			  b->o.partitions);
		ret = -EINVAL;
		goto out_free;
	}
	if (b->o.from_latest) {
		for (uint32_t i = 0; i < b->broker_count && !ret; i++)
			ret = list_offsets_latest(b, &b->brokers[i], buf, BENCH_META_BYTES);
		if (ret)
			LOG_ERROR("bench: ListOffsets failed: err=%s", strerror(-ret));
	}
out_free:
	free(buf);
	return ret;
}

/* ---- the io_uring client ---- */

enum { OP_RECV = 0, OP_SEND = 1 };

static uint64_t conn_udata(const struct conn *c, int op)
{
	return loop_udata(LOOP_KIND_TEST, ((uint64_t)c->id << 1) | (uint64_t)op);
}

static void conn_fail(struct bench *b, struct conn *c, const char *why, int err)
{
	if (c->dead)
		return;
	LOG_ERROR("bench: connection failed: conn=%u why=%s err=%s", c->id, why,
		  err ? strerror(-err) : "-");
	c->dead = true;
	b->in_flight -= c->count;
	if (c->consumer)
		b->cons.errors++;
	else
		b->prod.errors += c->count ? c->count : 1;
	c->count = 0;
	shutdown(c->fd, SHUT_RDWR);
}

static void conn_submit_recv(struct bench *b, struct conn *c)
{
	struct io_uring_sqe *sqe = loop_get_sqe(&b->loop);
	io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
	io_uring_sqe_set_data64(sqe, conn_udata(c, OP_RECV));
}

static void conn_submit_send(struct bench *b, struct conn *c)
{
	ASSERT(!c->sending && c->tx_sent < c->tx_len);
	struct io_uring_sqe *sqe = loop_get_sqe(&b->loop);
	io_uring_prep_send(sqe, c->fd, c->tx + c->tx_sent, c->tx_len - c->tx_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, conn_udata(c, OP_SEND));
	c->sending = true;
}

static uint64_t produce_budget(struct bench *b, uint64_t now, bool *rate_limited)
{
	uint64_t budget = UINT64_MAX;
	*rate_limited = false;
	if (b->o.messages)
		budget = b->o.messages > b->planned ? b->o.messages - b->planned : 0;
	if (b->o.rate) {
		uint64_t allowed =
		    (uint64_t)((long double)(now - b->start_ns) * b->o.rate / NS_PER_S);
		uint64_t tokens = allowed > b->planned ? allowed - b->planned : 0;
		if (tokens < budget) {
			budget = tokens;
			*rate_limited = true;
		}
	}
	return budget;
}

/* Appends one Produce request to C's tx; returns false when there is nothing to send. */
static bool produce_build(struct bench *b, struct conn *c, uint64_t now)
{
	if (c->part_count == 0)
		return false; /* its broker leads nothing now (after a Metadata refresh) */
	bool rate_limited;
	uint64_t budget = produce_budget(b, now, &rate_limited);
	if (budget == 0)
		return false;
	uint32_t rpb = b->records_per_batch;
	uint32_t k = rpb, nb = c->part_count;
	uint64_t want = (uint64_t)rpb * c->part_count;
	if (budget < want) {
		if (rate_limited && now - c->last_send_ns < (uint64_t)b->o.linger_us * 1000)
			return false;
		uint64_t per = budget / c->part_count;
		k = per ? (uint32_t)per : 1;
		uint64_t batches = budget / k;
		nb = batches < c->part_count ? (uint32_t)batches : c->part_count;
	}
	size_t batch_len = bench_batch_bytes(k, b->o.message_bytes);
	uint32_t fit = (uint32_t)(BENCH_REQUEST_BYTES / (batch_len + 64));
	if (fit == 0)
		fit = 1;
	if (nb > fit)
		nb = fit;
	size_t need = 64 + (size_t)nb * (batch_len + 2 * BENCH_TOPIC_NAME_MAX + 32);
	if (c->tx_cap - c->tx_len < need)
		return false;
	struct wire_writer w;
	wire_writer_init(&w, c->tx + c->tx_len, c->tx_cap - c->tx_len);
	int32_t corr = c->next_corr++;
	size_t at = request_begin(&w, KAFKA_API_PRODUCE, 7, corr);
	wire_write_nullable_string(&w, NULL, 0); /* transactional id */
	wire_write_i16(&w, b->o.acks);
	wire_write_i32(&w, BENCH_PRODUCE_TIMEOUT_MS);
	size_t topics_at = wire_writer_reserve_i32(&w);
	int32_t topics = 0;
	int64_t ts_ms = (int64_t)time(NULL) * 1000;
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	ts_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
	uint32_t prev_topic = UINT32_MAX;
	size_t pcount_at = 0;
	int32_t pcount = 0;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < nb; i++) {
		/* The cursor walks the partitions in topic order; a wrap starts a new topic
		 * entry only if the topic changes. */
		struct part *p = &b->parts[c->parts[c->cursor]];
		c->cursor = (c->cursor + 1) % c->part_count;
		if (p->topic != prev_topic) {
			if (pcount)
				wire_writer_patch_i32(&w, pcount_at, pcount);
			const char *name = b->topic_names[p->topic];
			wire_write_string(&w, name, strlen(name));
			pcount_at = wire_writer_reserve_i32(&w);
			pcount = 0;
			topics++;
			prev_topic = p->topic;
		}
		wire_write_i32(&w, p->index);
		wire_write_i32(&w, (int32_t)batch_len);
		if (!wire_writer_ok(&w) || w.cap - w.len < batch_len)
			return false;
		if (b->o.mode == MODE_E2E) {
			/* every record carries its send time */
			long len =
			    bench_batch_build(w.buf + w.len, batch_len, k, b->o.message_bytes,
					      ts_ms, b->run_id, loop_now_ns());
			ASSERT(len == (long)batch_len);
		} else {
			/* produce: copies of one batch (its CRC computed once), rebuilt
			 * every BENCH_TEMPLATE_MS so timestamps stay current; the client's
			 * CPU goes to sending, as a real producer's does between batches */
			if (b->tmpl_records != k ||
			    now - b->tmpl_ns >= BENCH_TEMPLATE_MS * 1000000ull) {
				long len =
				    bench_batch_build(b->tmpl, b->batch_cap, k, b->o.message_bytes,
						      ts_ms, b->run_id, now);
				ASSERT(len == (long)batch_len);
				b->tmpl_records = k;
				b->tmpl_ns = now;
			}
			memcpy(w.buf + w.len, b->tmpl, batch_len);
		}
		w.len += batch_len;
		pcount++;
		bytes += batch_len;
	}
	if (pcount)
		wire_writer_patch_i32(&w, pcount_at, pcount);
	wire_writer_patch_i32(&w, topics_at, topics);
	if (wire_write_response_end(&w, at, 0))
		return false;
	c->tx_len += w.len;
	c->last_send_ns = now;
	b->planned += (uint64_t)k * nb;
	if (b->o.acks == 0) {
		/* No response will come: count it as done once queued. */
		b->prod.msgs += (uint64_t)k * nb;
		b->prod.bytes += bytes;
		b->end_ns = now;
		return true;
	}
	struct inflight *f = &c->ring[(c->head + c->count) % BENCH_WINDOW_MAX];
	*f = (struct inflight){.sent_ns = now, .records = k, .batches = nb, .bytes = bytes};
	c->count++;
	b->in_flight++;
	return true;
}

/* Appends one Fetch v11 request for all of C's partitions. */
static bool fetch_build(struct bench *b, struct conn *c, uint64_t now)
{
	if (c->part_count == 0)
		return false;
	size_t need = 128 + (size_t)c->part_count * (BENCH_TOPIC_NAME_MAX + 40);
	if (c->tx_cap - c->tx_len < need)
		return false;
	struct wire_writer w;
	wire_writer_init(&w, c->tx + c->tx_len, c->tx_cap - c->tx_len);
	size_t at = request_begin(&w, KAFKA_API_FETCH, 11, c->next_corr++);
	wire_write_i32(&w, -1); /* replica id */
	wire_write_i32(&w, BENCH_FETCH_WAIT_MS);
	wire_write_i32(&w, 1); /* min bytes */
	wire_write_i32(&w, (int32_t)BENCH_FETCH_BYTES);
	wire_write_i8(&w, 0);	/* read uncommitted */
	wire_write_i32(&w, 0);	/* session id */
	wire_write_i32(&w, -1); /* session epoch: no session */
	size_t topics_at = wire_writer_reserve_i32(&w);
	int32_t topics = 0;
	uint32_t prev_topic = UINT32_MAX;
	size_t pcount_at = 0;
	int32_t pcount = 0;
	for (uint32_t i = 0; i < c->part_count; i++) {
		struct part *p = &b->parts[c->parts[i]];
		if (p->topic != prev_topic) {
			if (pcount)
				wire_writer_patch_i32(&w, pcount_at, pcount);
			const char *name = b->topic_names[p->topic];
			wire_write_string(&w, name, strlen(name));
			pcount_at = wire_writer_reserve_i32(&w);
			pcount = 0;
			topics++;
			prev_topic = p->topic;
		}
		wire_write_i32(&w, p->index);
		wire_write_i32(&w, -1); /* current leader epoch */
		wire_write_i64(&w, p->fetch_offset);
		wire_write_i64(&w, -1); /* log start offset */
		wire_write_i32(&w, (int32_t)BENCH_FETCH_PART_BYTES);
		pcount++;
	}
	if (pcount)
		wire_writer_patch_i32(&w, pcount_at, pcount);
	wire_writer_patch_i32(&w, topics_at, topics);
	wire_write_array_len(&w, 0);  /* forgotten topics */
	wire_write_string(&w, "", 0); /* rack id */
	if (wire_write_response_end(&w, at, 0))
		return false;
	c->tx_len += w.len;
	struct inflight *f = &c->ring[(c->head + c->count) % BENCH_WINDOW_MAX];
	*f = (struct inflight){.sent_ns = now};
	c->count++;
	b->in_flight++;
	return true;
}

/* Tops up C's window with new requests and starts a send if none is running. */
static void conn_pump(struct bench *b, struct conn *c, uint64_t now)
{
	if (c->dead || c->sending)
		return;
	if (c->tx_sent == c->tx_len)
		c->tx_len = c->tx_sent = 0;
	if (!b->stopping) {
		uint32_t window = c->consumer ? 1 : b->o.window;
		while (c->count < window) {
			bool built =
			    c->consumer ? fetch_build(b, c, now) : produce_build(b, c, now);
			if (!built)
				break;
		}
	}
	if (c->tx_sent < c->tx_len)
		conn_submit_send(b, c);
}

struct e2e_ctx {
	struct bench *b;
	uint64_t now;
};

static void e2e_value(void *ctx, const uint8_t *value, int32_t value_len)
{
	struct e2e_ctx *e = ctx;
	uint64_t run_id, stamp;
	if (bench_batch_read_stamp(value, value_len, &run_id, &stamp) == 0 &&
	    run_id == e->b->run_id && stamp <= e->now)
		bench_hist_record(&e->b->e2e, e->now - stamp);
}

/* True for the errors that mean "ask Metadata where this partition is now": a Kafka
 * producer retries those after a refresh instead of failing the batch. */
static bool error_wants_metadata(int16_t err)
{
	return err == KERR_NOT_LEADER_OR_FOLLOWER || err == KERR_UNKNOWN_TOPIC_OR_PARTITION ||
	       err == KERR_LEADER_NOT_AVAILABLE;
}

static int produce_response(struct bench *b, struct conn *c, struct wire_reader *r,
			    const struct inflight *f)
{
	int32_t nt = wire_read_array_len(r, 2 + 4);
	uint64_t failed = 0, retried = 0;
	for (int32_t i = 0; i < nt; i++) {
		(void)wire_read_string(r);
		int32_t np = wire_read_array_len(r, 4 + 2 + 8 + 8 + 8);
		for (int32_t p = 0; p < np; p++) {
			int32_t index = wire_read_i32(r);
			int16_t err = wire_read_i16(r);
			wire_skip(r, 24);
			if (err == KERR_NONE || !wire_reader_ok(r))
				continue;
			if (error_wants_metadata(err)) {
				if (b->prod.retried < 10)
					LOG_INFO(
					    "bench: leader moved, refreshing metadata: conn=%u "
					    "partition=%d err=%s",
					    c->id, index, kafka_error_name(err));
				b->meta_stale = true;
				retried++;
				continue;
			}
			if (b->prod.errors < 10)
				LOG_WARN("bench: produce error: conn=%u partition=%d err=%s", c->id,
					 index, kafka_error_name(err));
			failed++;
		}
	}
	if (!wire_reader_ok(r))
		return -EBADMSG;
	if (failed > f->batches)
		failed = f->batches;
	if (retried > f->batches - failed)
		retried = f->batches - failed;
	uint64_t ok = f->batches - failed - retried;
	b->prod.errors += failed;
	b->prod.retried += retried;
	/* With --messages the records of a retried batch are planned (and sent) again. */
	uint64_t again = (uint64_t)f->records * retried;
	b->planned = b->planned > again ? b->planned - again : 0;
	b->prod.msgs += (uint64_t)f->records * ok;
	b->prod.bytes += f->bytes / f->batches * ok;
	return 0;
}

static int fetch_response(struct bench *b, struct conn *c, struct wire_reader *r, uint64_t now)
{
	(void)wire_read_i32(r); /* throttle */
	int16_t top_err = wire_read_i16(r);
	(void)wire_read_i32(r); /* session id */
	if (top_err != KERR_NONE) {
		b->cons.errors++;
		return 0;
	}
	int32_t nt = wire_read_array_len(r, 2 + 4);
	struct e2e_ctx e = {.b = b, .now = now};
	for (int32_t i = 0; i < nt; i++) {
		struct wire_str name = wire_read_string(r);
		int t = topic_index(b, name);
		int32_t np = wire_read_array_len(r, 4 + 2 + 8 + 8 + 8 + 4 + 4 + 4);
		for (int32_t p = 0; p < np; p++) {
			int32_t index = wire_read_i32(r);
			int16_t err = wire_read_i16(r);
			wire_skip(r, 24); /* high watermark, last stable, log start */
			int32_t naborted = wire_read_nullable_array_len(r, 16);
			if (naborted > 0)
				wire_skip(r, (size_t)naborted * 16);
			(void)wire_read_i32(r); /* preferred read replica */
			struct wire_bytes recs = wire_read_nullable_bytes(r);
			if (!wire_reader_ok(r))
				return -EBADMSG;
			struct part key = {.topic = (uint32_t)t, .index = index};
			struct part *part =
			    t < 0 ? NULL
				  : bsearch(&key, b->parts, b->part_count, sizeof(key), part_cmp);
			if (err != KERR_NONE && error_wants_metadata(err)) {
				b->meta_stale = true;
				b->cons.retried++;
				continue;
			}
			if (err != KERR_NONE || !part) {
				if (b->cons.errors < 10)
					LOG_WARN("bench: fetch error: conn=%u partition=%d err=%s",
						 c->id, index, kafka_error_name(err));
				b->cons.errors++;
				continue;
			}
			size_t off = 0;
			while (recs.ptr && recs.len - off >= BATCH_HEADER_BYTES) {
				struct batch_header h;
				if (batch_parse(recs.ptr + off, recs.len - off, &h) != BATCH_OK)
					break;
				size_t total = (size_t)h.batch_length + BATCH_LENGTH_OVERHEAD;
				if (total > recs.len - off)
					break; /* a partial batch at the end, as Kafka sends */
				int64_t next = batch_last_offset(&h) + 1;
				if (next > part->fetch_offset) {
					/* Records below fetch_offset (a batch straddling it) are
					 * not counted twice: count only the new ones. */
					int64_t first = h.base_offset > part->fetch_offset
							    ? h.base_offset
							    : part->fetch_offset;
					b->cons.msgs += (uint64_t)(next - first);
					b->cons.bytes += total;
					if (b->o.mode == MODE_E2E)
						(void)bench_batch_walk(recs.ptr + off, total,
								       e2e_value, &e);
					part->fetch_offset = next;
				}
				off += total;
			}
		}
	}
	return wire_reader_ok(r) ? 0 : -EBADMSG;
}

static void conn_on_frames(struct bench *b, struct conn *c, uint64_t now)
{
	size_t off = 0;
	for (;;) {
		uint32_t frame_len;
		int ret = wire_frame_length(c->rx + off, c->rx_len - off, (uint32_t)c->rx_cap,
					    &frame_len);
		if (ret == -EAGAIN)
			break;
		if (ret) {
			conn_fail(b, c, "bad frame", ret);
			return;
		}
		if (c->count == 0) {
			conn_fail(b, c, "unexpected response", -EPROTO);
			return;
		}
		struct inflight f = c->ring[c->head];
		c->head = (c->head + 1) % BENCH_WINDOW_MAX;
		c->count--;
		b->in_flight--;
		struct wire_reader r;
		wire_reader_init(&r, c->rx + off + WIRE_SIZE_PREFIX_BYTES, frame_len);
		(void)wire_read_i32(&r); /* correlation id: responses come in order */
		uint64_t msgs_before = b->cons.msgs;
		ret = c->consumer ? fetch_response(b, c, &r, now) : produce_response(b, c, &r, &f);
		if (ret) {
			conn_fail(b, c, "bad response", ret);
			return;
		}
		if (!c->consumer)
			bench_hist_record(&b->lat, now - f.sent_ns);
		else if (b->o.mode == MODE_CONSUME)
			bench_hist_record(&b->lat, now - f.sent_ns);
		(c->consumer ? &b->cons : &b->prod)->requests++;
		/* The run ends at the last response that carried data: an empty long-poll
		 * after the end must not stretch the consumer's time. */
		if (!c->consumer || b->cons.msgs != msgs_before)
			b->end_ns = now;
		off += WIRE_SIZE_PREFIX_BYTES + frame_len;
	}
	if (off) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off;
	}
	if (c->rx_len == c->rx_cap)
		conn_fail(b, c, "response larger than the receive buffer", -EMSGSIZE);
}

static void bench_check_done(struct bench *b, uint64_t now);
static void metadata_refresh(struct bench *b, uint64_t now);

static void on_cqe(void *ctx, struct loop *loop, const struct io_uring_cqe *cqe)
{
	struct bench *b = ctx;
	(void)loop;
	uint64_t v = loop_udata_value(cqe->user_data);
	struct conn *c = &b->conns[v >> 1];
	uint64_t now = loop_now_ns();
	if ((v & 1) == OP_SEND) {
		c->sending = false;
		if (cqe->res <= 0) {
			conn_fail(b, c, "send", cqe->res ? cqe->res : -EPIPE);
		} else {
			c->tx_sent += (size_t)cqe->res;
			if (c->tx_sent < c->tx_len && !c->dead)
				conn_submit_send(b, c);
		}
		conn_pump(b, c, now);
	} else {
		if (cqe->res <= 0) {
			conn_fail(b, c, "recv", cqe->res ? cqe->res : -ECONNRESET);
		} else {
			c->rx_len += (size_t)cqe->res;
			conn_on_frames(b, c, now);
			if (!c->dead)
				conn_submit_recv(b, c);
			conn_pump(b, c, now);
		}
	}
	bench_check_done(b, now);
}

static void print_progress(struct bench *b, uint64_t now)
{
	double dt = 1.0;
	struct totals *t = b->o.mode == MODE_CONSUME ? &b->cons : &b->prod;
	struct totals *l = b->o.mode == MODE_CONSUME ? &b->cons_last : &b->prod_last;
	b->seconds++;
	fprintf(stderr,
		"[%3us] %s %.0f msgs/s %.2f MB/s in_flight=%" PRIu64 " errors=%" PRIu64
		" retried=%" PRIu64,
		b->seconds, b->o.mode == MODE_CONSUME ? "consume" : "produce",
		(double)(t->msgs - l->msgs) / dt, (double)(t->bytes - l->bytes) / dt / 1e6,
		b->in_flight, t->errors, t->retried);
	if (b->o.mode == MODE_E2E)
		fprintf(stderr, " | consume %.0f msgs/s errors=%" PRIu64,
			(double)(b->cons.msgs - b->cons_last.msgs) / dt, b->cons.errors);
	fputc('\n', stderr);
	b->prod_last = b->prod;
	b->cons_last = b->cons;
	(void)now;
}

static void on_second(void *ctx, struct loop *loop, struct loop_timer *t)
{
	struct bench *b = ctx;
	print_progress(b, loop_now_ns());
	loop_timer_arm(loop, t, 1000);
}

static bool all_dead(struct bench *b)
{
	for (uint32_t i = 0; i < b->conn_count; i++)
		if (!b->conns[i].dead)
			return false;
	return true;
}

static void bench_check_done(struct bench *b, uint64_t now)
{
	if (!b->stopping) {
		bool done = interrupted || (b->stop_ns && now >= b->stop_ns) || all_dead(b);
		if (b->o.messages) {
			if (b->o.mode == MODE_PRODUCE) /* retried batches lower planned again */
				done |= b->planned >= b->o.messages && b->in_flight == 0;
			else
				done |= b->cons.msgs >= b->o.messages;
		}
		if (done) {
			b->stopping = true;
			b->stop_since_ns = now;
		}
	}
	if (!b->stopping)
		return;
	/* Producers drain their window; consumers stop at once (a long-poll may wait). */
	uint64_t prod_in_flight = 0;
	for (uint32_t i = 0; i < b->conn_count; i++) {
		const struct conn *c = &b->conns[i];
		if (!c->consumer && !c->dead)
			prod_in_flight += c->count + (c->sending || c->tx_sent < c->tx_len);
	}
	bool e2e_wait = b->o.mode == MODE_E2E && b->cons.msgs < b->prod.msgs &&
			now - b->stop_since_ns < NS_PER_S;
	if ((prod_in_flight == 0 && !e2e_wait) || now - b->stop_since_ns > BENCH_DRAIN_NS ||
	    interrupted > 1)
		loop_stop(&b->loop);
}

static void on_tick(void *ctx, struct loop *loop, struct loop_timer *t)
{
	struct bench *b = ctx;
	uint64_t now = loop_now_ns();
	metadata_refresh(b, now);
	for (uint32_t i = 0; i < b->conn_count; i++)
		conn_pump(b, &b->conns[i], now);
	bench_check_done(b, now);
	loop_timer_arm_ns(loop, t, b->o.rate ? BENCH_RATE_TICK_NS : BENCH_TICK_NS);
}

/* Opens one connection of role CONSUMER to broker BR (blocking connect); when the loop
 * runs, its receive is submitted. Returns its index in b->conns or -errno. */
static int conn_add(struct bench *b, const struct broker *br, bool consumer)
{
	if (b->conn_count == b->conn_cap) {
		uint32_t cap = b->conn_cap ? 2 * b->conn_cap : 16;
		struct conn *grown = realloc(b->conns, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		memset(grown + b->conn_cap, 0, (cap - b->conn_cap) * sizeof(*grown));
		b->conns = grown;
		b->conn_cap = cap;
	}
	size_t batch_req = b->batch_cap + 2 * BENCH_TOPIC_NAME_MAX + 128;
	size_t req = batch_req > BENCH_REQUEST_BYTES ? batch_req : BENCH_REQUEST_BYTES + batch_req;
	uint32_t led = 0;
	for (uint32_t i = 0; i < b->part_count; i++)
		led += b->parts[i].leader == br->node_id;
	struct conn *c = &b->conns[b->conn_count];
	*c = (struct conn){
	    .fd = -1, .id = b->conn_count, .node_id = br->node_id, .consumer = consumer};
	c->tx_cap = consumer ? 128 + (size_t)led * (BENCH_TOPIC_NAME_MAX + 64) : req * b->o.window;
	c->rx_cap = (consumer ? BENCH_FETCH_BYTES : BENCH_REQUEST_BYTES) + BENCH_RX_SLACK +
		    64u * (size_t)led;
	c->tx = malloc(c->tx_cap);
	c->rx = malloc(c->rx_cap);
	b->conn_count++; /* from here conns_close frees what it holds */
	if (!c->tx || !c->rx)
		return -ENOMEM;
	int fd = tcp_connect(br->host, br->port);
	if (fd < 0) {
		LOG_ERROR("bench: connect failed: broker=%d %s:%d err=%s", br->node_id, br->host,
			  br->port, strerror(-fd));
		c->dead = true;
		return fd;
	}
	c->fd = fd;
	if (b->running)
		conn_submit_recv(b, c);
	return (int)c->id;
}

/* Routes every partition to the connections (of each role the mode uses) to its leader,
 * spread over up to --connections of them, opening the ones missing. A connection whose
 * broker leads nothing any more stays open with no partitions. Returns 0 or -errno. */
static int conns_assign(struct bench *b)
{
	bool produce = b->o.mode != MODE_CONSUME, consume = b->o.mode != MODE_PRODUCE;
	for (uint32_t i = 0; i < b->conn_count; i++) {
		struct conn *c = &b->conns[i];
		c->part_count = 0;
		c->cursor = 0;
		if (c->parts_cap < b->part_count) {
			uint32_t *grown = realloc(c->parts, (b->part_count + 1) * sizeof(uint32_t));
			if (!grown)
				return -ENOMEM;
			c->parts = grown;
			c->parts_cap = b->part_count + 1;
		}
	}
	for (uint32_t role = 0; role < 2; role++) {
		bool consumer = role == 1;
		if ((consumer && !consume) || (!consumer && !produce))
			continue;
		for (uint32_t bi = 0; bi < b->broker_count; bi++) {
			const struct broker *br = &b->brokers[bi];
			uint32_t led = 0;
			for (uint32_t i = 0; i < b->part_count; i++)
				led += b->parts[i].leader == br->node_id;
			if (!led)
				continue;
			uint32_t want = b->o.connections < led ? b->o.connections : led;
			uint32_t have = 0;
			for (uint32_t i = 0; i < b->conn_count; i++)
				have += b->conns[i].node_id == br->node_id &&
					b->conns[i].consumer == consumer && !b->conns[i].dead;
			for (; have < want; have++) {
				int ret = conn_add(b, br, consumer);
				if (ret < 0)
					return ret;
				struct conn *c = &b->conns[ret];
				c->parts = calloc(b->part_count + 1, sizeof(uint32_t));
				if (!c->parts)
					return -ENOMEM;
				c->parts_cap = b->part_count + 1;
			}
			/* Spread its partitions over its live connections of this role. */
			uint32_t k = 0;
			for (uint32_t i = 0; i < b->part_count; i++) {
				if (b->parts[i].leader != br->node_id)
					continue;
				uint32_t pick = k++ % have, seen = 0;
				for (uint32_t ci = 0; ci < b->conn_count; ci++) {
					struct conn *c = &b->conns[ci];
					if (c->node_id != br->node_id || c->consumer != consumer ||
					    c->dead)
						continue;
					if (seen++ == pick) {
						c->parts[c->part_count++] = i;
						break;
					}
				}
			}
		}
	}
	return 0;
}

static int conns_open(struct bench *b)
{
	return conns_assign(b);
}

/* When a partition answered that its leader moved: one Metadata round (blocking, from
 * the bootstrap brokers, at most every BENCH_META_REFRESH_MS), then every partition is
 * routed to its leader now. Consumer positions carry over; a partition still without a
 * leader keeps the refresh pending. */
static void metadata_refresh(struct bench *b, uint64_t now)
{
	if (!b->meta_stale || now < b->meta_next_ns)
		return;
	b->meta_next_ns = now + BENCH_META_REFRESH_MS * 1000000ull;
	if (!b->meta_buf && !(b->meta_buf = malloc(BENCH_META_BYTES)))
		return;
	struct part *old = malloc((size_t)b->part_count * sizeof(*old) + 1);
	if (!old)
		return;
	uint32_t old_count = b->part_count;
	memcpy(old, b->parts, (size_t)old_count * sizeof(*old));
	int fd = bootstrap_connect(b);
	int ret = fd < 0 ? fd : metadata(b, fd, b->meta_buf, BENCH_META_BYTES);
	if (fd >= 0)
		close(fd);
	if (ret && ret != -EAGAIN) {
		LOG_WARN("bench: metadata refresh failed, retrying: err=%s", strerror(-ret));
		memcpy(b->parts, old, (size_t)old_count * sizeof(*old));
		b->part_count = old_count;
		free(old);
		return;
	}
	qsort(b->parts, b->part_count, sizeof(*b->parts), part_cmp);
	for (uint32_t i = 0; i < b->part_count; i++) {
		struct part *was = bsearch(&b->parts[i], old, old_count, sizeof(*old), part_cmp);
		if (was)
			b->parts[i].fetch_offset = was->fetch_offset;
	}
	free(old);
	b->meta_stale = ret == -EAGAIN;
	b->meta_refreshes++;
	ret = conns_assign(b);
	LOG_INFO("bench: metadata refreshed: brokers=%u partitions=%u connections=%u%s",
		 b->broker_count, b->part_count, b->conn_count,
		 b->meta_stale ? " (some partitions without a leader yet)" : "");
	if (ret)
		LOG_ERROR("bench: cannot route to the new leaders: err=%s", strerror(-ret));
}

static void conns_close(struct bench *b)
{
	for (uint32_t i = 0; i < b->conn_count; i++) {
		struct conn *c = &b->conns[i];
		if (c->fd >= 0)
			close(c->fd);
		free(c->parts);
		free(c->tx);
		free(c->rx);
	}
	free(b->conns);
	free(b->meta_buf);
}

static void report(struct bench *b)
{
	double secs = b->end_ns > b->start_ns ? (double)(b->end_ns - b->start_ns) / 1e9 : 0;
	bool consume = b->o.mode == MODE_CONSUME;
	struct totals *t = consume ? &b->cons : &b->prod;
	struct bench_hist *h = b->o.mode == MODE_E2E ? &b->e2e : &b->lat;
	double mps = secs > 0 ? (double)t->msgs / secs : 0;
	double mbps = secs > 0 ? (double)t->bytes / secs / 1e6 : 0;
	const char *mode = b->o.mode == MODE_PRODUCE ? "produce" : consume ? "consume" : "e2e";
	const char *what = b->o.mode == MODE_PRODUCE ? "produce request"
			   : consume		     ? "fetch round trip"
						     : "end-to-end";
	uint64_t errors = b->prod.errors + b->cons.errors;
	uint64_t retried = b->prod.retried + b->cons.retried;
	printf("%s: %" PRIu64 " msgs, %" PRIu64 " batch bytes in %.3f s: %.0f msgs/s, %.2f MB/s, "
	       "%" PRIu64 " requests, %" PRIu64 " errors, %" PRIu64 " retried after %" PRIu64
	       " metadata refreshes\n",
	       mode, t->msgs, t->bytes, secs, mps, mbps, t->requests, errors, retried,
	       b->meta_refreshes);
	if (b->o.mode == MODE_E2E)
		printf("consumed: %" PRIu64 " msgs, %" PRIu64 " bytes\n", b->cons.msgs,
		       b->cons.bytes);
	printf("%s latency (us, %" PRIu64 " samples): p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max "
	       "%.1f mean %.1f\n",
	       what, h->total, bench_hist_percentile(h, 50) / 1e3,
	       bench_hist_percentile(h, 90) / 1e3, bench_hist_percentile(h, 99) / 1e3,
	       bench_hist_percentile(h, 99.9) / 1e3, (double)h->max / 1e3,
	       bench_hist_mean(h) / 1e3);
	if (b->o.json) {
		printf("{\"mode\":\"%s\",\"msgs\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"seconds\":%.3f,\"msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
		       "\"consumed\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"retried\":%" PRIu64 ",\"metadata_refreshes\":%" PRIu64
		       ",\"message_size\":%u,\"batch_bytes\":%u,\"window\":%u,"
		       "\"connections\":%u,\"acks\":%d,\"partitions\":%u,\"brokers\":%u,"
		       "\"latency\":\"%s\",\"samples\":%" PRIu64 ",\"p50_us\":%.1f,\"p90_us\":%.1f,"
		       "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}\n",
		       mode, t->msgs, t->bytes, secs, mps, mbps, b->cons.msgs, t->requests, errors,
		       retried, b->meta_refreshes, b->o.message_bytes, b->o.batch_bytes,
		       b->o.window, b->o.connections, b->o.acks, b->part_count, b->broker_count,
		       what, h->total, bench_hist_percentile(h, 50) / 1e3,
		       bench_hist_percentile(h, 90) / 1e3, bench_hist_percentile(h, 99) / 1e3,
		       bench_hist_percentile(h, 99.9) / 1e3, (double)h->max / 1e3);
	}
	fflush(stdout);
}

static int run(struct bench *b)
{
	char explain[256] = "";
	int ret = loop_init(&b->loop, LIMITS_URING_ENTRIES, explain, sizeof(explain));
	if (ret) {
		LOG_ERROR("bench: io_uring setup failed: err=%s %s", strerror(-ret), explain);
		return ret;
	}
	loop_on(&b->loop, LOOP_KIND_TEST, on_cqe, b);
	loop_timer_init(&b->tick, on_tick, b);
	loop_timer_init(&b->second, on_second, b);
	b->start_ns = b->end_ns = loop_now_ns();
	if (b->o.duration_s > 0)
		b->stop_ns = b->start_ns + (uint64_t)(b->o.duration_s * 1e9);
	for (uint32_t i = 0; i < b->conn_count; i++) {
		if (b->conns[i].dead)
			continue;
		conn_submit_recv(b, &b->conns[i]);
		conn_pump(b, &b->conns[i], b->start_ns);
	}
	b->running = true;
	loop_timer_arm(&b->loop, &b->tick, 1);
	loop_timer_arm(&b->loop, &b->second, 1000);
	ret = loop_run(&b->loop);
	/* Pending recvs end with the sockets; the ring goes with them. */
	for (uint32_t i = 0; i < b->conn_count; i++)
		if (b->conns[i].fd >= 0)
			shutdown(b->conns[i].fd, SHUT_RDWR);
	b->running = false;
	loop_destroy(&b->loop);
	return ret;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	int ret = parse_options(argc, argv, &b->o);
	if (ret)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	bench_hist_init(&b->lat);
	bench_hist_init(&b->e2e);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	b->run_id = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
	b->records_per_batch = bench_batch_records_for(b->o.batch_bytes, b->o.message_bytes);
	b->batch_cap = bench_batch_bytes(b->records_per_batch, b->o.message_bytes);
	if (b->batch_cap > BENCH_BATCH_BYTES_MAX) {
		fprintf(stderr, "sluice-bench: one message does not fit a batch\n");
		return 2;
	}
	b->topic_names = calloc(b->o.topics, sizeof(*b->topic_names));
	b->parts = calloc(BENCH_PARTITIONS_MAX, sizeof(*b->parts));
	b->tmpl = malloc(b->batch_cap);
	if (!b->topic_names || !b->parts || !b->tmpl)
		return 1;
	for (uint32_t t = 0; t < b->o.topics; t++)
		snprintf(b->topic_names[t], sizeof(b->topic_names[t]), "%.100s-%u",
			 b->o.topic_prefix, t);
	ret = bootstrap(b);
	if (ret)
		goto out_free;
	LOG_INFO("bench: ready: brokers=%u partitions=%u records_per_batch=%u batch_bytes=%zu",
		 b->broker_count, b->part_count, b->records_per_batch, b->batch_cap);
	ret = conns_open(b);
	if (ret)
		goto out_conns;
	ret = run(b);
	if (ret)
		LOG_ERROR("bench: event loop failed: err=%s", strerror(-ret));
	report(b);
out_conns:
	conns_close(b);
out_free:
	free(b->parts);
	free(b->topic_names);
	free(b->tmpl);
	if (ret)
		return 1;
	return (b->prod.errors + b->cons.errors) ? 1 : 0;
}
