/*
 * tests/unit/check_meta.c: Check tests of core/meta on real files in a temporary
 * directory: topics created, deleted, grown and configured come back identical after a
 * reopen; partition ids are never reused (also across a compaction); 10,000 topics
 * reopen and are all found by name and partition id; a torn tail record and a flipped
 * bit in the last record are dropped, while damage to a middle record (content or
 * length) fails the open with the file and byte position; compaction shrinks the file
 * and survives a reopen; Kafka's topic-name rule; the placement formula and its
 * persistence across a change of shard count (and the refusal when a stored shard is
 * gone); producer ids that only grow across restarts; the error codes of every change;
 * a write that fails half-way (RLIMIT_FSIZE) leaves no trace. Group commit
 * (meta_batch_*): a batch of creates, deletes, growths and configs, with changes that
 * depend on earlier ones of the same batch, is one BATCH record and reopens identical
 * (a batch of one is a plain record, an empty one writes nothing); a batch torn at any
 * byte, or with a middle block that never reached the disk, is dropped whole at open
 * (never taken for damage in the middle of the journal), while a bit flipped inside a
 * batch followed by a later record fails the open; a batch whose write fails is undone
 * in memory, with its ids not handed out again; a batch that would pass the record limit
 * refuses the change (-ENOBUFS) and the next batch takes it. Nothing here needs more
 * than a writable temporary directory ($TMPDIR or /tmp).
 */
#include "core/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/testdir.h"
#include "tests/unit/unit.h"

static char dir[4096];	   /* this case's data directory */
static char journal[4200]; /* dir/meta.journal */

static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/check_meta.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp(%s): %s", dir, strerror(errno));
	snprintf(journal, sizeof(journal), "%s/%s", dir, META_JOURNAL_NAME);
}

static void remove_dir(void)
{
	test_remove_tree(dir);
}

static struct meta *open_ok(uint32_t shards)
{
	struct meta *m = NULL;
	char err[512];
	int ret = meta_open(&m, dir, shards, err, sizeof(err));
	ck_assert_msg(ret == 0, "meta_open(%s, %u) = %s: %s", dir, shards, strerror(-ret), err);
	ck_assert(meta_sanity(m));
	return m;
}

static int open_fails(uint32_t shards, char *err, size_t err_len)
{
	struct meta *m = NULL;
	int ret = meta_open(&m, dir, shards, err, err_len);
	ck_assert_msg(ret < 0, "meta_open succeeded, expected a failure");
	ck_assert(m == NULL);
	return ret;
}

static off_t file_size(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static void truncate_to(off_t size)
{
	ck_assert_int_eq(truncate(journal, size), 0);
}

static void flip_bit(off_t pos, int bit)
{
	int fd = open(journal, O_RDWR);
	ck_assert_int_ge(fd, 0);
	unsigned char b;
	ck_assert_int_eq(pread(fd, &b, 1, pos), 1);
	b ^= (unsigned char)(1u << bit);
	ck_assert_int_eq(pwrite(fd, &b, 1, pos), 1);
	close(fd);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole state as text, topics sorted by name, so two metas compare with strcmp. */
static char *dump(const struct meta *m)
{
	uint32_t n = meta_topic_count(m);
	char **lines = calloc(n + 1, sizeof(*lines));
	for (uint32_t i = 0; i < n; i++) {
		const struct meta_topic *t = meta_topic_at(m, i);
		size_t size = 0;
		FILE *f = open_memstream(&lines[i], &size);
		fprintf(f, "%s id=%llu parts=%u:", t->name, (unsigned long long)t->topic_id,
			t->partition_count);
		for (uint32_t p = 0; p < t->partition_count; p++)
			fprintf(f, " %u@%u", t->partitions[p].partition_id, t->partitions[p].shard);
		fprintf(f, " configs:");
		for (uint32_t c = 0; c < t->config_count; c++)
			fprintf(f, " %s=%s", t->configs[c].key, t->configs[c].value);
		fclose(f);
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);
	fprintf(f, "next_partition_id=%u\n", meta_next_partition_id(m));
	for (uint32_t i = 0; i < n; i++) {
		fprintf(f, "%s\n", lines[i]);
		free(lines[i]);
	}
	fclose(f);
	free(lines);
	return out;
}

static void assert_same(const struct meta *a_meta, const char *before)
{
	char *after = dump(a_meta);
	ck_assert_msg(strcmp(before, after) == 0,
		      "state differs after reopen:\n--- before\n%s"
		      "--- after\n%s",
		      before, after);
	free(after);
}

static const struct meta_topic *create_ok(struct meta *m, const char *name, uint32_t parts)
{
	const struct meta_topic *t = NULL;
	int ret = meta_create_topic(m, name, parts, NULL, 0, &t);
	ck_assert_msg(ret == 0, "create %s: %s", name, strerror(-ret));
	ck_assert_ptr_eq(meta_find_topic(m, name), t);
	return t;
}

START_TEST(test_roundtrip)
{
	make_dir();
	struct meta *m = open_ok(4);
	ck_assert_uint_eq(meta_topic_count(m), 0);
	const struct meta_config_kv cfg[] = {
	    {"retention.ms", "604800000"},
	    {"cleanup.policy", "delete"},
	    {"retention.bytes", "-1"},
	};
	const struct meta_topic *t = NULL;
	ck_assert_int_eq(meta_create_topic(m, "orders", 6, cfg, 3, &t), 0);
	ck_assert_str_eq(t->name, "orders");
	ck_assert_uint_eq(t->partition_count, 6);
	ck_assert_uint_eq(t->config_count, 3);
	ck_assert_str_eq(meta_topic_config(t, "retention.ms"), "604800000");
	ck_assert_str_eq(meta_topic_config(t, "cleanup.policy"), "delete");
	ck_assert_ptr_null(meta_topic_config(t, "segment.bytes"));
	create_ok(m, "logs.app-1_x", 1);
	create_ok(m, "gone", 3);
	create_ok(m, "grown", 2);
	ck_assert_int_eq(meta_delete_topic(m, "gone"), 0);
	ck_assert_ptr_null(meta_find_topic(m, "gone"));
	ck_assert_int_eq(meta_add_partitions(m, "grown", 5), 0);
	ck_assert_uint_eq(meta_find_topic(m, "grown")->partition_count, 5);
	ck_assert_int_eq(meta_set_topic_config(m, "grown", "retention.ms", "1000"), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "grown", "retention.ms", "2000"), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "orders", "retention.bytes", NULL), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "orders", "retention.bytes", NULL), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "orders", "empty.value", ""), 0);
	ck_assert(meta_sanity(m));
	char *before = dump(m);
	meta_close(m);

	m = open_ok(4);
	assert_same(m, before);
	t = meta_find_topic(m, "grown");
	ck_assert_str_eq(meta_topic_config(t, "retention.ms"), "2000");
	t = meta_find_topic(m, "orders");
	ck_assert_ptr_null(meta_topic_config(t, "retention.bytes"));
	ck_assert_str_eq(meta_topic_config(t, "empty.value"), "");
	/* Partition ids map back to their topic and index. */
	for (uint32_t p = 0; p < t->partition_count; p++) {
		uint32_t index = 99;
		ck_assert_ptr_eq(
		    meta_topic_by_partition_id(m, t->partitions[p].partition_id, &index), t);
		ck_assert_uint_eq(index, p);
	}
	/* And once more through a compaction. */
	ck_assert_int_eq(meta_compact(m), 0);
	ck_assert_uint_eq(meta_journal_bytes(m), meta_snapshot_bytes(m));
	ck_assert_uint_eq((uint64_t)file_size(journal), meta_journal_bytes(m));
	meta_close(m);
	m = open_ok(4);
	assert_same(m, before);
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

START_TEST(test_ids_never_reused)
{
	make_dir();
	struct meta *m = open_ok(2);
	const struct meta_topic *t = create_ok(m, "a", 3);
	uint32_t old_ids[3];
	uint64_t old_topic_id = t->topic_id;
	for (int i = 0; i < 3; i++) {
		old_ids[i] = t->partitions[i].partition_id;
		ck_assert_uint_ne(old_ids[i], META_PARTITION_ID_NONE);
		ck_assert(meta_partition_id_live(m, old_ids[i]));
	}
	ck_assert_int_eq(meta_delete_topic(m, "a"), 0);
	for (int i = 0; i < 3; i++)
		ck_assert(!meta_partition_id_live(m, old_ids[i]));
	t = create_ok(m, "a", 3);
	ck_assert_uint_ne(t->topic_id, old_topic_id);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			ck_assert_uint_ne(t->partitions[i].partition_id, old_ids[j]);
	/* The newest topic is deleted too, then a compaction forgets both topics: the
	 * retired ids must stay retired. */
	uint32_t high = t->partitions[2].partition_id;
	ck_assert_int_eq(meta_delete_topic(m, "a"), 0);
	ck_assert_int_eq(meta_compact(m), 0);
	meta_close(m);
	m = open_ok(2);
	ck_assert_uint_eq(meta_topic_count(m), 0);
	ck_assert_uint_gt(meta_next_partition_id(m), high);
	t = create_ok(m, "a", 1);
	ck_assert_uint_gt(t->partitions[0].partition_id, high);
	ck_assert(!meta_partition_id_live(m, high));
	ck_assert(!meta_partition_id_live(m, old_ids[0]));
	ck_assert(!meta_partition_id_live(m, META_PARTITION_ID_NONE));
	ck_assert(!meta_partition_id_live(m, 1000000));
	meta_close(m);
	remove_dir();
}
END_TEST

START_TEST(test_ten_thousand_topics)
{
	make_dir();
	struct meta *m = open_ok(8);
	char name[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "topic-%05d", i);
		ck_assert_int_eq(meta_create_topic(m, name, 1 + (uint32_t)(i % 3), NULL, 0, NULL),
				 0);
	}
	ck_assert_uint_eq(meta_topic_count(m), 10000);
	/* One record per topic appended, never the whole file rewritten: the journal is
	 * the sum of the records, under the compaction threshold. */
	ck_assert_uint_eq(meta_journal_bytes(m), meta_snapshot_bytes(m));
	meta_close(m);

	m = open_ok(8);
	ck_assert_uint_eq(meta_topic_count(m), 10000);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "topic-%05d", i);
		const struct meta_topic *t = meta_find_topic(m, name);
		ck_assert_msg(t != NULL, "%s lost", name);
		ck_assert_uint_eq(t->partition_count, 1 + (uint32_t)(i % 3));
		for (uint32_t p = 0; p < t->partition_count; p++) {
			uint32_t index;
			ck_assert_ptr_eq(
			    meta_topic_by_partition_id(m, t->partitions[p].partition_id, &index),
			    t);
			ck_assert_uint_eq(index, p);
		}
	}
	ck_assert_ptr_null(meta_find_topic(m, "topic-10000"));
	meta_close(m);
	remove_dir();
}
END_TEST

/* Creates "t0".."t4" and returns where the record of "t4" starts. */
static off_t five_topics(void)
{
	struct meta *m = open_ok(1);
	char name[8];
	off_t last = 0;
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		last = (off_t)meta_journal_bytes(m);
		create_ok(m, name, 2);
	}
	meta_close(m);
	return last;
}

static void assert_first_four_only(void)
{
	struct meta *m = open_ok(1);
	ck_assert_uint_eq(meta_topic_count(m), 4);
	ck_assert_ptr_nonnull(meta_find_topic(m, "t3"));
	ck_assert_ptr_null(meta_find_topic(m, "t4"));
	/* Appending continues cleanly after the cut. */
	create_ok(m, "t5", 1);
	meta_close(m);
	m = open_ok(1);
	ck_assert_uint_eq(meta_topic_count(m), 5);
	ck_assert_ptr_nonnull(meta_find_topic(m, "t5"));
	meta_close(m);
}

START_TEST(test_torn_tail)
{
	make_dir();
	off_t last = five_topics();
	off_t size = file_size(journal);
	truncate_to(last + (size - last) / 2); /* half of the last record */
	struct meta *m = open_ok(1);
	ck_assert_int_eq(file_size(journal), last); /* the torn bytes are cut off */
	meta_close(m);
	assert_first_four_only();

	/* A tail torn inside the record header, and zeros after it (a file extended by a
	 * crash before its data reached the disk). */
	remove_dir();
	make_dir();
	last = five_topics();
	truncate_to(last + 3);
	truncate_to(last + 4096);
	assert_first_four_only();
	remove_dir();
}
END_TEST

START_TEST(test_flipped_bit_last_record)
{
	make_dir();
	off_t last = five_topics();
	flip_bit(file_size(journal) - 2, 3); /* inside the last record's payload */
	assert_first_four_only();
	remove_dir();

	make_dir();
	last = five_topics();
	flip_bit(last, 6); /* the last record's length field */
	assert_first_four_only();
	remove_dir();
}
END_TEST

START_TEST(test_flipped_bit_middle_record)
{
	static const struct {
		off_t delta; /* from the start of the record */
		int bit;
	} flips[] = {
	    {12, 2}, /* payload: topic id */
	    {4, 0},  /* crc */
	    {0, 5},  /* length: the next record is no longer where it says */
	    {2, 7},  /* length, high byte: it now claims to run past the end */
	    {8, 1},  /* type */
	};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		make_dir();
		struct meta *m = open_ok(1);
		create_ok(m, "first", 1);
		off_t middle = (off_t)meta_journal_bytes(m);
		create_ok(m, "middle", 4);
		create_ok(m, "after", 1);
		create_ok(m, "last", 1);
		meta_close(m);
		off_t size = file_size(journal);

		flip_bit(middle + flips[i].delta, flips[i].bit);
		char err[512], want[64];
		ck_assert_int_eq(open_fails(1, err, sizeof(err)), -EBADMSG);
		snprintf(want, sizeof(want), "at byte %lld", (long long)middle);
		ck_assert_msg(strstr(err, want) && strstr(err, journal),
			      "flip %zu: error '%s' should name %s and '%s'", i, err, journal,
			      want);
		ck_assert_int_eq(file_size(journal), size); /* left as it was */
		remove_dir();
	}
}
END_TEST

START_TEST(test_not_a_journal)
{
	make_dir();
	FILE *f = fopen(journal, "w");
	fputs("retention.ms=1000\n", f);
	fclose(f);
	char err[512];
	ck_assert_int_eq(open_fails(1, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "byte 0"));
	truncate_to(0);
	ck_assert_int_eq(open_fails(1, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	remove_dir();
}
END_TEST

START_TEST(test_compaction)
{
	make_dir();
	struct meta *m = open_ok(4);
	create_ok(m, "keeper", 3);
	ck_assert_int_eq(meta_set_topic_config(m, "keeper", "retention.ms", "5"), 0);
	char name[LIMITS_TOPIC_NAME_BYTES + 1];
	memset(name, 'x', LIMITS_TOPIC_NAME_BYTES);
	name[LIMITS_TOPIC_NAME_BYTES] = '\0';
	uint64_t peak = 0;
	int compactions = 0;
	/* ~550 bytes per create + delete: 2,500 of them pass the 1 MiB threshold. */
	uint64_t prev = meta_journal_bytes(m);
	for (int i = 0; i < 2 * 2500; i++) {
		if (i % 2 == 0) {
			snprintf(name, 8, "%07d", i);
			name[7] = 'x'; /* 249 bytes, the first 7 unique */
			create_ok(m, name, 1);
		} else {
			ck_assert_int_eq(meta_delete_topic(m, name), 0);
		}
		uint64_t now = meta_journal_bytes(m);
		if (now < prev)
			compactions++;
		if (now > peak)
			peak = now;
		prev = now;
	}
	ck_assert_int_ge(compactions, 1);
	/* It grew to the threshold (the step past it compacts at once), then shrank. */
	ck_assert_uint_gt(peak, LIMITS_META_COMPACT_MIN_BYTES - 1024);
	ck_assert_uint_lt(meta_journal_bytes(m), LIMITS_META_COMPACT_MIN_BYTES);
	ck_assert_uint_eq((uint64_t)file_size(journal), meta_journal_bytes(m));
	ck_assert(meta_sanity(m));
	uint32_t next_id = meta_next_partition_id(m);
	char *before = dump(m);
	meta_close(m);

	m = open_ok(4);
	assert_same(m, before);
	ck_assert_uint_eq(meta_next_partition_id(m), next_id);
	ck_assert_str_eq(meta_topic_config(meta_find_topic(m, "keeper"), "retention.ms"), "5");
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

START_TEST(test_names)
{
	char long_name[LIMITS_TOPIC_NAME_BYTES + 2];
	memset(long_name, 'a', sizeof(long_name));
	long_name[LIMITS_TOPIC_NAME_BYTES + 1] = '\0'; /* 250 chars */
	ck_assert(!meta_topic_name_valid(long_name));
	long_name[LIMITS_TOPIC_NAME_BYTES] = '\0'; /* 249 chars */
	ck_assert(meta_topic_name_valid(long_name));
	static const char *bad[] = {"",	    ".",      "..",  "a/b", "a b",
				    "a\nb", "tópico", "a:b", "a*",  "a\\b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!meta_topic_name_valid(bad[i]), "'%s' accepted", bad[i]);
	ck_assert(!meta_topic_name_valid(NULL));
	static const char *good[] = {"a", "...", ".a", "a..b", "A-Z_0.9", "__consumer_offsets"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(meta_topic_name_valid(good[i]), "'%s' refused", good[i]);

	make_dir();
	struct meta *m = open_ok(1);
	long_name[LIMITS_TOPIC_NAME_BYTES] = 'a';
	ck_assert_int_eq(meta_create_topic(m, long_name, 1, NULL, 0, NULL), -EINVAL);
	ck_assert_ptr_null(meta_find_topic(m, long_name));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(meta_create_topic(m, bad[i], 1, NULL, 0, NULL), -EINVAL);
	long_name[LIMITS_TOPIC_NAME_BYTES] = '\0';
	create_ok(m, long_name, 1);
	ck_assert_uint_eq(meta_topic_count(m), 1);
	meta_close(m);
	m = open_ok(1);
	ck_assert_ptr_nonnull(meta_find_topic(m, long_name));
	meta_close(m);
	remove_dir();
}
END_TEST

START_TEST(test_placement)
{
	/* FNV-1a 32 known answers: the formula must never change. */
	ck_assert_uint_eq(meta_placement_hash(""), 0x811c9dc5u);
	ck_assert_uint_eq(meta_placement_hash("a"), 0xe40c292cu);
	ck_assert_uint_eq(meta_placement_hash("foobar"), 0xbf9cf968u);
	make_dir();
	struct meta *m = open_ok(4);
	const struct meta_topic *t = create_ok(m, "orders", 10);
	uint32_t h = meta_placement_hash("orders");
	for (uint32_t p = 0; p < 10; p++) {
		ck_assert_uint_eq(t->partitions[p].shard, ((uint64_t)h + p) % 4);
		ck_assert_uint_eq(t->partitions[p].shard, meta_placement_shard("orders", p, 4));
	}
	/* Consecutive partitions go round the shards. */
	ck_assert_uint_eq(t->partitions[1].shard, (t->partitions[0].shard + 1) % 4);
	char *before = dump(m);
	meta_close(m);

	/* More shards: stored placement stays; new partitions use the new count. */
	m = open_ok(7);
	assert_same(m, before);
	ck_assert_int_eq(meta_add_partitions(m, "orders", 12), 0);
	t = meta_find_topic(m, "orders");
	ck_assert_uint_eq(t->partitions[10].shard, ((uint64_t)h + 10) % 7);
	ck_assert_uint_eq(t->partitions[11].shard, ((uint64_t)h + 11) % 7);
	uint32_t max_shard = 0;
	for (uint32_t p = 0; p < t->partition_count; p++)
		if (t->partitions[p].shard > max_shard)
			max_shard = t->partitions[p].shard;
	meta_close(m);

	/* Fewer shards than a stored partition needs: refused, naming topic and count. */
	char err[512], want[64];
	ck_assert_int_eq(open_fails(max_shard, err, sizeof(err)), -ERANGE);
	ck_assert_msg(strstr(err, "'orders'"), "error '%s' should name the topic", err);
	snprintf(want, sizeof(want), "only %u shards", max_shard);
	ck_assert_msg(strstr(err, want), "error '%s' should say '%s'", err, want);
	snprintf(want, sizeof(want), "--shards %u", max_shard + 1);
	ck_assert_msg(strstr(err, want), "error '%s' should advise '%s'", err, want);
	m = open_ok(max_shard + 1);
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

START_TEST(test_producer_ids)
{
	make_dir();
	uint64_t last = 0;
	bool first = true;
	for (int run = 0; run < 4; run++) {
		struct meta *m = open_ok(1);
		int calls = run == 1 ? 2500 : 3; /* run 1 crosses block boundaries */
		for (int i = 0; i < calls; i++) {
			int err = 1;
			uint64_t id = meta_next_producer_id(m, &err);
			ck_assert_int_eq(err, 0);
			ck_assert_msg(first || id > last, "id %llu after %llu",
				      (unsigned long long)id, (unsigned long long)last);
			first = false;
			last = id;
		}
		if (run == 2)
			ck_assert_int_eq(meta_compact(m), 0); /* the mark survives compaction */
		meta_close(m);
	}
	remove_dir();
}
END_TEST

START_TEST(test_errors)
{
	make_dir();
	char err[256];
	struct meta *m = NULL;
	ck_assert_int_eq(meta_open(&m, dir, 0, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(meta_open(&m, dir, LIMITS_SHARDS_MAX + 1, err, sizeof(err)), -EINVAL);
	m = open_ok(2);
	create_ok(m, "t", 2);
	ck_assert_int_eq(meta_create_topic(m, "t", 1, NULL, 0, NULL), -EEXIST);
	ck_assert_int_eq(meta_create_topic(m, "z", 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(
	    meta_create_topic(m, "z", LIMITS_META_PARTITIONS_PER_TOPIC_MAX + 1, NULL, 0, NULL),
	    -EINVAL);
	ck_assert_int_eq(meta_delete_topic(m, "nope"), -ENOENT);
	ck_assert_int_eq(meta_add_partitions(m, "nope", 5), -ENOENT);
	ck_assert_int_eq(meta_add_partitions(m, "t", 2), -EINVAL);
	ck_assert_int_eq(meta_add_partitions(m, "t", 1), -EINVAL);
	ck_assert_int_eq(meta_set_topic_config(m, "nope", "a", "b"), -ENOENT);
	ck_assert_int_eq(meta_set_topic_config(m, "t", "bad key", "b"), -EINVAL);
	ck_assert_int_eq(meta_set_topic_config(m, "t", "", "b"), -EINVAL);
	ck_assert_int_eq(meta_set_topic_config(m, "t", "k", "line\nbreak"), -EINVAL);

	const struct meta_config_kv dup[] = {{"a", "1"}, {"a", "2"}};
	ck_assert_int_eq(meta_create_topic(m, "z", 1, dup, 2, NULL), -EINVAL);
	const struct meta_config_kv badkey[] = {{"a=b", "1"}};
	ck_assert_int_eq(meta_create_topic(m, "z", 1, badkey, 1, NULL), -EINVAL);
	ck_assert_ptr_null(meta_find_topic(m, "z"));

	/* The per-topic config limit. */
	char key[32];
	for (uint32_t i = 0; i < LIMITS_META_CONFIGS_PER_TOPIC_MAX; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_int_eq(meta_set_topic_config(m, "t", key, "v"), 0);
	}
	ck_assert_int_eq(meta_set_topic_config(m, "t", "one.more", "v"), -ENOSPC);
	ck_assert_int_eq(meta_set_topic_config(m, "t", "k0", "changed"), 0); /* replacing */
	ck_assert_uint_eq(meta_find_topic(m, "t")->config_count, LIMITS_META_CONFIGS_PER_TOPIC_MAX);
	ck_assert(meta_sanity(m));
	/* Nothing that failed reached the journal. */
	char *before = dump(m);
	meta_close(m);
	m = open_ok(2);
	assert_same(m, before);
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

/* A journal write that fails half-way (the file-size limit, like a full disk) must
 * leave neither the change nor a partial record behind. */
START_TEST(test_failed_append)
{
	make_dir();
	struct meta *m = open_ok(1);
	create_ok(m, "before", 1);
	off_t size = file_size(journal);
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 20; /* room for part of the next record only */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int ret = meta_create_topic(m, "doomed-topic-with-a-long-name", 1, NULL, 0, NULL);
	ck_assert_int_eq(ret, -EFBIG);
	ck_assert_ptr_null(meta_find_topic(m, "doomed-topic-with-a-long-name"));
	ck_assert_int_eq(file_size(journal), size);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	create_ok(m, "after", 1);
	ck_assert(meta_sanity(m));
	meta_close(m);
	m = open_ok(1);
	ck_assert_uint_eq(meta_topic_count(m), 2);
	ck_assert_ptr_nonnull(meta_find_topic(m, "before"));
	ck_assert_ptr_nonnull(meta_find_topic(m, "after"));
	meta_close(m);
	remove_dir();
}
END_TEST

/* --- group commit -------------------------------------------------------------------- */

/* Type byte of the record at POS of the journal. */
static int record_type_at(off_t pos)
{
	int fd = open(journal, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	unsigned char b = 0;
	ck_assert_int_eq(pread(fd, &b, 1, pos + 8), 1);
	close(fd);
	return b;
}

static const struct meta_config_kv batch_configs[] = {
    {"retention.ms", "1000"},
    {"cleanup.policy", "compact"},
};

/* In an open batch on M: 40 creates, then changes that rest on them. */
static void batch_of_changes(struct meta *m)
{
	char name[32];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "b%02d", i);
		ck_assert_int_eq(meta_create_topic(m, name, 1 + i % 3, i % 5 ? NULL : batch_configs,
						   i % 5 ? 0 : 2, NULL),
				 0);
	}
	/* Each sees the ones before it. */
	ck_assert_int_eq(meta_create_topic(m, "b07", 1, NULL, 0, NULL), -EEXIST);
	ck_assert_int_eq(meta_delete_topic(m, "b03"), 0);
	ck_assert_int_eq(meta_delete_topic(m, "b03"), -ENOENT);
	ck_assert_int_eq(meta_create_topic(m, "b03", 4, NULL, 0, NULL), 0); /* new ids */
	ck_assert_int_eq(meta_add_partitions(m, "b10", 7), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "b11", "retention.bytes", "12345"), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "b00", "retention.ms", NULL), 0);
	ck_assert_int_eq(meta_compact(m), -EBUSY);
	ck_assert(meta_sanity(m));
}

START_TEST(test_batch_roundtrip)
{
	make_dir();
	struct meta *m = open_ok(3);
	create_ok(m, "plain", 2);
	off_t start = file_size(journal);

	/* Nothing to write: nothing written. */
	meta_batch_begin(m);
	ck_assert(meta_batching(m));
	ck_assert_int_eq(meta_batch_end(m), 0);
	ck_assert(!meta_batching(m));
	ck_assert_int_eq(file_size(journal), start);

	/* One change: its own record, as without a batch. */
	meta_batch_begin(m);
	ck_assert_int_eq(meta_create_topic(m, "single", 3, NULL, 0, NULL), 0);
	ck_assert_int_eq(file_size(journal), start); /* not written before the end */
	ck_assert_int_eq(meta_batch_end(m), 0);
	ck_assert_int_eq(record_type_at(start), 3); /* TOPIC */
	start = file_size(journal);

	meta_batch_begin(m);
	batch_of_changes(m);
	ck_assert_int_eq(file_size(journal), start);
	ck_assert_int_eq(meta_batch_end(m), 0);
	ck_assert_int_eq(record_type_at(start), 8); /* one BATCH record for all of them */
	ck_assert_uint_eq(meta_journal_bytes(m), (uint64_t)file_size(journal));
	ck_assert_uint_eq(meta_topic_count(m), 42);
	ck_assert_str_eq(meta_topic_config(meta_find_topic(m, "b11"), "retention.bytes"), "12345");
	ck_assert_ptr_null(meta_topic_config(meta_find_topic(m, "b00"), "retention.ms"));
	ck_assert_uint_eq(meta_find_topic(m, "b10")->partition_count, 7);
	char *before = dump(m);
	meta_close(m);

	m = open_ok(3);
	assert_same(m, before);
	/* A batch after the reopen, and compaction still works after batches. */
	meta_batch_begin(m);
	ck_assert_int_eq(meta_create_topic(m, "later", 1, NULL, 0, NULL), 0);
	ck_assert_int_eq(meta_create_topic(m, "later2", 1, NULL, 0, NULL), 0);
	ck_assert_int_eq(meta_batch_end(m), 0);
	free(before);
	before = dump(m);
	ck_assert_int_eq(meta_compact(m), 0);
	meta_close(m);
	m = open_ok(3);
	assert_same(m, before);
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

/* Two plain creates, then a batch of 20; returns the batch's offset, *BEFORE the state
 * without it. */
static off_t two_then_batch(char **before)
{
	struct meta *m = open_ok(1);
	create_ok(m, "p0", 1);
	create_ok(m, "p1", 2);
	*before = dump(m);
	off_t at = file_size(journal);
	meta_batch_begin(m);
	char name[16];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "torn%02d", i);
		ck_assert_int_eq(meta_create_topic(m, name, 3, NULL, 0, NULL), 0);
	}
	ck_assert_int_eq(meta_batch_end(m), 0);
	meta_close(m);
	return at;
}

/* The journal reopens as BEFORE, cut back to AT, and appends go on from there. */
static void assert_batch_dropped(const char *before, off_t at)
{
	struct meta *m = open_ok(1);
	assert_same(m, before);
	ck_assert_int_eq(file_size(journal), at);
	create_ok(m, "after-cut", 1);
	meta_close(m);
	m = open_ok(1);
	ck_assert_ptr_nonnull(meta_find_topic(m, "after-cut"));
	ck_assert_ptr_null(meta_find_topic(m, "torn00"));
	meta_close(m);
}

START_TEST(test_batch_torn)
{
	/* Cut at every 37th byte of the batch record, and in its header. */
	char *before;
	make_dir();
	off_t at = two_then_batch(&before);
	off_t size = file_size(journal);
	remove_dir();
	free(before);
	ck_assert_int_gt(size - at, 200);
	for (off_t cut = at + 1; cut < size; cut += cut < at + 12 ? 1 : 37) {
		make_dir();
		ck_assert_int_eq(two_then_batch(&before), at);
		truncate_to(cut);
		assert_batch_dropped(before, at);
		free(before);
		remove_dir();
	}

	/* The whole length reached the disk but a middle block of it did not (zeros, as a
	 * block allocated and never written reads): the inner records are not taken for
	 * valid records after a damaged one. */
	make_dir();
	at = two_then_batch(&before);
	int fd = open(journal, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	char zeros[64] = {0};
	ck_assert_int_eq(pwrite(fd, zeros, sizeof(zeros), at + (size - at) / 2), sizeof(zeros));
	close(fd);
	assert_batch_dropped(before, at);
	free(before);
	remove_dir();

	/* A bit flipped inside a batch that a later record follows: damage in the middle,
	 * the open fails naming the batch's position. */
	make_dir();
	at = two_then_batch(&before);
	free(before);
	struct meta *m = open_ok(1);
	create_ok(m, "follows", 1);
	meta_close(m);
	flip_bit(at + (size - at) / 2, 4);
	char err[512], want[64];
	ck_assert_int_eq(open_fails(1, err, sizeof(err)), -EBADMSG);
	snprintf(want, sizeof(want), "at byte %lld", (long long)at);
	ck_assert_msg(strstr(err, want), "error '%s' should name '%s'", err, want);
	remove_dir();
}
END_TEST

/* A batch whose write fails: every change of it is undone, memory as before it. */
START_TEST(test_batch_failed_write)
{
	make_dir();
	struct meta *m = open_ok(2);
	create_ok(m, "before", 3);
	create_ok(m, "victim", 1);
	char *before = dump(m);
	uint32_t next_id = meta_next_partition_id(m);
	off_t size = file_size(journal);

	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 100; /* room for part of the batch only */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	meta_batch_begin(m);
	char name[32];
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "doomed-%d", i);
		ck_assert_int_eq(meta_create_topic(m, name, 2, NULL, 0, NULL), 0);
	}
	ck_assert_int_eq(meta_delete_topic(m, "victim"), 0);
	ck_assert_int_eq(meta_add_partitions(m, "before", 5), 0);
	ck_assert_int_eq(meta_set_topic_config(m, "before", "retention.ms", "5"), 0);
	uint32_t handed_out = meta_next_partition_id(m);
	ck_assert_int_eq(meta_batch_end(m), -EFBIG);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);

	ck_assert(meta_sanity(m));
	/* The topics as before (the first line, next_partition_id, stays higher). */
	char *now = dump(m);
	ck_assert_str_eq(strchr(now, '\n'), strchr(before, '\n'));
	free(now);
	ck_assert_int_eq(file_size(journal), size);
	ck_assert_ptr_null(meta_find_topic(m, "doomed-0"));
	ck_assert_ptr_nonnull(meta_find_topic(m, "victim"));
	ck_assert_uint_eq(meta_find_topic(m, "before")->partition_count, 3);
	ck_assert_ptr_null(meta_topic_config(meta_find_topic(m, "before"), "retention.ms"));
	/* Ids the failed batch handed out are not handed out again. */
	ck_assert_uint_gt(handed_out, next_id);
	const struct meta_topic *t = create_ok(m, "after", 1);
	ck_assert_uint_ge(t->partitions[0].partition_id, handed_out);
	meta_close(m);

	m = open_ok(2);
	ck_assert_uint_eq(meta_topic_count(m), 3);
	ck_assert_ptr_nonnull(meta_find_topic(m, "victim"));
	ck_assert_ptr_nonnull(meta_find_topic(m, "after"));
	ck_assert_ptr_null(meta_find_topic(m, "doomed-0"));
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

/* A batch ends at the record limit: the change that would pass it is refused, not made,
 * and the next batch takes it. */
START_TEST(test_batch_full)
{
	make_dir();
	struct meta *m = open_ok(2);
	uint32_t big = LIMITS_META_PARTITIONS_PER_TOPIC_MAX; /* a record of about 512 KiB */
	meta_batch_begin(m);
	ck_assert_int_eq(meta_create_topic(m, "big-1", big, NULL, 0, NULL), 0);
	ck_assert_int_eq(meta_create_topic(m, "small", 1, NULL, 0, NULL), 0);
	ck_assert_int_eq(meta_create_topic(m, "big-2", big, NULL, 0, NULL), -ENOBUFS);
	ck_assert_ptr_null(meta_find_topic(m, "big-2"));
	ck_assert(meta_sanity(m));
	ck_assert_int_eq(meta_batch_end(m), 0);
	meta_batch_begin(m);
	ck_assert_int_eq(meta_create_topic(m, "big-2", big, NULL, 0, NULL), 0);
	ck_assert_int_eq(meta_batch_end(m), 0);
	char *before = dump(m);
	meta_close(m);
	m = open_ok(2);
	assert_same(m, before);
	ck_assert_uint_eq(meta_topic_count(m), 3);
	meta_close(m);
	free(before);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("meta");
	tcase_set_timeout(tc, 120); /* thousands of fdatasyncs under the sanitizers */
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_ids_never_reused);
	tcase_add_test(tc, test_ten_thousand_topics);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_flipped_bit_last_record);
	tcase_add_test(tc, test_flipped_bit_middle_record);
	tcase_add_test(tc, test_not_a_journal);
	tcase_add_test(tc, test_compaction);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_placement);
	tcase_add_test(tc, test_producer_ids);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_failed_append);
	tcase_add_test(tc, test_batch_roundtrip);
	tcase_add_test(tc, test_batch_torn);
	tcase_add_test(tc, test_batch_failed_write);
	tcase_add_test(tc, test_batch_full);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
