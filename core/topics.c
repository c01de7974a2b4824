/*
 * core/topics.c: one shard's topic table and its side of the change protocol (see
 * core/topics.h for the contract). The table: every topic is one immutable heap object
 * (the view, with its partitions, configs and their strings in the same allocation)
 * listed in a dense array for iteration, plus a name table and a partition-id table
 * (open addressing, linear probing, deletion by backward shift, at most half full). A
 * change replaces a whole view, after growing the tables, so it either happens or
 * leaves the table as it was. The name table keeps each name's hash and length in the
 * slot beside the view pointer, so that a lookup (one per topic of every Produce)
 * probes one array and reads a view only on a likely match. The protocol: a change is
 * a heap record that travels to shard 0 (SHARD_OP_TOPICS_CHANGE; ownership passes with
 * the message and comes back with the reply) and waits in shard 0's FIFO. When no batch
 * is under way, shard 0 takes every waiting change (up to TOPICS_BATCH_MAX) into a meta
 * batch: each is checked and made in meta, and its new view built; meta_batch_end
 * journals them all with one fdatasync; then shard 0 applies the views to its own table
 * and sends the whole batch to every other shard (SHARD_OP_TOPICS_UPDATE, one message
 * each) for them to copy in order; each record is answered once every shard
 * acknowledged. One batch at a time means every shard sees the changes in the same
 * order, and a view the batch sends is never freed while a peer may be copying it: one
 * that a later change of the same batch replaces in shard 0's table is handed to the
 * batch, which frees it at the end. It does not know what a partition holds: the
 * owner's on_change does.
 */
#include "core/topics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/logger.h"

/* Wait before trying again when the mesh refused a message (-EAGAIN): the window to
 * that peer is used up or its ring is full; its replies usually free it sooner, and the
 * hook then retries on that turn. */
#define TOPICS_RETRY_MS 1u

/* Smallest name and partition-id tables; both double when they would pass half full. */
#define TOPICS_TABLE_SLOTS_MIN 16u

enum topics_change_kind {
	TOPICS_CHANGE_CREATE = 1,
	TOPICS_CHANGE_DELETE = 2,
	TOPICS_CHANGE_ADD_PARTITIONS = 3,
	TOPICS_CHANGE_SET_CONFIG = 4,
};

/* ring_msg.arg of SHARD_OP_TOPICS_UPDATE. */
enum topics_update_kind {
	TOPICS_UPDATE_UPSERT = 1, /* insert the view, replacing a topic of the same name */
	TOPICS_UPDATE_DELETE = 2, /* remove the topic with the view's name and topic id */
};

/*
 * A change asked for on shard `origin`, one allocation with its strings behind it.
 * Owned by the requesting shard, except between a successful shard_call to shard 0 and
 * the reply, when shard 0 owns it (and may write next, msg and status).
 */
struct topics_request {
	struct shard_call call;		/* requester: the call to shard 0 (ctx = its table) */
	struct topics_request *next;	/* FIFO link: requester's send queue, then shard 0's */
	struct ring_msg msg;		/* shard 0: the request message, to reply to */
	topics_done_fn done;		/* the asker's callback */
	void *done_ctx;			/* its first argument */
	uint32_t origin;		/* requesting shard */
	enum topics_change_kind kind;	/* what is asked */
	int status;			/* shard 0: meta's result, then the first on_change error */
	bool committed;			/* shard 0: meta applied it */
	uint32_t count;			/* create: partitions; add: the new total */
	uint32_t config_count;		/* create: entries of configs */
	struct meta_config_kv *configs; /* create: behind the struct */
	const char *key;		/* set config: behind the struct */
	const char *value;		/* set config: behind the struct, NULL = remove */
	char name[LIMITS_TOPIC_NAME_BYTES + 1]; /* the topic, NUL-terminated */
};

/* One change of the batch under way on shard 0. The peers read view and kind, and
 * write peer_status; the rest is shard 0's. */
struct topics_entry {
	struct topic_view *view;      /* for the peers: the new view (upsert) or a copy of
				       * the deleted one; NULL: nothing to apply */
	enum topics_update_kind kind; /* of view; 0 without one */
	_Atomic int peer_status;      /* first error a peer's table or on_change gave */
	struct topics_request *req;   /* the change, answered when the batch is done */
	bool owned;		      /* view is not (or no longer) in shard 0's table: the
				       * batch frees it */
	bool after_made;	      /* a change before it in the batch was made: when the
				       * batch's write fails, its refusal may rest on that */
};

/* Shard 0's batch: the changes of one group commit, in the order they were made. */
struct topics_batch {
	uint32_t count;				       /* entries used */
	uint32_t updates;			       /* of them, with a view */
	struct topics_entry entries[TOPICS_BATCH_MAX]; /* the changes */
};

/* A name-table slot: the name's hash and length beside its view, so that a probe reads
 * this array only (four slots a cache line) and follows view on a likely match alone. */
struct topics_name_slot {
	uint32_t hash;		 /* topics_name_hash of the name; its low bits pick the home */
	uint32_t len;		 /* the name's length; 0 marks an empty slot */
	struct topic_view *view; /* its topic; NULL in an empty slot */
};

/* A partition-id table slot; id META_PARTITION_ID_NONE marks it empty. */
struct topics_pid_slot {
	uint32_t id;		 /* partition_id */
	uint32_t index;		 /* partition index in view */
	struct topic_view *view; /* its topic */
};

/*
 * Invariants (topics_sanity): views[0 .. view_count) are the live views, views[i]->slot
 * == i; names holds exactly those views, each reachable from its home slot; pids holds
 * exactly one slot per partition of a live view, and pid_count counts them; both tables
 * are powers of two and at most half full. On shard 0, bcast_active says a batch is
 * under way (made durable, applied here, being broadcast) and bcast_* describe its
 * broadcast; a view with bcast_entry != 0 is that batch's entry bcast_entry - 1.
 */
struct topics {
	struct shard *shard;		 /* whose table this is */
	uint32_t shard_id;		 /* shard->id */
	uint32_t shard_count;		 /* shards in the set */
	struct meta *meta;		 /* shard 0 only: the metadata it changes */
	struct topics_defaults defaults; /* for the typed values */
	topics_change_fn on_change;	 /* the owner's reaction to a change */
	void *change_ctx;		 /* its first argument */
	bool quiescing;			 /* topics_quiesce was called */

	struct topic_view **views;	/* dense array of live views */
	uint32_t view_count;		/* entries used */
	uint32_t view_cap;		/* entries allocated */
	struct topics_name_slot *names; /* name table */
	uint32_t names_slots;		/* power of two */
	struct topics_pid_slot *pids;	/* partition-id table */
	uint32_t pids_slots;		/* power of two */
	uint32_t pid_count;		/* slots used */
	uint64_t generation;		/* bumped by every applied change */

	struct topics_request *send_head;   /* requester: changes not yet sent to shard 0 */
	struct topics_request *send_tail;   /* its last record */
	struct topics_request *work_head;   /* shard 0: changes waiting for their turn */
	struct topics_request *work_tail;   /* its last record */
	struct topics_batch *batch;	    /* shard 0: the batch (reused; NULL elsewhere) */
	bool bcast_active;		    /* shard 0: the batch is under way */
	uint32_t bcast_unsent;		    /* peers not sent to yet (-EAGAIN) */
	uint32_t bcast_acks_pending;	    /* peers sent to that have not answered */
	bool bcast_sent[LIMITS_SHARDS_MAX]; /* per peer: sent */
	struct shard_call bcast_calls[LIMITS_SHARDS_MAX]; /* per peer: the call record */
	struct loop_timer kick;	   /* runs topics_progress soon (0 ms or a retry) */
	struct topics_stats stats; /* counters */
};

/* ---- typed config values ----------------------------------------------------------- */

/* Strict decimal int64: optional '-', digits, nothing else, no overflow. */
static bool topics_parse_int64(const char *s, int64_t *out)
{
	bool negative = *s == '-';
	const char *p = negative ? s + 1 : s;
	if (*p == '\0')
		return false;
	uint64_t limit = negative ? (UINT64_C(1) << 63) : (UINT64_C(1) << 63) - 1;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		uint64_t digit = (uint64_t)(*p - '0');
		if (v > (limit - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*out = negative ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* Kafka's list syntax: "delete", "compact", "compact,delete", spaces allowed around. */
static int topics_parse_cleanup(const char *s, uint32_t *out)
{
	uint32_t bits = 0;
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ',' && *p != ' ')
			p++;
		size_t len = (size_t)(p - word);
		if (len == 6 && memcmp(word, "delete", 6) == 0)
			bits |= TOPICS_CLEANUP_DELETE;
		else if (len == 7 && memcmp(word, "compact", 7) == 0)
			bits |= TOPICS_CLEANUP_COMPACT;
		else
			return -EINVAL;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	*out = bits;
	return 0;
}

int topics_config_check(const char *key, const char *value)
{
	if (!key)
		return -EINVAL;
	size_t key_len = strnlen(key, LIMITS_META_CONFIG_KEY_BYTES + 1);
	if (key_len == 0 || key_len > LIMITS_META_CONFIG_KEY_BYTES)
		return -EINVAL;
	if (!value)
		return 0;
	if (strnlen(value, LIMITS_META_CONFIG_VALUE_BYTES + 1) > LIMITS_META_CONFIG_VALUE_BYTES)
		return -EINVAL;
	int64_t n;
	if (strcmp(key, TOPICS_CONFIG_RETENTION_MS) == 0 ||
	    strcmp(key, TOPICS_CONFIG_RETENTION_BYTES) == 0)
		return topics_parse_int64(value, &n) && n >= -1 ? 0 : -EINVAL;
	if (strcmp(key, TOPICS_CONFIG_SEGMENT_BYTES) == 0)
		return topics_parse_int64(value, &n) && n >= 1 ? 0 : -EINVAL;
	if (strcmp(key, TOPICS_CONFIG_CLEANUP_POLICY) == 0) {
		uint32_t bits;
		return topics_parse_cleanup(value, &bits);
	}
	return 0;
}

/* Fills VIEW's typed values from its configs, else from D. A stored value that does not
 * parse (only possible in a journal written by something else) falls back to the
 * default, with a warning. */
static void topics_view_resolve(struct topic_view *view, const struct topics_defaults *d)
{
	view->retention_ms = d->retention_ms;
	view->retention_bytes = d->retention_bytes;
	view->segment_bytes = d->segment_bytes;
	view->cleanup_policy = TOPICS_CLEANUP_DELETE;
	for (uint32_t i = 0; i < view->config_count; i++) {
		const char *key = view->configs[i].key, *value = view->configs[i].value;
		if (topics_config_check(key, value) < 0) {
			LOG_WARN("topics: topic '%s' has an invalid %s '%s'; using the default",
				 view->name, key, value);
			continue;
		}
		int64_t n;
		if (strcmp(key, TOPICS_CONFIG_RETENTION_MS) == 0 && topics_parse_int64(value, &n))
			view->retention_ms = n;
		else if (strcmp(key, TOPICS_CONFIG_RETENTION_BYTES) == 0 &&
			 topics_parse_int64(value, &n))
			view->retention_bytes = n;
		else if (strcmp(key, TOPICS_CONFIG_SEGMENT_BYTES) == 0 &&
			 topics_parse_int64(value, &n))
			view->segment_bytes = (uint64_t)n;
		else if (strcmp(key, TOPICS_CONFIG_CLEANUP_POLICY) == 0)
			topics_parse_cleanup(value, &view->cleanup_policy);
	}
}

const char *topics_view_config(const struct topic_view *view, const char *key)
{
	uint32_t lo = 0, hi = view->config_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(view->configs[mid].key, key);
		if (c == 0)
			return view->configs[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- views ------------------------------------------------------------------------- */

/* Hash of the LEN bytes at NAME for the name table (memory only, may change freely):
 * eight bytes a step, each mixed by a multiply and a fold, then murmur3's finalizer, so
 * that names differing in their last byte spread over the low bits the table uses. */
static uint32_t topics_name_hash(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ len;
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
		h ^= h >> 32;
	}
	if (len > 0) {
		uint64_t w = 0;
		for (size_t i = 0; i < len; i++)
			w |= (uint64_t)p[i] << (8 * i);
		h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32_t)h;
}

static uint32_t topics_pid_hash(uint32_t id)
{
	return id * UINT32_C(2654435761); /* Knuth's multiplicative hash */
}

/* Alignment of a view's allocation: its hot fields, partitions and name start a cache
 * line. */
#define TOPICS_VIEW_ALIGN 64u

/*
 * A new view in one allocation, TOPICS_VIEW_ALIGN-aligned: the struct, then
 * PARTITION_COUNT partitions and the name (so that a lookup and the Produce after it
 * read the struct's hot fields, the partitions and the name in one or two adjacent
 * cache lines for a topic with few partitions), then CONFIG_COUNT configs (kept in the
 * order given, which must be sorted by key) and their strings. Returns NULL when out of
 * memory.
 */
static struct topic_view *
topics_view_new(const char *name, uint64_t topic_id, uint32_t partition_count,
		const struct meta_partition *partitions, uint32_t config_count,
		const struct meta_config_kv *configs, const struct topics_defaults *d)
{
	_Static_assert(sizeof(struct topic_view) % _Alignof(struct meta_partition) == 0 &&
			   TOPICS_VIEW_ALIGN % _Alignof(struct topic_view) == 0,
		       "the partitions behind a view stay aligned");
	size_t name_len = strlen(name);
	ASSERT(name_len <= LIMITS_TOPIC_NAME_BYTES);
	size_t strings = 0;
	for (uint32_t i = 0; i < config_count; i++)
		strings += strlen(configs[i].key) + 1 + strlen(configs[i].value) + 1;
	size_t parts_bytes = (size_t)partition_count * sizeof(struct meta_partition);
	size_t kv_align = _Alignof(struct meta_config_kv);
	/* The configs behind the name are pointer-aligned. */
	size_t kv_at = (sizeof(struct topic_view) + parts_bytes + name_len + 1 + kv_align - 1) &
		       ~(kv_align - 1);
	size_t size = kv_at + (size_t)config_count * sizeof(struct meta_config_kv) + strings;
	size = (size + TOPICS_VIEW_ALIGN - 1) & ~(size_t)(TOPICS_VIEW_ALIGN - 1);
	struct topic_view *view = aligned_alloc(TOPICS_VIEW_ALIGN, size);
	if (!view)
		return NULL;
	memset(view, 0, sizeof(*view));
	view->topic_id = topic_id;
	view->partition_count = partition_count;
	view->name_len = (uint32_t)name_len;

	uint8_t *p = (uint8_t *)(view + 1);
	struct meta_partition *parts = (struct meta_partition *)p;
	memcpy(parts, partitions, parts_bytes);
	view->partitions = parts;
	char *name_copy = (char *)(p + parts_bytes);
	memcpy(name_copy, name, name_len + 1);
	view->name = name_copy;
	struct meta_config_kv *kv = (struct meta_config_kv *)((uint8_t *)view + kv_at);
	p = (uint8_t *)(kv + config_count);
	for (uint32_t i = 0; i < config_count; i++) {
		size_t klen = strlen(configs[i].key) + 1, vlen = strlen(configs[i].value) + 1;
		memcpy(p, configs[i].key, klen);
		kv[i].key = (const char *)p;
		p += klen;
		memcpy(p, configs[i].value, vlen);
		kv[i].value = (const char *)p;
		p += vlen;
	}
	view->configs = kv;
	view->config_count = config_count;
	topics_view_resolve(view, d);
	return view;
}

static struct topic_view *topics_view_from_meta(const struct meta_topic *mt,
						const struct topics_defaults *d)
{
	return topics_view_new(mt->name, mt->topic_id, mt->partition_count, mt->partitions,
			       mt->config_count, mt->configs, d);
}

static struct topic_view *topics_view_clone(const struct topic_view *src,
					    const struct topics_defaults *d)
{
	return topics_view_new(src->name, src->topic_id, src->partition_count, src->partitions,
			       src->config_count, src->configs, d);
}

/* ---- the tables -------------------------------------------------------------------- */

static uint32_t topics_name_slot(const struct topics *t, const char *name, size_t len,
				 uint32_t hash)
{
	uint32_t mask = t->names_slots - 1;
	for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
		const struct topics_name_slot *s = &t->names[i];
		if (s->len == 0 ||
		    (s->hash == hash && s->len == len && memcmp(s->view->name, name, len) == 0))
			return i;
	}
}

static uint32_t topics_pid_slot(const struct topics *t, uint32_t id)
{
	uint32_t mask = t->pids_slots - 1;
	for (uint32_t i = topics_pid_hash(id) & mask;; i = (i + 1) & mask)
		if (t->pids[i].id == id || t->pids[i].id == META_PARTITION_ID_NONE)
			return i;
}

/* Slots for USED entries at most half full. */
static uint64_t topics_slots_for(uint64_t used)
{
	uint64_t slots = TOPICS_TABLE_SLOTS_MIN;
	while (slots < 2 * used)
		slots *= 2;
	return slots;
}

static void topics_name_put(struct topics *t, struct topic_view *v, uint32_t hash)
{
	uint32_t i = topics_name_slot(t, v->name, v->name_len, hash);
	ASSERT(t->names[i].len == 0);
	t->names[i] = (struct topics_name_slot){.hash = hash, .len = v->name_len, .view = v};
}

static void topics_pid_put(struct topics *t, struct topic_view *v, uint32_t index)
{
	uint32_t id = v->partitions[index].partition_id;
	uint32_t i = topics_pid_slot(t, id);
	ASSERT(t->pids[i].id == META_PARTITION_ID_NONE);
	t->pids[i] = (struct topics_pid_slot){.id = id, .index = index, .view = v};
	t->pid_count++;
}

/* Backward-shift deletion: later entries of the probe run move into the hole when
 * their home slot does not lie cyclically in (hole, their slot]. */
static void topics_name_delete_at(struct topics *t, uint32_t hole)
{
	uint32_t mask = t->names_slots - 1;
	for (uint32_t j = (hole + 1) & mask; t->names[j].len; j = (j + 1) & mask) {
		uint32_t home = t->names[j].hash & mask;
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->names[hole] = t->names[j];
			hole = j;
		}
	}
	t->names[hole] = (struct topics_name_slot){0};
}

static void topics_pid_delete(struct topics *t, uint32_t id)
{
	uint32_t mask = t->pids_slots - 1;
	uint32_t hole = topics_pid_slot(t, id);
	ASSERT(t->pids[hole].id == id);
	for (uint32_t j = (hole + 1) & mask; t->pids[j].id != META_PARTITION_ID_NONE;
	     j = (j + 1) & mask) {
		uint32_t home = topics_pid_hash(t->pids[j].id) & mask;
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->pids[hole] = t->pids[j];
			hole = j;
		}
	}
	t->pids[hole] = (struct topics_pid_slot){0};
	t->pid_count--;
}

/* Grows every table so that VIEWS_ADDED more views and PIDS_ADDED more partitions fit.
 * Returns 0 or -ENOMEM with the table unchanged. */
static int topics_reserve(struct topics *t, uint32_t views_added, uint32_t pids_added)
{
	uint64_t views_need = (uint64_t)t->view_count + views_added;
	if (views_need > t->view_cap) {
		uint64_t cap = t->view_cap ? t->view_cap : TOPICS_TABLE_SLOTS_MIN;
		while (cap < views_need)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		struct topic_view **views = realloc(t->views, cap * sizeof(*views));
		if (!views)
			return -ENOMEM;
		t->views = views;
		t->view_cap = (uint32_t)cap;
	}
	uint64_t names_slots = topics_slots_for(views_need);
	if (names_slots > t->names_slots) {
		if (names_slots > UINT32_MAX)
			return -ENOMEM;
		struct topics_name_slot *old = t->names;
		uint32_t old_slots = t->names_slots;
		t->names = calloc(names_slots, sizeof(*t->names));
		if (!t->names) {
			t->names = old;
			return -ENOMEM;
		}
		t->names_slots = (uint32_t)names_slots;
		for (uint32_t i = 0; i < old_slots; i++)
			if (old[i].len)
				t->names[topics_name_slot(t, old[i].view->name, old[i].len,
							  old[i].hash)] = old[i];
		free(old);
	}
	uint64_t pids_slots = topics_slots_for((uint64_t)t->pid_count + pids_added);
	if (pids_slots > t->pids_slots) {
		if (pids_slots > UINT32_MAX)
			return -ENOMEM;
		struct topics_pid_slot *old = t->pids;
		uint32_t old_slots = t->pids_slots;
		t->pids = calloc(pids_slots, sizeof(*t->pids));
		if (!t->pids) {
			t->pids = old;
			return -ENOMEM;
		}
		t->pids_slots = (uint32_t)pids_slots;
		t->pid_count = 0;
		for (uint32_t i = 0; i < old_slots; i++) {
			if (old[i].id == META_PARTITION_ID_NONE)
				continue;
			uint32_t j = topics_pid_slot(t, old[i].id);
			t->pids[j] = old[i];
			t->pid_count++;
		}
		free(old);
	}
	return 0;
}

/* Adds V (whose name is not in the table) after topics_reserve made room. */
static void topics_insert(struct topics *t, struct topic_view *v)
{
	ASSERT(t->view_count < t->view_cap);
	v->slot = t->view_count;
	t->views[t->view_count++] = v;
	topics_name_put(t, v, topics_name_hash(v->name, v->name_len));
	for (uint32_t i = 0; i < v->partition_count; i++)
		topics_pid_put(t, v, i);
}

/* Takes V out of the table (not freed). */
static void topics_remove(struct topics *t, struct topic_view *v)
{
	uint32_t slot =
	    topics_name_slot(t, v->name, v->name_len, topics_name_hash(v->name, v->name_len));
	ASSERT(t->names[slot].view == v);
	topics_name_delete_at(t, slot);
	for (uint32_t i = 0; i < v->partition_count; i++)
		topics_pid_delete(t, v->partitions[i].partition_id);
	struct topic_view *last = t->views[--t->view_count];
	t->views[v->slot] = last;
	last->slot = v->slot;
}

/* Puts NOW into the table, replacing the view of the same name, which goes to *OLD
 * (NULL when none; the caller frees it). Returns 0, or -ENOMEM with the table as it
 * was and NOW still the caller's. */
static int topics_put(struct topics *t, struct topic_view *now, struct topic_view **old)
{
	struct topic_view *prev = (struct topic_view *)topics_find(t, now->name);
	int ret = topics_reserve(t, prev ? 0 : 1, now->partition_count);
	if (ret < 0)
		return ret;
	if (prev)
		topics_remove(t, prev);
	topics_insert(t, now);
	*old = prev;
	return 0;
}

/* After a change to the table: count it and let the owner act on it. */
static int topics_notify(struct topics *t, const struct topic_view *old,
			 const struct topic_view *now)
{
	t->generation++;
	t->stats.changes_applied++;
	return t->on_change ? t->on_change(t->change_ctx, old, now) : 0;
}

/* V leaves the table; freed, unless shard 0's batch under way sends it: then the
 * batch frees it when every peer has copied it. */
static void topics_view_release(struct topics *t, struct topic_view *v)
{
	if (v && v->bcast_entry) {
		t->batch->entries[v->bcast_entry - 1].owned = true;
		return;
	}
	free(v);
}

/* Inserts NOW (a view this table now owns, also on failure: then it is freed), replacing
 * its namesake, and notifies. Returns 0, -ENOMEM, or on_change's error. */
static int topics_apply_view(struct topics *t, struct topic_view *now)
{
	struct topic_view *old;
	int ret = topics_put(t, now, &old);
	if (ret < 0) {
		LOG_ERROR("topics: cannot apply topic '%s' to this shard's table: %s; it stays "
			  "out of date until a restart",
			  now->name, strerror(-ret));
		free(now);
		return ret;
	}
	ret = topics_notify(t, old, now);
	topics_view_release(t, old);
	return ret;
}

/* Removes topic NAME when its id is TOPIC_ID, and notifies. Returns 0 (also when the
 * table does not have it) or on_change's error. */
static int topics_apply_delete(struct topics *t, const char *name, uint64_t topic_id)
{
	struct topic_view *old = (struct topic_view *)topics_find(t, name);
	if (!old || old->topic_id != topic_id) {
		LOG_WARN("topics: deletion of topic '%s' (id %llu) that this shard's table does "
			 "not have",
			 name, (unsigned long long)topic_id);
		return 0;
	}
	topics_remove(t, old);
	int ret = topics_notify(t, old, NULL);
	topics_view_release(t, old);
	return ret;
}

/* ---- lookups ----------------------------------------------------------------------- */

const struct topic_view *topics_find_len(const struct topics *t, const char *name, size_t len)
{
	if (len > LIMITS_TOPIC_NAME_BYTES || t->view_count == 0)
		return NULL;
	return t->names[topics_name_slot(t, name, len, topics_name_hash(name, len))].view;
}

const struct topic_view *topics_find(const struct topics *t, const char *name)
{
	return topics_find_len(t, name, strnlen(name, LIMITS_TOPIC_NAME_BYTES + 1));
}

const struct topic_view *topics_by_partition_id(const struct topics *t, uint32_t partition_id,
						uint32_t *index)
{
	if (partition_id == META_PARTITION_ID_NONE || t->pid_count == 0)
		return NULL;
	const struct topics_pid_slot *s = &t->pids[topics_pid_slot(t, partition_id)];
	if (s->id != partition_id)
		return NULL;
	if (index)
		*index = s->index;
	return s->view;
}

uint32_t topics_count(const struct topics *t)
{
	return t->view_count;
}

const struct topic_view *topics_at(const struct topics *t, uint32_t i)
{
	ASSERT(i < t->view_count);
	return t->views[i];
}

uint64_t topics_generation(const struct topics *t)
{
	return t->generation;
}

const struct topics_defaults *topics_defaults(const struct topics *t)
{
	return &t->defaults;
}

void topics_stats(const struct topics *t, struct topics_stats *out)
{
	*out = t->stats;
}

bool topics_sanity(const struct topics *t)
{
	uint64_t partitions = 0, names = 0;
	for (uint32_t i = 0; i < t->view_count; i++) {
		const struct topic_view *v = t->views[i];
		if (v->slot != i || v->name_len != strlen(v->name) || topics_find(t, v->name) != v)
			return false;
		for (uint32_t p = 0; p < v->partition_count; p++) {
			uint32_t index;
			if (topics_by_partition_id(t, v->partitions[p].partition_id, &index) != v ||
			    index != p || v->partitions[p].shard >= t->shard_count)
				return false;
		}
		partitions += v->partition_count;
	}
	for (uint32_t i = 0; i < t->names_slots; i++) {
		const struct topics_name_slot *s = &t->names[i];
		if (s->len == 0)
			continue;
		if (!s->view || s->len != s->view->name_len ||
		    s->hash != topics_name_hash(s->view->name, s->len))
			return false;
		names++;
	}
	return names == t->view_count && partitions == t->pid_count &&
	       2ull * t->view_count <= t->names_slots && 2ull * t->pid_count <= t->pids_slots;
}

/* ---- the change protocol ------------------------------------------------------------ */

static void topics_kick(struct topics *t, uint64_t delay_ms)
{
	/* A timer rather than work done in place: answers never run inside the topics_*
	 * call that asked, and the loop does not sleep while work waits. -ENOSPC (every
	 * timer slot armed) leaves the work to the hook, which runs on every turn. */
	if (loop_timer_arm(&t->shard->loop, &t->kick, delay_ms) < 0)
		LOG_WARN("topics: no free loop timer; the change waits for the next loop turn");
}

/* Hands REQ's answer to its asker, on the requesting shard, and frees it. */
static void topics_deliver(struct topics *t, struct topics_request *req, int status, bool committed)
{
	ASSERT(t->stats.pending > 0);
	t->stats.pending--;
	if (!t->quiescing) {
		const struct topic_view *view = NULL;
		if (committed && req->kind != TOPICS_CHANGE_DELETE)
			view = topics_find(t, req->name);
		t->stats.changes_answered++;
		req->done(req->done_ctx, status, view);
	}
	free(req);
}

/* Requester: the reply from shard 0; the record is ours again. */
static void topics_change_replied(struct shard_call *call, const struct ring_msg *reply)
{
	_Static_assert(offsetof(struct topics_request, call) == 0, "a call is its record");
	struct topics_request *req = (struct topics_request *)call;
	topics_deliver(call->ctx, req, reply->status, reply->arg != 0);
}

/* Requester: sends queued records to shard 0 until the mesh refuses one. */
static void topics_send_queued(struct topics *t)
{
	while (t->send_head) {
		struct topics_request *req = t->send_head;
		/* Read the link first: once sent, shard 0 owns the record and may reuse it. */
		struct topics_request *next = req->next;
		int ret = shard_call(t->shard, 0, SHARD_OP_TOPICS_CHANGE, req, 0, &req->call);
		if (ret == -EAGAIN) {
			t->stats.send_retries++;
			topics_kick(t, TOPICS_RETRY_MS);
			return;
		}
		ASSERT(ret == 0);
		t->send_head = next;
		if (!next)
			t->send_tail = NULL;
	}
}

static void topics_work_push(struct topics *t, struct topics_request *req)
{
	req->next = NULL;
	if (t->work_tail)
		t->work_tail->next = req;
	else
		t->work_head = req;
	t->work_tail = req;
	t->stats.queued++;
}

static struct topics_request *topics_work_pop(struct topics *t)
{
	struct topics_request *req = t->work_head;
	if (req) {
		t->work_head = req->next;
		if (!t->work_head)
			t->work_tail = NULL;
		t->stats.queued--;
	}
	return req;
}

/* Shard 0: answers REQ, locally or with the reply that hands the record back. */
static void topics_answer(struct topics *t, struct topics_request *req, int status)
{
	if (req->origin == t->shard_id) {
		topics_deliver(t, req, status, req->committed);
		return;
	}
	int ret = shard_reply(t->shard, req->origin, &req->msg, status, req, req->committed);
	ASSERT(ret == 0); /* a reply always fits (core/mesh.h) */
}

/* Shard 0: every peer acknowledged the batch (or there are none): frees what it owns
 * and answers its changes, in order. */
static void topics_finish_batch(struct topics *t)
{
	struct topics_batch *b = t->batch;
	t->bcast_active = false;
	for (uint32_t i = 0; i < b->count; i++) {
		struct topics_entry *e = &b->entries[i];
		if (!e->view)
			continue;
		if (e->owned)
			free(e->view);
		else
			e->view->bcast_entry = 0;
		e->view = NULL;
	}
	/* A done callback may ask for more changes: they wait for the next batch, which
	 * starts from the loop, not from here, so these entries stay put meanwhile. */
	for (uint32_t i = 0; i < b->count; i++) {
		struct topics_entry *e = &b->entries[i];
		int peer = atomic_load_explicit(&e->peer_status, memory_order_acquire);
		topics_answer(t, e->req, e->req->status != 0 ? e->req->status : peer);
	}
	b->count = 0;
}

static void topics_bcast_acked(struct shard_call *call, const struct ring_msg *reply)
{
	struct topics *t = call->ctx;
	uint32_t peer = (uint32_t)(call - t->bcast_calls);
	ASSERT(t->bcast_active && t->bcast_acks_pending > 0 && peer < t->shard_count);
	if (reply->status < 0)
		LOG_WARN("topics: shard %u could not apply every change of a batch of %u: %s", peer,
			 t->batch->count, strerror(-reply->status));
	t->bcast_acks_pending--;
	if (t->bcast_unsent == 0 && t->bcast_acks_pending == 0)
		topics_finish_batch(t);
}

/* Shard 0: sends the batch to every peer not sent to yet; finishes it when nobody is
 * left to wait for. */
static void topics_bcast_send(struct topics *t)
{
	bool refused = false;
	for (uint32_t peer = 1; peer < t->shard_count && t->bcast_unsent > 0; peer++) {
		if (t->bcast_sent[peer])
			continue;
		t->bcast_calls[peer] = (struct shard_call){.done = topics_bcast_acked, .ctx = t};
		int ret = shard_call(t->shard, peer, SHARD_OP_TOPICS_UPDATE, t->batch,
				     t->batch->count, &t->bcast_calls[peer]);
		if (ret == -EAGAIN) {
			refused = true;
			continue;
		}
		ASSERT(ret == 0);
		t->bcast_sent[peer] = true;
		t->bcast_unsent--;
		t->bcast_acks_pending++;
	}
	if (refused) {
		t->stats.send_retries++;
		topics_kick(t, TOPICS_RETRY_MS);
	}
	if (t->bcast_unsent == 0 && t->bcast_acks_pending == 0)
		topics_finish_batch(t);
}

static const char *topics_change_name(enum topics_change_kind kind)
{
	switch (kind) {
	case TOPICS_CHANGE_CREATE:
		return "create";
	case TOPICS_CHANGE_DELETE:
		return "delete";
	case TOPICS_CHANGE_ADD_PARTITIONS:
		return "add partitions to";
	case TOPICS_CHANGE_SET_CONFIG:
		return "set a config of";
	}
	return "?";
}

/*
 * Shard 0, in a meta batch: makes REQ's change in meta and fills E with it: the view to
 * apply and broadcast once the batch is durable, or none (REQ->status then says why:
 * meta's refusal, or no memory for a view). Returns -ENOBUFS, with nothing done, when
 * the change does not fit in the batch's journal record; else 0.
 */
static int topics_stage(struct topics *t, struct topics_request *req, struct topics_entry *e)
{
	const struct meta_topic *mt = NULL;
	struct topic_view *view = NULL;
	int ret;
	switch (req->kind) {
	case TOPICS_CHANGE_CREATE: {
		uint32_t partitions = req->count ? req->count : t->defaults.partitions;
		ret = meta_create_topic(t->meta, req->name, partitions, req->configs,
					req->config_count, &mt);
		break;
	}
	case TOPICS_CHANGE_DELETE:
		mt = meta_find_topic(t->meta, req->name);
		if (!mt) {
			ret = -ENOENT;
			break;
		}
		/* A copy for the peers, made while meta still has the topic. */
		view = topics_view_from_meta(mt, &t->defaults);
		mt = NULL;
		ret = view ? meta_delete_topic(t->meta, req->name) : -ENOMEM;
		break;
	case TOPICS_CHANGE_ADD_PARTITIONS:
		ret = meta_add_partitions(t->meta, req->name, req->count);
		break;
	case TOPICS_CHANGE_SET_CONFIG:
		ret = meta_set_topic_config(t->meta, req->name, req->key, req->value);
		break;
	default:
		ASSERT(!"unknown topic change");
		ret = -EINVAL;
	}
	if (ret == -ENOBUFS) {
		free(view);
		return ret;
	}
	e->view = NULL;
	e->kind = 0;
	atomic_store_explicit(&e->peer_status, 0, memory_order_relaxed);
	e->req = req;
	e->owned = false;
	e->after_made = false;
	req->status = 0;
	req->committed = false;
	if (ret < 0) {
		free(view);
		t->stats.refused++;
		req->status = ret;
		LOG_DEBUG("topics: refused to %s topic '%s': %s", topics_change_name(req->kind),
			  req->name, strerror(-ret));
		return 0;
	}
	req->committed = true;
	if (req->kind == TOPICS_CHANGE_DELETE) {
		e->view = view;
		e->kind = TOPICS_UPDATE_DELETE;
		e->owned = true;
		return 0;
	}
	if (!mt)
		mt = meta_find_topic(t->meta, req->name);
	ASSERT(mt);
	view = topics_view_from_meta(mt, &t->defaults);
	if (!view) {
		LOG_ERROR("topics: no memory for topic '%s' after journaling it; shards' tables "
			  "stay out of date until a restart",
			  req->name);
		req->status = -ENOMEM;
		return 0;
	}
	e->view = view;
	e->kind = TOPICS_UPDATE_UPSERT;
	return 0;
}

/* Shard 0: the batch's write failed, so none of its changes happened: answers every
 * change made with the write error, and so every refusal that came after one (it may
 * rest on a change now undone, as -EEXIST on a create earlier in the batch). */
static void topics_batch_failed(struct topics *t, int err)
{
	struct topics_batch *b = t->batch;
	LOG_ERROR("topics: journaling a batch of %u change(s) failed: %s; none of them is made",
		  b->count, strerror(-err));
	for (uint32_t i = 0; i < b->count; i++) {
		struct topics_entry *e = &b->entries[i];
		if (e->req->committed || e->after_made) {
			e->req->committed = false;
			e->req->status = err;
		}
		free(e->view); /* never in a table */
		e->view = NULL;
	}
	for (uint32_t i = 0; i < b->count; i++)
		topics_answer(t, b->entries[i].req, b->entries[i].req->status);
	b->count = 0;
}

/* Shard 0: the batch is durable: applies entry I to this table and notifies. */
static void topics_batch_apply(struct topics *t, uint32_t i)
{
	struct topics_batch *b = t->batch;
	struct topics_entry *e = &b->entries[i];
	struct topics_request *req = e->req;
	if (!req->committed)
		return;
	t->stats.committed++;
	struct topic_view *view = e->view;
	if (!view)
		return;
	view->bcast_entry = i + 1;
	b->updates++;
	if (e->kind == TOPICS_UPDATE_DELETE) {
		LOG_INFO("topics: deleted topic '%s' (id %llu, %u partitions retired)", view->name,
			 (unsigned long long)view->topic_id, view->partition_count);
		req->status = topics_apply_delete(t, view->name, view->topic_id);
		return;
	}
	if (req->kind == TOPICS_CHANGE_SET_CONFIG)
		LOG_INFO("topics: topic '%s': %s %s%s%s", view->name,
			 req->value ? "set" : "removed", req->key, req->value ? "=" : "",
			 req->value ? req->value : "");
	else
		LOG_INFO("topics: %s topic '%s' (id %llu): %u partitions",
			 req->kind == TOPICS_CHANGE_CREATE ? "created" : "grew", view->name,
			 (unsigned long long)view->topic_id, view->partition_count);
	/* The table keeps the view; peers copy it before acknowledging, and a later change
	 * of the batch that replaces it hands it to the batch (topics_view_release). If it
	 * cannot go into the table (no memory), the batch owns it. */
	struct topic_view *old;
	int ret = topics_put(t, view, &old);
	if (ret < 0) {
		LOG_ERROR("topics: cannot apply topic '%s' to shard 0's table: %s; it stays out "
			  "of date until a restart",
			  view->name, strerror(-ret));
		req->status = ret;
		e->owned = true;
		return;
	}
	req->status = topics_notify(t, old, view);
	topics_view_release(t, old);
}

/* Shard 0: takes the waiting changes into one batch: makes them in meta, journals them
 * with one write and fdatasync, applies them here and starts their broadcast. */
static void topics_start_batch(struct topics *t)
{
	struct topics_batch *b = t->batch;
	ASSERT(!t->bcast_active && t->work_head && b->count == 0);
	b->updates = 0;
	bool made = false;
	meta_batch_begin(t->meta);
	while (t->work_head && b->count < TOPICS_BATCH_MAX) {
		struct topics_entry *e = &b->entries[b->count];
		if (topics_stage(t, t->work_head, e) == -ENOBUFS) {
			ASSERT(made); /* the first change of a batch always fits */
			break;	      /* it stays first in the queue, for the next batch */
		}
		e->after_made = made;
		made |= e->req->committed;
		topics_work_pop(t);
		b->count++;
	}
	int ret = meta_batch_end(t->meta);
	if (made)
		t->stats.batches++;
	if (ret < 0) {
		topics_batch_failed(t, ret);
		return;
	}
	for (uint32_t i = 0; i < b->count; i++)
		topics_batch_apply(t, i);
	t->bcast_active = true;
	t->bcast_acks_pending = 0;
	t->bcast_unsent = b->updates > 0 ? t->shard_count - 1 : 0;
	memset(t->bcast_sent, 0, sizeof(t->bcast_sent));
	topics_bcast_send(t);
}

/* Everything that can move: records waiting to go to shard 0, and on shard 0 the
 * broadcast under way and the changes waiting for the next batch. */
static void topics_progress(struct topics *t)
{
	if (t->send_head)
		topics_send_queued(t);
	if (!t->meta)
		return;
	if (t->bcast_active && t->bcast_unsent > 0)
		topics_bcast_send(t);
	if (t->bcast_active || !t->work_head || t->quiescing)
		return;
	topics_start_batch(t);
	/* Done at once (one shard, or nothing to send): the rest on the next turn. */
	if (!t->bcast_active && t->work_head && !t->quiescing)
		topics_kick(t, 0);
}

static void topics_hook(void *ctx, struct loop *loop)
{
	struct topics *t = ctx;
	if (t->send_head || (t->meta && ((t->bcast_active && t->bcast_unsent > 0) ||
					 (!t->bcast_active && t->work_head && !t->quiescing))))
		topics_progress(t);
}

static void topics_kick_fired(void *ctx, struct loop *loop, struct loop_timer *timer)
{
	topics_progress(ctx);
}

/* Shard 0: a change record from a peer; it is ours until we reply. */
static void topics_on_change_request(void *ctx, struct shard *shard, uint32_t from,
				     const struct ring_msg *request)
{
	struct topics *t = ctx;
	struct topics_request *req = request->payload;
	req->msg = *request;
	req->origin = from;
	req->status = 0;
	req->committed = false;
	if (t->quiescing) {
		topics_answer(t, req, -ESHUTDOWN);
		return;
	}
	topics_work_push(t, req);
	/* The hook takes it on this turn's end; nothing else to wake. */
}

/* Every shard but 0: a batch from shard 0 to copy, in order (read only but for the
 * entries' peer_status: shard 0 keeps it and its views alive until this reply). */
static void topics_on_update(void *ctx, struct shard *shard, uint32_t from,
			     const struct ring_msg *request)
{
	struct topics *t = ctx;
	struct topics_batch *b = request->payload;
	ASSERT(request->arg == b->count);
	int first = 0;
	for (uint32_t i = 0; i < b->count; i++) {
		struct topics_entry *e = &b->entries[i];
		const struct topic_view *src = e->view;
		if (!src)
			continue;
		int status;
		if (e->kind == TOPICS_UPDATE_DELETE) {
			status = topics_apply_delete(t, src->name, src->topic_id);
		} else {
			struct topic_view *copy = topics_view_clone(src, &t->defaults);
			if (copy) {
				status = topics_apply_view(t, copy);
			} else {
				LOG_ERROR("topics: no memory to copy topic '%s'; this shard's "
					  "table stays out of date until a restart",
					  src->name);
				status = -ENOMEM;
			}
		}
		if (status < 0) {
			int none = 0;
			atomic_compare_exchange_strong(&e->peer_status, &none, status);
			if (first == 0)
				first = status;
		}
	}
	int ret = shard_reply(shard, from, request, first, request->payload, 0);
	ASSERT(ret == 0);
}

/* ---- asking for changes ------------------------------------------------------------ */

/* A zeroed record with EXTRA bytes behind it for strings. */
static struct topics_request *topics_request_new(struct topics *t, enum topics_change_kind kind,
						 const char *name, size_t extra,
						 topics_done_fn done, void *ctx)
{
	struct topics_request *req = calloc(1, sizeof(*req) + extra);
	if (!req)
		return NULL;
	req->kind = kind;
	req->origin = t->shard_id;
	req->done = done;
	req->done_ctx = ctx;
	strcpy(req->name, name);
	return req;
}

/* Checks what every change checks first. Returns 0, -EINVAL, -ESHUTDOWN or -EAGAIN. */
static int topics_admit(const struct topics *t, const char *name, topics_done_fn done)
{
	ASSERT(done);
	if (t->quiescing)
		return -ESHUTDOWN;
	if (!meta_topic_name_valid(name))
		return -EINVAL;
	if (t->stats.pending >= LIMITS_TOPICS_PENDING_MAX)
		return -EAGAIN;
	return 0;
}

/* Queues REQ: on shard 0 for its turn, elsewhere to be sent to shard 0. */
static int topics_submit(struct topics *t, struct topics_request *req)
{
	t->stats.changes_asked++;
	t->stats.pending++;
	req->next = NULL;
	if (t->shard_id == 0) {
		topics_work_push(t, req);
		topics_kick(t, 0);
		return 0;
	}
	req->call = (struct shard_call){.done = topics_change_replied, .ctx = t};
	if (t->send_tail)
		t->send_tail->next = req;
	else
		t->send_head = req;
	t->send_tail = req;
	topics_send_queued(t);
	return 0;
}

int topics_create(struct topics *t, const char *name, uint32_t partitions,
		  const struct meta_config_kv *configs, uint32_t config_count, topics_done_fn done,
		  void *ctx)
{
	int ret = topics_admit(t, name, done);
	if (ret < 0)
		return ret;
	if (partitions > LIMITS_META_PARTITIONS_PER_TOPIC_MAX ||
	    config_count > LIMITS_META_CONFIGS_PER_TOPIC_MAX || (config_count && !configs))
		return -EINVAL;
	size_t strings = 0;
	for (uint32_t i = 0; i < config_count; i++) {
		if (!configs[i].value || topics_config_check(configs[i].key, configs[i].value) < 0)
			return -EINVAL;
		strings += strlen(configs[i].key) + 1 + strlen(configs[i].value) + 1;
	}
	size_t kv_bytes = (size_t)config_count * sizeof(struct meta_config_kv);
	struct topics_request *req =
	    topics_request_new(t, TOPICS_CHANGE_CREATE, name, kv_bytes + strings, done, ctx);
	if (!req)
		return -ENOMEM;
	_Static_assert(sizeof(struct topics_request) % _Alignof(struct meta_config_kv) == 0,
		       "the configs behind a request are aligned");
	req->count = partitions;
	req->config_count = config_count;
	req->configs = (struct meta_config_kv *)(req + 1);
	char *p = (char *)(req->configs + config_count);
	for (uint32_t i = 0; i < config_count; i++) {
		size_t klen = strlen(configs[i].key) + 1, vlen = strlen(configs[i].value) + 1;
		req->configs[i].key = memcpy(p, configs[i].key, klen);
		p += klen;
		req->configs[i].value = memcpy(p, configs[i].value, vlen);
		p += vlen;
	}
	return topics_submit(t, req);
}

int topics_delete(struct topics *t, const char *name, topics_done_fn done, void *ctx)
{
	int ret = topics_admit(t, name, done);
	if (ret < 0)
		return ret;
	struct topics_request *req =
	    topics_request_new(t, TOPICS_CHANGE_DELETE, name, 0, done, ctx);
	if (!req)
		return -ENOMEM;
	return topics_submit(t, req);
}

int topics_add_partitions(struct topics *t, const char *name, uint32_t new_total,
			  topics_done_fn done, void *ctx)
{
	int ret = topics_admit(t, name, done);
	if (ret < 0)
		return ret;
	if (new_total == 0 || new_total > LIMITS_META_PARTITIONS_PER_TOPIC_MAX)
		return -EINVAL;
	struct topics_request *req =
	    topics_request_new(t, TOPICS_CHANGE_ADD_PARTITIONS, name, 0, done, ctx);
	if (!req)
		return -ENOMEM;
	req->count = new_total;
	return topics_submit(t, req);
}

int topics_set_config(struct topics *t, const char *name, const char *key, const char *value,
		      topics_done_fn done, void *ctx)
{
	int ret = topics_admit(t, name, done);
	if (ret < 0)
		return ret;
	ret = topics_config_check(key, value);
	if (ret < 0)
		return ret;
	size_t klen = strlen(key) + 1, vlen = value ? strlen(value) + 1 : 0;
	struct topics_request *req =
	    topics_request_new(t, TOPICS_CHANGE_SET_CONFIG, name, klen + vlen, done, ctx);
	if (!req)
		return -ENOMEM;
	char *p = (char *)(req + 1);
	req->key = memcpy(p, key, klen);
	req->value = value ? memcpy(p + klen, value, vlen) : NULL;
	return topics_submit(t, req);
}

/* ---- open and close ---------------------------------------------------------------- */

int topics_open(struct topics **out, const struct topics_options *opts)
{
	if (!opts->shard || !opts->snapshot || opts->defaults.partitions == 0 ||
	    (opts->shard->id == 0) != (opts->meta != NULL))
		return -EINVAL;
	struct topics *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->shard = opts->shard;
	t->shard_id = opts->shard->id;
	t->shard_count = opts->shard->set->count;
	t->meta = opts->meta;
	t->defaults = opts->defaults;
	t->on_change = opts->on_change;
	t->change_ctx = opts->change_ctx;
	loop_timer_init(&t->kick, topics_kick_fired, t);
	if (t->meta) {
		t->batch = calloc(1, sizeof(*t->batch));
		if (!t->batch) {
			free(t);
			return -ENOMEM;
		}
	}

	uint32_t topic_count = meta_topic_count(opts->snapshot);
	uint64_t partitions = 0;
	for (uint32_t i = 0; i < topic_count; i++)
		partitions += meta_topic_at(opts->snapshot, i)->partition_count;
	int ret = partitions > UINT32_MAX ? -ENOMEM
					  : topics_reserve(t, topic_count, (uint32_t)partitions);
	if (ret < 0)
		goto out_free;
	for (uint32_t i = 0; i < topic_count; i++) {
		struct topic_view *v =
		    topics_view_from_meta(meta_topic_at(opts->snapshot, i), &t->defaults);
		if (!v) {
			ret = -ENOMEM;
			goto out_free;
		}
		topics_insert(t, v);
	}
	t->generation = 1;
	DASSERT(topics_sanity(t));

	ret = loop_add_hook(&t->shard->loop, topics_hook, t);
	if (ret < 0)
		goto out_free;
	shard_on_op(t->shard, SHARD_OP_TOPICS_UPDATE, topics_on_update, t);
	if (t->meta)
		shard_on_op(t->shard, SHARD_OP_TOPICS_CHANGE, topics_on_change_request, t);
	*out = t;
	return 0;

out_free:
	for (uint32_t i = 0; i < t->view_count; i++)
		free(t->views[i]);
	free(t->views);
	free(t->names);
	free(t->pids);
	free(t->batch);
	free(t);
	return ret;
}

void topics_quiesce(struct topics *t)
{
	t->quiescing = true;
}

/* Frees a FIFO of records. On shard 0 a peer's record is ours until answered, and the
 * peer never touches it again unless a reply comes, so freeing it is safe. */
static void topics_free_queue(struct topics_request *req)
{
	while (req) {
		struct topics_request *next = req->next;
		free(req);
		req = next;
	}
}

void topics_close(struct topics *t)
{
	if (!t)
		return;
	t->quiescing = true;
	shard_on_op(t->shard, SHARD_OP_TOPICS_UPDATE, NULL, NULL);
	if (t->meta)
		shard_on_op(t->shard, SHARD_OP_TOPICS_CHANGE, NULL, NULL);
	loop_remove_hook(&t->shard->loop, topics_hook, t);
	loop_timer_disarm(&t->shard->loop, &t->kick);

	/* The batch still being broadcast may be read by a peer that has not answered:
	 * it is left allocated, with its views, rather than freed under it. Its records
	 * are ours (peers never see them again without a reply). */
	bool keep = false;
	if (t->bcast_active) {
		struct topics_batch *b = t->batch;
		keep = t->bcast_acks_pending > 0;
		if (keep)
			LOG_WARN(
			    "topics: stopping while %u shard(s) had not acknowledged a batch of "
			    "%u change(s); leaving it allocated",
			    t->bcast_acks_pending, b->count);
		for (uint32_t i = 0; i < b->count; i++) {
			if (!keep && b->entries[i].owned)
				free(b->entries[i].view);
			free(b->entries[i].req);
		}
	}
	topics_free_queue(t->send_head);
	topics_free_queue(t->work_head);
	for (uint32_t i = 0; i < t->view_count; i++)
		if (!keep || !t->views[i]->bcast_entry)
			free(t->views[i]);
	if (!keep)
		free(t->batch);
	free(t->views);
	free(t->names);
	free(t->pids);
	free(t);
}
