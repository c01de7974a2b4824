# tests/fuzz/local.mk: the libFuzzer targets (tests/fuzz/fuzz_request.c over request
# decoding, tests/fuzz/fuzz_batch.c over record-batch and shard-log frame validation,
# tests/fuzz/fuzz_groups.c over core/groups' state machines and offset records) and the
# `make check` test that runs each of them for a bounded time (run-fuzz.sh). libFuzzer
# needs clang, and its coverage needs the broker's own code compiled with clang too, so
# the library sources are compiled once more here, with clang, ASan, UBSan and the
# fuzzer's coverage instrumentation, into tests/fuzz/libsluice-fuzz.a (a plain loop over
# the sources: automake's own rules compile with $(CC) only). configure sets
# HAVE_LIBFUZZER when `clang -fsanitize=fuzzer,address,undefined` links; without it
# `make fuzz` says so and run-fuzz.sh reports SKIP with the reason. Include it after
# tests/local.mk (it adds to TESTS and reads the complete libsluice_a_SOURCES).
FUZZ_TARGETS = tests/fuzz/fuzz_request tests/fuzz/fuzz_batch tests/fuzz/fuzz_groups
FUZZ_TESTS = tests/fuzz/run-fuzz.sh
EXTRA_DIST += tests/fuzz/fuzz_request.c tests/fuzz/fuzz_batch.c tests/fuzz/fuzz_groups.c \
	tests/fuzz/make-corpus.py \
	tests/fuzz/corpus $(FUZZ_TESTS)
TESTS += $(FUZZ_TESTS)

if HAVE_LIBFUZZER
FUZZ_CPPFLAGS = $(AM_CPPFLAGS) $(URING_CFLAGS) $(NUMA_CFLAGS) $(JEMALLOC_CFLAGS)
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -pthread -DSLUICE_DEBUG=1 \
	-DSLUICE_SANITIZED=1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBS = $(URING_LIBS) $(NUMA_LIBS) $(JEMALLOC_LIBS)
FUZZ_OBJDIR = tests/fuzz/libsluice-fuzz.objs

tests/fuzz/libsluice-fuzz.a: $(libsluice_a_SOURCES) $(noinst_HEADERS) autoconfig.h
	@rm -rf $(FUZZ_OBJDIR) && $(MKDIR_P) $(FUZZ_OBJDIR)
	$(AM_V_CC)for src in $(libsluice_a_SOURCES); do \
	  obj=$(FUZZ_OBJDIR)/`echo $$src | sed 's|/|_|g; s|\.c$$|.o|'`; \
	  $(CLANG) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c \
	    -o $$obj $(srcdir)/$$src || exit 1; \
	done
	$(AM_V_AR)rm -f $@ && $(AR) $(ARFLAGS) $@ $(FUZZ_OBJDIR)/*.o && $(RANLIB) $@

tests/fuzz/fuzz_request: tests/fuzz/fuzz_request.c tests/fuzz/libsluice-fuzz.a
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_request.c tests/fuzz/libsluice-fuzz.a $(FUZZ_LIBS)

tests/fuzz/fuzz_batch: tests/fuzz/fuzz_batch.c tests/fuzz/libsluice-fuzz.a
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_batch.c tests/fuzz/libsluice-fuzz.a $(FUZZ_LIBS)

# fuzz_groups.c includes core/groups.c (to call its sanity walker and fail its
# allocations); the archive's copy of groups.o is then never pulled in.
tests/fuzz/fuzz_groups: tests/fuzz/fuzz_groups.c core/groups.c tests/fuzz/libsluice-fuzz.a
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_groups.c tests/fuzz/libsluice-fuzz.a $(FUZZ_LIBS)

# `make check` builds the targets so that run-fuzz.sh can run them.
check_DATA = $(FUZZ_TARGETS)
fuzz: $(FUZZ_TARGETS)
clean-fuzz:
	rm -rf $(FUZZ_OBJDIR) tests/fuzz/libsluice-fuzz.a $(FUZZ_TARGETS)
else
fuzz:
	@echo "make fuzz: configure found no clang that links libFuzzer (apt-get install clang); nothing to build"
clean-fuzz:
endif
clean-local: clean-fuzz
.PHONY: fuzz clean-fuzz
