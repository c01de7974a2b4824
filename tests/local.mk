# tests/local.mk: Check unit tests (one program per module) and integration tests.
UNIT_TESTS = tests/unit/check_ring tests/unit/check_mesh tests/unit/check_pool \
	tests/unit/check_config
check_PROGRAMS += $(UNIT_TESTS)
noinst_HEADERS += tests/unit/unit.h
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

INTEGRATION_TESTS = tests/integration/sluiced-start-stop.sh
EXTRA_DIST += tests/integration/lib.sh $(INTEGRATION_TESTS)

TESTS += $(UNIT_TESTS) $(INTEGRATION_TESTS)
