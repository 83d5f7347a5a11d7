# postern: one non-recursive Makefile. `make help` lists the targets.
#
# Outputs go to $(BUILD) (default build/). The sanitizer pass builds the same
# tree into build/asan with SAN=1.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=

PKGS      := libpq libcurl libetpan libsodium libmicrohttpd inih
WARN      := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wvla
CFLAGS    ?= -O2 -g
SAN_ON    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANFLAGS  := $(if $(SAN),$(SAN_ON))
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc adds Debian's no-PIE link specs, which clash with ASan/PIE.
PKG_LIBS   := $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))
ALL_CFLAGS := $(WARN) $(CFLAGS) $(SANFLAGS) -I. $(PKG_CFLAGS) -pthread -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread

COMMON_SRC := $(sort $(wildcard common/*.c))
MAILER_SRC := $(sort $(wildcard mailer/*.c))
HTTPD_SRC  := $(sort $(wildcard httpd/*.c))
CTL_SRC    := $(sort $(wildcard worker/ctl*.c))
WORKER_SRC := $(filter-out $(CTL_SRC),$(sort $(wildcard worker/*.c)))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
ITEST_SRC  := $(sort $(wildcard tests/integration/test_*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBCOMMON := $(BUILD)/libcommon.a
LIBMAILER := $(BUILD)/libmailer.a
BINS      := $(BUILD)/postern-worker $(BUILD)/postern-httpd $(BUILD)/posternctl
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

.PHONY: all
all: $(BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

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
$(BUILD)/tests/%: $(BUILD)/tests/integration/%.o $(LIBMAILER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka -lm

.PHONY: test-bins
test-bins: $(BINS) $(UNIT_BINS) $(ITEST_BINS)

.PHONY: clean
clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
