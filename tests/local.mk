# tests/local.mk: Check unit tests (one program per module) and integration tests.
UNIT_TESTS = tests/unit/check_loop tests/unit/check_ring tests/unit/check_mesh tests/unit/check_pool \
	tests/unit/check_config tests/unit/check_crc32c tests/unit/check_frame tests/unit/check_disk \
	tests/unit/check_index tests/unit/check_meta tests/unit/check_shardlog \
	tests/unit/check_shardlog_crash tests/unit/check_wire \
	tests/unit/check_shard tests/unit/check_broker tests/unit/check_conn \
	tests/unit/check_producers tests/unit/check_bench_hist tests/unit/check_bench_batch \
	tests/unit/check_groups tests/unit/check_batch
check_PROGRAMS += $(UNIT_TESTS)
noinst_HEADERS += tests/unit/unit.h tests/unit/testdir.h tests/unit/testbatch.h
UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
UNIT_LDADD = $(SLUICE_LIBS) $(CHECK_LIBS)
tests_unit_check_ring_SOURCES = tests/unit/check_ring.c
tests_unit_check_ring_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ring_LDADD = $(UNIT_LDADD)
tests_unit_check_mesh_SOURCES = tests/unit/check_mesh.c
tests_unit_check_mesh_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_mesh_LDADD = $(UNIT_LDADD)
tests_unit_check_pool_SOURCES = tests/unit/check_pool.c
tests_unit_check_pool_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_pool_LDADD = $(UNIT_LDADD)
tests_unit_check_config_SOURCES = tests/unit/check_config.c
tests_unit_check_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_config_LDADD = $(UNIT_LDADD)

tests_unit_check_crc32c_SOURCES = tests/unit/check_crc32c.c
tests_unit_check_crc32c_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_crc32c_LDADD = $(UNIT_LDADD)
tests_unit_check_frame_SOURCES = tests/unit/check_frame.c
tests_unit_check_frame_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_frame_LDADD = $(UNIT_LDADD)
tests_unit_check_disk_SOURCES = tests/unit/check_disk.c
tests_unit_check_disk_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_disk_LDADD = $(UNIT_LDADD)
tests_unit_check_index_SOURCES = tests/unit/check_index.c
tests_unit_check_index_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_index_LDADD = $(UNIT_LDADD)
tests_unit_check_meta_SOURCES = tests/unit/check_meta.c
tests_unit_check_meta_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_meta_LDADD = $(UNIT_LDADD)
tests_unit_check_shardlog_SOURCES = tests/unit/check_shardlog.c
tests_unit_check_shardlog_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_shardlog_LDADD = $(UNIT_LDADD)
tests_unit_check_shardlog_crash_SOURCES = tests/unit/check_shardlog_crash.c
tests_unit_check_shardlog_crash_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_shardlog_crash_LDADD = $(UNIT_LDADD)
tests_unit_check_wire_SOURCES = tests/unit/check_wire.c
tests_unit_check_wire_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_wire_LDADD = $(UNIT_LDADD)
tests_unit_check_shard_SOURCES = tests/unit/check_shard.c
tests_unit_check_shard_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_shard_LDADD = $(UNIT_LDADD)
tests_unit_check_broker_SOURCES = tests/unit/check_broker.c
tests_unit_check_broker_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_broker_LDADD = $(UNIT_LDADD)
tests_unit_check_loop_SOURCES = tests/unit/check_loop.c
tests_unit_check_loop_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_loop_LDADD = $(UNIT_LDADD)
tests_unit_check_conn_SOURCES = tests/unit/check_conn.c
tests_unit_check_conn_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_conn_LDADD = $(UNIT_LDADD)
tests_unit_check_producers_SOURCES = tests/unit/check_producers.c
tests_unit_check_producers_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_producers_LDADD = $(UNIT_LDADD)
tests_unit_check_bench_hist_SOURCES = tests/unit/check_bench_hist.c tools/bench_hist.c
tests_unit_check_bench_hist_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_bench_hist_LDADD = $(UNIT_LDADD)
tests_unit_check_bench_batch_SOURCES = tests/unit/check_bench_batch.c tools/bench_batch.c
tests_unit_check_bench_batch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_bench_batch_LDADD = $(UNIT_LDADD)

INTEGRATION_TESTS = tests/integration/sluiced-start-stop.sh tests/integration/kafka-basics.sh \
	tests/integration/logdump.sh tests/integration/produce.sh tests/integration/fetch-edges.sh \
	tests/integration/kcat-roundtrip.sh tests/integration/confluent-roundtrip.sh \
	tests/integration/bench-smoke.sh tests/integration/admin.sh tests/integration/bad-input.sh \
	tests/integration/groups.sh tests/integration/sluicectl.sh tests/integration/offsets-snapshot.sh
EXTRA_DIST += tests/integration/lib.sh $(INTEGRATION_TESTS) tests/integration/kafka_wire.py \
	tests/integration/fetch_edges.py tests/integration/kcat_roundtrip.py \
	tests/integration/confluent_roundtrip.py tests/integration/admin_client.py \
	tests/integration/groups_client.py

TESTS += $(UNIT_TESTS) $(INTEGRATION_TESTS)
tests_unit_check_groups_SOURCES = tests/unit/check_groups.c
tests_unit_check_groups_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_groups_LDADD = $(UNIT_LDADD)
tests_unit_check_batch_SOURCES = tests/unit/check_batch.c
tests_unit_check_batch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_batch_LDADD = $(UNIT_LDADD)
