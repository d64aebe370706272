# Runnel build.  `make` builds build/runnel; `make SAN=1` builds an
# AddressSanitizer + UndefinedBehaviorSanitizer tree in build-san/;
# `make TSAN=1` a ThreadSanitizer tree in build-tsan/ (ASan and TSan
# cannot share a process, hence two trees).
# Sources are found by wildcard so adding a file needs no edit here.

CC      ?= cc
SAN     ?= 0
TSAN    ?= 0
ifeq ($(SAN)$(TSAN),11)
$(error SAN=1 and TSAN=1 cannot be combined: build them one at a time)
endif
ifeq ($(TSAN),1)
BUILD   := build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
OPT     := -O1
else ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   := build
SANFLAGS :=
OPT     := -O2
endif

# The admin HTTP server (libmicrohttpd, jansson) and its client in the
# CLI (libcurl), through pkg-config.
PKGS    := libmicrohttpd jansson libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Isrc -pthread -MMD -MP $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
# The ZooKeeper C client (cluster mode) has no pkg-config file on Debian.
LDLIBS  += -lrdkafka -lzookeeper_mt -lz -lsnappy -llz4 -lzstd -lm $(PKG_LIBS)

SRCS    := $(wildcard src/*/*.c src/*/*/*.c)
OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(SRCS))
MAIN    := $(BUILD)/src/main.o
TSRCS   := $(wildcard tests/unit/test_*.c)
TBINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TSRCS))

all: $(BUILD)/runnel $(TBINS)

# V=1 shows the full command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/runnel: $(MAIN) $(OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(OBJS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests only (fast); `make check` runs everything (scripts/test).
unit: $(TBINS)
	@set -e; for t in $(TBINS); do echo "== $$t"; $$t; done

check:
	scripts/test

run:
	scripts/start

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-tsan

.PHONY: all unit check run format clean
-include $(OBJS:.o=.d) $(MAIN:.o=.d)
