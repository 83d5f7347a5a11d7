# postern: one non-recursive Makefile. `make help` lists the targets.
#
# Outputs go to $(BUILD) (default build/). The sanitizer pass builds the same
# tree into build/asan with SAN=1.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=

PKGS      := libpq libcurl libetpan gnutls libsodium libmicrohttpd inih libxml-2.0
DATADIR   ?= $(PREFIX)/share/postern

# Every Debian package the build, the tests and the demo need: one list.
# (libcurl4-gnutls-dev, not -openssl-dev: libetpan-dev depends on it.)
DEB_PACKAGES := gcc make pkg-config libc6-dev \
	libpq-dev libcurl4-gnutls-dev libetpan-dev libsodium-dev \
	libmicrohttpd-dev libinih-dev libcmocka-dev libgnutls28-dev libxml2-dev \
	clang libclang-rt-14-dev \
	postgresql postfix dovecot-imapd dovecot-lmtpd openssl ca-certificates \
	curl python3-aiosmtpd isync
WARN      := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wvla
CFLAGS    ?= -O2 -g
SAN_ON    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANFLAGS  := $(if $(SAN),$(SAN_ON))
# The fuzz tree (clang, FUZZ=1): libraries instrumented for libFuzzer.
FUZZ_ON   := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZFLAGS := $(if $(FUZZ),$(FUZZ_ON))
FUZZ_SECONDS ?= 10
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc adds Debian's no-PIE link specs, which clash with ASan/PIE.
PKG_LIBS   := $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))
ALL_CFLAGS := $(WARN) $(CFLAGS) $(SANFLAGS) $(FUZZFLAGS) -I. $(PKG_CFLAGS) -pthread -MMD -MP \
	-DPOSTERN_DATADIR='"$(DATADIR)"'
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread

COMMON_SRC := $(sort $(wildcard common/*.c))
MAILER_SRC := $(sort $(wildcard mailer/*.c))
HTTPD_SRC  := $(sort $(wildcard httpd/*.c))
CTL_SRC    := $(sort $(wildcard worker/ctl*.c))
WORKER_SRC := $(filter-out $(CTL_SRC),$(sort $(wildcard worker/*.c)))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
ITEST_SRC  := $(sort $(wildcard tests/integration/test_*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBCOMMON := $(BUILD)/libcommon.a
LIBMAILER := $(BUILD)/libmailer.a
BINS      := $(BUILD)/postern-worker $(BUILD)/postern-httpd $(BUILD)/posternctl
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

.PHONY: all
all: $(BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# posternctl has DATADIR built in: rebuild it when PREFIX/DATADIR change.
$(BUILD)/datadir.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' >$@
$(BUILD)/worker/ctl_migrate.o: $(BUILD)/datadir.txt
.PHONY: FORCE
FORCE:

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@rm -f $@
	ar rcs $@ $^
$(LIBMAILER): $(call obj,$(MAILER_SRC))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/postern-worker: $(call obj,$(WORKER_SRC)) $(LIBMAILER) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm
$(BUILD)/posternctl: $(call obj,$(CTL_SRC)) $(LIBMAILER) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm
$(BUILD)/postern-httpd: $(call obj,$(HTTPD_SRC)) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# Tests link both libraries and cmocka.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBMAILER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka -lm
# Unit tests and fuzz targets of httpd's pure code link its object too.
$(BUILD)/tests/test_form: $(BUILD)/httpd/form.o
$(BUILD)/fuzz/fuzz_form: $(BUILD)/httpd/form.o
$(BUILD)/tests/%: $(BUILD)/tests/integration/%.o $(LIBMAILER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka -lm

.PHONY: test-bins
test-bins: $(BINS) $(UNIT_BINS) $(ITEST_BINS)

# libFuzzer targets, one per parser of outside bytes (tests/fuzz/fuzz_*.c).
$(FUZZ_BINS): $(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(LIBMAILER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS) -lm
.PHONY: fuzz-bins fuzz-build fuzz
fuzz-bins: $(FUZZ_BINS)
fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=clang FUZZ=1 fuzz-bins
# make fuzz FUZZ_SECONDS=600: every target for that long, from tests/fuzz/corpus.
fuzz: fuzz-build
	bash tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

.PHONY: help
help:
	@echo "make             build libcommon.a, libmailer.a, postern-worker, postern-httpd, posternctl"
	@echo "make test        install missing packages (as root), build, run all tests + sanitizer pass"
	@echo "make demo        run the whole system under ./var and print how to use it"
	@echo "make demo-stop   stop what make demo started"
	@echo "make fuzz        run every libFuzzer target for FUZZ_SECONDS (default 10)"
	@echo "make deps        install the Debian packages everything needs (as root)"
	@echo "make install     install into \$$(DESTDIR)\$$(PREFIX) (default /usr/local)"
	@echo "make cfg-check   check that config/postern.conf.example documents every key"
	@echo "make deps-check  check module boundaries (mailer/ no SQL, httpd/ no mailer/)"

.PHONY: deps
deps:
	@bash tests/harness/deps.sh $(DEB_PACKAGES)

# The sanitizer tree: the same sources built with ASan + UBSan.
.PHONY: asan-bins
asan-bins:
	$(MAKE) BUILD=build/asan SAN=1 test-bins

.PHONY: test
test: deps
	$(MAKE) all test-bins
	$(MAKE) asan-bins
	$(MAKE) fuzz-build
	$(MAKE) cfg-check deps-check
	bash tests/run.sh $(BUILD) build/asan build/fuzz

.PHONY: demo demo-stop
demo: deps
	$(MAKE) all
	bash tests/harness/demo.sh start
demo-stop:
	bash tests/harness/demo.sh stop

# The job queue against a pgbench reference on a private PostgreSQL
# (tests/bench/README.md).
.PHONY: bench-queue
bench-queue: all
	bash tests/bench/queue.sh $(BUILD)

.PHONY: bench-smtp
bench-smtp: all
	bash tests/bench/smtp.sh $(BUILD)

.PHONY: bench-ingest
bench-ingest: all
	bash tests/bench/ingest.sh $(BUILD)

.PHONY: cfg-check
cfg-check: $(BUILD)/posternctl
	@missing=$$($(BUILD)/posternctl config keys | while IFS=. read -r sec key; do \
		awk -v s="[$$sec]" -v k="$$key" '$$0 == s { in_s = 1; next } /^\[/ { in_s = 0 } \
			in_s && $$0 ~ "^#? *" k " *=" { found = 1 } END { exit !found }' \
			config/postern.conf.example || echo "$$sec.$$key"; done); \
	if [ -n "$$missing" ]; then echo "cfg-check: not in config/postern.conf.example:" $$missing; exit 1; fi; \
	echo "cfg-check: every key is documented in config/postern.conf.example"

.PHONY: deps-check
deps-check:
	@bad=$$(grep -lE '#include [<"](libpq-fe.h|common/db[a-z_]*\.h)' mailer/*.[ch] 2>/dev/null; \
	       grep -lE '#include "mailer/' httpd/*.[ch] common/*.[ch] 2>/dev/null; \
	       grep -lE '#include "(httpd|worker)/' common/*.[ch] mailer/*.[ch] 2>/dev/null); \
	if [ -n "$$bad" ]; then echo "deps-check: module boundary crossed in:" $$bad; exit 1; fi; \
	echo "deps-check: module boundaries hold"

.PHONY: install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/migrations $(DESTDIR)$(DATADIR)/examples
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 migrations/*.sql $(DESTDIR)$(DATADIR)/migrations/
	install -m 644 config/postern.conf.example $(DESTDIR)$(DATADIR)/examples/
	install -m 644 config/*.service $(DESTDIR)$(DATADIR)/examples/

.PHONY: clean
clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
