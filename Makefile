# microshop - one non-recursive Makefile for libsvc, the services and tests.
#
#   make            build libsvc, every service and the test programs
#   make run        install what is missing, start PostgreSQL, RabbitMQ and
#                   the services (Ctrl-C stops everything it started)
#   make demo       with make run up in another terminal: the story, step by
#                   step, one HTTP call at a time
#   make test       the same preparation, then every test suite
#   make asan       the whole test suite under AddressSanitizer + UBSan
#   make valgrind   the whole test suite with the services under valgrind
#   make bench      benchmarks, with pgbench as the baseline in the same run
#   make load       with make run up in another terminal: open-loop load
#                   from build/loadgen, RATE=<per s> DURATION=<60s, 2m, ...>
#   make chaos      with make run up in another terminal: faults on a
#                   schedule under load, then the invariants (docs/chaos.md)
#   make compose-up, make compose-down
#                   docker-compose.yml on Docker, or on podman prepared by
#                   scripts/compose.sh where there is no Docker engine
#   make compose-test  the compose stack built, run and checked for real
#                   (part of make test)
#   make fuzz       libFuzzer targets (tests/fuzz), FUZZ_SECONDS each
#   make fuzz-replay  the committed fuzz corpus once, under ASan+UBSan
#   make format-check, make format, make clean
#
# Objects go to $(BUILD)/obj (build/ or build/asan/), so a sanitizer build
# never mixes with a normal one, and no object folder takes the name of a
# program ($(BUILD)/tests/unit). CC=clang works as well as the default gcc.

CC ?= cc
BUILD ?= build
SAN ?=

# Every services/<name>/ with a main.c: a service made by `make new-service`
# builds, links into the unit tests and gets its target without an edit here.
SERVICES := $(sort $(patsubst services/%/main.c,%,$(wildcard services/*/main.c)))

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Werror
CFLAGS ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
PG_INC := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -pthread \
	-Icommon/include -Icommon/src -I$(PG_INC) -MMD -MP
LIBS := -lmicrohttpd -lpq -ljansson -lcrypto -lcurl -lrabbitmq -pthread
TEST_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) \
	-lcurl

# The version: the VERSION file, plus `git describe` when built from a
# checkout. Only app.o sees them (--version, the "listening" log line,
# service_info); it is rebuilt when they change, through a stamp file
# rewritten only then.
VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)
GIT_DESCRIBE := $(shell git describe --tags --always --dirty 2>/dev/null)
VERSION_STAMP := $(BUILD)/version.stamp
ifneq ($(VERSION) $(GIT_DESCRIBE),$(shell cat $(VERSION_STAMP) 2>/dev/null))
$(shell mkdir -p $(BUILD) && echo '$(VERSION) $(GIT_DESCRIBE)' >$(VERSION_STAMP))
endif
$(BUILD)/obj/common/src/app.o: $(VERSION_STAMP)
$(BUILD)/obj/common/src/app.o: ALL_CFLAGS += -DSVC_VERSION='"$(VERSION)"' \
	-DSVC_GIT_DESCRIBE='"$(GIT_DESCRIBE)"'

LIBSVC_SRC := $(wildcard common/src/*.c)
LIBSVC_OBJ := $(LIBSVC_SRC:%.c=$(BUILD)/obj/%.o)
LIBSVC := $(BUILD)/libsvc.a

.PHONY: all run demo load chaos test asan valgrind bench clean format \
	format-check compose-up compose-down compose-test \
	$(SERVICES) check-unit check-integration fuzz fuzz-build fuzz-replay \
	new-service
.DEFAULT_GOAL := all

all: $(SERVICES) $(BUILD)/loadgen $(BUILD)/tests/unit \
	$(BUILD)/tests/integration $(BUILD)/tests/mqbench $(BUILD)/tests/otlpsink

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBSVC): $(LIBSVC_OBJ)
	@rm -f $@
	ar rcs $@ $^

# A service is its own objects plus libsvc.a; main.c holds only wiring, so
# tests link the other objects of a service directly.
define service_rules
$(1)_SRC := $$(wildcard services/$(1)/*.c)
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/obj/%.o)
$(1)_LIB_OBJ := $$(filter-out %/main.o,$$($(1)_OBJ))
$(1): $(BUILD)/$(1)
$(BUILD)/$(1): $$($(1)_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBSVC) $(LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

# The load generator (docs/load.md): libcurl's multi interface, and of
# libsvc only util.o (UUIDs), which the archive pulls in alone.
LOADGEN_SRC := $(wildcard tools/loadgen/*.c)
LOADGEN_OBJ := $(LOADGEN_SRC:%.c=$(BUILD)/obj/%.o)
LOADGEN_LIB_OBJ := $(filter-out %/main.o,$(LOADGEN_OBJ))
$(BUILD)/loadgen: $(LOADGEN_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) -o $@ $(LOADGEN_OBJ) $(LIBSVC) -lcurl -ljansson \
		-lcrypto

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tests/unit: $(UNIT_OBJ) $(foreach s,$(SERVICES),$($(s)_LIB_OBJ)) \
		$(LOADGEN_LIB_OBJ) $(LIBSVC)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)

INTEG_SRC := $(wildcard tests/integration/*.c tests/security/*.c)
INTEG_OBJ := $(INTEG_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tests/integration: $(INTEG_OBJ) $(LIBSVC)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)

# make bench's broker tool: its queue, and the publisher baseline.
$(BUILD)/tests/mqbench: $(BUILD)/obj/tests/bench/mqbench.o $(LIBSVC)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# make bench's collector stand-in for the tracing cost, and the span
# counter make compose-test runs in Jaeger's place (tests/compose/).
$(BUILD)/tests/otlpsink: $(BUILD)/obj/tests/bench/otlpsink.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lmicrohttpd -ljansson -pthread

# libFuzzer targets, always built with clang and ASan+UBSan into
# $(BUILD)/fuzz, with libsvc and the services compiled again under the same
# flags in $(BUILD)/fuzz/obj. db.c is left out: tests/fuzz/db_stub.c stands
# in for it, so handlers stop at their first query, after validation.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 $(WARN) -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -pthread \
	-Icommon/include -Icommon/src -I$(PG_INC) -MMD -MP
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_LIB_SRC := $(filter-out common/src/db.c,$(LIBSVC_SRC)) \
	$(foreach s,$(SERVICES),$(filter-out %/main.c,$(wildcard services/$(s)/*.c)))
FUZZ_LIB := $(FUZZ_DIR)/libfuzzsvc.a

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iservices -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o \
		$(FUZZ_DIR)/obj/tests/fuzz/db_stub.o \
		$(FUZZ_DIR)/obj/tests/fuzz/req.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

# New inputs go to a scratch corpus ($(FUZZ_DIR)/corpus/<target>); the
# committed seeds are only read. Crashes land in $(FUZZ_DIR)/.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		$(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- \
			$(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t; \
	done

# Every committed input once: what make test runs.
fuzz-replay: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz corpus: $$t"; \
		$(FUZZ_DIR)/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t \
			2>$(FUZZ_DIR)/$$t.replay.log || \
			{ cat $(FUZZ_DIR)/$$t.replay.log; exit 1; }; \
	done

# The two commands, and the rest: scripts do the work, so they can install
# packages before anything is compiled.
run:
	@scripts/run.sh

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

asan:
	@SAN=1 BUILD=build/asan scripts/test.sh

# The whole suite with the services under valgrind (leaks fail the run).
valgrind:
	@VALGRIND=1 scripts/test.sh

bench:
	@scripts/bench.sh

# build/loadgen against a running make run: make load RATE=50 DURATION=60s
# [SEED=N] [LOAD_FLAGS='--cancel 30 ...'] (docs/load.md). As with
# new-service, only values given on the command line count.
load: $(BUILD)/loadgen $(BUILD)/products
	@BUILD='$(BUILD)' SEED=$(call cmdline,SEED) \
		LOAD_FLAGS=$(call cmdline,LOAD_FLAGS) scripts/load.sh \
		$(if $(call cmdline,RATE),--rate $(call cmdline,RATE)) \
		$(if $(call cmdline,DURATION),--duration $(call cmdline,DURATION))

# Faults on a schedule against a running make run, under load from
# build/loadgen; prints the invariants, exits 1 if one broke.
chaos: $(BUILD)/loadgen $(BUILD)/products
	@BUILD='$(BUILD)' scripts/chaos.sh

compose-up:
	@scripts/compose.sh up

compose-down:
	@scripts/compose.sh down

compose-test:
	@scripts/compose-test.sh

# A new service from scripts/template: make new-service NAME=payments
# [PORT=8084] (docs/new-service.md). Only values given on the command line
# count: a NAME or PORT that happens to be in the environment is not a wish.
cmdline = $(if $(filter command line,$(origin $(1))),'$(subst ','\'',$($(1)))')
new-service:
	@scripts/new-service $(if $(call cmdline,PORT),--port $(call cmdline,PORT)) \
		-- $(call cmdline,NAME)

# Used by the scripts once dependencies are installed.
check-unit: $(BUILD)/tests/unit
	$(BUILD)/tests/unit

# ---- install: one service on a machine of its own (docs/deploy.md) -------
# make install [SERVICE=orders] [PREFIX=/usr/local] [DESTDIR=]
#   $(PREFIX)/bin/<service>                          the binary (built as `make <service>`)
#   $(PREFIX)/share/microshop/migrations/<service>/  its migrations, where the
#                                                    binary looks for them
#   $(UNITDIR)/microshop-<service>.service           its systemd unit, with
#                                                    /usr/local replaced by PREFIX
# SERVICE defaults to every service; UNITDIR ($(PREFIX)/lib/systemd/system)
# may be set empty to leave the unit out. DESTDIR stages the whole tree
# elsewhere (packaging); the binary still finds its migrations there, since
# it looks next to itself. `make uninstall` takes the same variables.
PREFIX ?= /usr/local
SERVICE ?= $(SERVICES)
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL_BAD := $(filter-out $(SERVICES),$(SERVICE))

.PHONY: install uninstall
install: $(addprefix $(BUILD)/,$(filter $(SERVICES),$(SERVICE)))
	@$(if $(INSTALL_BAD),echo "install: unknown SERVICE $(INSTALL_BAD) (one of: $(SERVICES))" >&2; exit 2)
	@set -e; for s in $(SERVICE); do \
		mig='$(DESTDIR)$(PREFIX)/share/microshop/migrations'/$$s; \
		install -d -m 0755 '$(DESTDIR)$(PREFIX)/bin' "$$mig"; \
		install -m 0755 $(BUILD)/$$s '$(DESTDIR)$(PREFIX)/bin'/$$s; \
		rm -f "$$mig"/*.sql; \
		install -m 0644 migrations/$$s/*.sql "$$mig"/; \
		if [ -n '$(UNITDIR)' ]; then \
			install -d -m 0755 '$(DESTDIR)$(UNITDIR)'; \
			sed 's|/usr/local/|$(PREFIX)/|g' \
				deploy/systemd/microshop-$$s.service \
				>'$(DESTDIR)$(UNITDIR)'/microshop-$$s.service; \
			chmod 0644 '$(DESTDIR)$(UNITDIR)'/microshop-$$s.service; \
		fi; \
		echo "installed $$s in $(DESTDIR)$(PREFIX)"; \
	done

uninstall:
	@$(if $(INSTALL_BAD),echo "uninstall: unknown SERVICE $(INSTALL_BAD) (one of: $(SERVICES))" >&2; exit 2)
	@set -e; for s in $(SERVICE); do \
		rm -f '$(DESTDIR)$(PREFIX)/bin'/$$s; \
		rm -rf '$(DESTDIR)$(PREFIX)/share/microshop/migrations'/$$s; \
		$(if $(UNITDIR),rm -f '$(DESTDIR)$(UNITDIR)'/microshop-$$s.service;) \
	done

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

format:
	@clang-format -i $(FORMAT_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
