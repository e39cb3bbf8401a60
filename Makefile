# SPDX-License-Identifier: Apache-2.0
# ec2-imaged build. `make` builds build/ec2-imaged; `make check` runs every test; `make demo` runs
# the main job against local peers. SAN=1 builds and tests with ASan+UBSan into build-san/.

VERSION   := 0.1.0
PKGS      := libcurl libcjson libsystemd inih libxml-2.0 libcrypto
CC        ?= cc
SAN       ?=
ifeq ($(SAN),1)
BUILD     ?= build-san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD     ?= build
SANFLAGS  :=
endif

# PKG_CFLAGS and PKG_LIBS, pkg-config's flags for PKGS, come from $(BUILD)/pkg-config.mk, which its
# rule (at `deps`) writes after installing the missing Debian packages. When the file is missing
# or older than the Makefile, make runs that rule first and then reads the Makefile again, so the
# first build on a machine without the -dev packages gets the flags of the packages just
# installed. Goals that compile nothing here do without it.
GOALS     := $(or $(MAKECMDGOALS),all)
ifneq ($(filter-out clean format format-check check-layers check-sizes deps deb rpm e2e,$(GOALS)),)
include $(BUILD)/pkg-config.mk
endif
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
             -Wmissing-prototypes -Wno-unused-parameter -fno-strict-aliasing \
             -D_GNU_SOURCE -DEC2_IMAGED_VERSION='"$(VERSION)"' -Iagent -fstack-protector-strong \
             -D_FORTIFY_SOURCE=2 -MMD -MP $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS   += $(SANFLAGS)
LDLIBS    += $(PKG_LIBS) -lpthread

AGENT_SRC := $(wildcard agent/*/*.c)
LIB_SRC   := $(filter-out agent/cli/main.c agent/daemon/daemon_main.c,$(AGENT_SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libagent.a
BIN       := $(BUILD)/ec2-imaged
DAEMON_BIN := $(BUILD)/ec2-imaged-daemon

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/replay_%)
FUZZ_LF   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz-lf/%)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

PYTHON    ?= /usr/bin/python3
# V=1 shows every command line
ifeq ($(V),1)
Q :=
else
Q := @
endif
PYTEST_ARGS ?=

.PHONY: all deps check unit fuzz-replay integration format format-check check-layers check-sizes demo fuzz fuzz-long clean \
        check-san bench-api
all: $(BIN) $(DAEMON_BIN)

deps:
	@packaging/install-build-deps.sh

# The goals that run more than the build and the unit tests install everything `make check` uses
# (see packaging/install-build-deps.sh); the others only the build dependencies. The package
# builds set NO_DEPS=1: there the build dependencies are the package manager's business.
# .ci/run runs make check and make check-san at once: each writes a temporary file of its own.
FULL_DEPS_GOALS := check check-san check-db integration demo bench-api bench-freeze bench-idle fuzz
$(BUILD)/pkg-config.mk: Makefile
ifeq ($(NO_DEPS),)
	@packaging/install-build-deps.sh $(if $(filter $(FULL_DEPS_GOALS),$(GOALS)),,--build)
endif
	@mkdir -p $(dir $@)
	@pkg-config --print-errors --exists $(PKGS)
	@printf 'PKG_CFLAGS := %s\nPKG_LIBS   := %s\n' "$$(pkg-config --cflags $(PKGS))" \
		"$$(pkg-config --libs $(PKGS))" > $@.tmp.$$$$ && mv $@.tmp.$$$$ $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BIN): $(BUILD)/obj/agent/cli/main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The daemon's loop, which `ec2-imaged daemon` execs into: --as-needed leaves out the libraries
# that only the imaging uses (libcurl, OpenSSL, libxml2), which the loop never calls.
$(DAEMON_BIN): $(BUILD)/obj/agent/daemon/daemon_main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) $(CFLAGS) -Iagent -DSRCDIR='"$(CURDIR)"' $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# Small C drivers that integration tests use to exercise one module against a real peer.
$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) $(CFLAGS) -Iagent $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/fuzz/replay_%: tests/fuzz/%.c tests/fuzz/replay_main.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+LD   $@")
	$(Q)$(CC) $(CFLAGS) -Iagent $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c $(LIB) $(LDLIBS)

# libFuzzer builds (clang); the corpus in tests/fuzz/corpus/NAME/ seeds them.
# -MMD -MP: an object is rebuilt when a header it uses changes (a stale one mixes struct layouts).
LF_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -DEC2_IMAGED_VERSION='"$(VERSION)"' -Iagent -MMD -MP \
             $(PKG_CFLAGS)
LF_OBJ    := $(LIB_SRC:%.c=$(BUILD)/lfobj/%.o)
$(BUILD)/lfobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(LF_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(BUILD)/lfobj/libagent.a: $(LF_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/fuzz-lf/%: tests/fuzz/%.c $(BUILD)/lfobj/libagent.a
	@mkdir -p $(dir $@)
	clang $(LF_CFLAGS) -fsanitize=fuzzer,address,undefined -Iagent -o $@ $< \
		$(BUILD)/lfobj/libagent.a $(LDLIBS)

# `make fuzz` (CI: FUZZ_SECONDS per target) and `make fuzz-long` run every libFuzzer target from
# its committed corpus and merge what adds coverage back into it; a crash or sanitizer report fails.
FUZZ_SECONDS ?= 20
FUZZ_LONG_SECONDS ?= 600
fuzz: $(FUZZ_LF)
	tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_LF)

fuzz-long: $(FUZZ_LF)
	tests/fuzz/run-fuzz.sh $(FUZZ_LONG_SECONDS) $(FUZZ_LF)

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
		TESTDATA=$(CURDIR)/tests/data $$t || fail=1; done; exit $$fail

fuzz-replay: $(FUZZ_REPLAY)
	@fail=0; for t in $(FUZZ_REPLAY); do n=$$(basename $$t | sed 's/^replay_//'); \
		$$t tests/fuzz/corpus/$$n || fail=1; done; exit $$fail

# The database hooks' tests start real MariaDB and PostgreSQL servers: `make check-db`, not
# `make check` (see README, Tests).
DB_TESTS := tests/integration/test_db_hooks.py
integration: $(BIN) $(DAEMON_BIN) $(TOOL_BIN)
	EC2_IMAGED_BIN=$(CURDIR)/$(BIN) EC2_IMAGED_TOOLS=$(CURDIR)/$(BUILD)/tools EC2_IMAGED_TESTDATA=$(CURDIR)/tests/data \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration --ignore=$(DB_TESTS) $(PYTEST_ARGS)

.PHONY: check-db
check-db: deps $(BIN) $(DAEMON_BIN) $(TOOL_BIN)
	EC2_IMAGED_BIN=$(CURDIR)/$(BIN) EC2_IMAGED_TOOLS=$(CURDIR)/$(BUILD)/tools EC2_IMAGED_TESTDATA=$(CURDIR)/tests/data \
		$(PYTHON) -m pytest -q -p no:cacheprovider $(DB_TESTS) $(ALLOWED_SKIPS) $(PYTEST_ARGS)

# The layering rule of agent/ (folders by layer, includes only downwards, no cycles).
check-layers:
	@$(PYTHON) tests/lint/check-layers.py

# No .c file over 600 lines, no function over 80, but for the exceptions README.md justifies.
check-sizes:
	@$(PYTHON) tests/lint/check-sizes.py

format-check:
	@files=$$(git ls-files '*.c' '*.h'); [ -z "$$files" ] || clang-format --dry-run --Werror $$files

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# A skip that tests/allowed-skips.txt does not list fails the run (see README, Tests).
ALLOWED_SKIPS := --allowed-skips=$(CURDIR)/tests/allowed-skips.txt
check: deps
	$(MAKE) format-check check-layers check-sizes
	$(MAKE) all unit fuzz-replay
	$(MAKE) integration PYTEST_ARGS="$(ALLOWED_SKIPS) $(PYTEST_ARGS)"

# The sanitizer run covers every test that runs our C code, the sanitize hook's included (it does
# its file operations through `ec2-imaged fsop`, which the tests install in the root they chroot
# into); the patch hook (which runs `ec2-imaged patch` and `whoami`, as the README says), the
# packages and the unit files run once, in `make check`, for their Debian roots and builds.
SAN_SKIP := --ignore=tests/integration/test_patching.py \
            --ignore=tests/integration/test_patching_rpm.py \
            --ignore=tests/integration/test_packaging.py --ignore=tests/integration/test_units.py \
            --ignore=tests/integration/test_xfs_log.py
check-san: deps
	$(MAKE) SAN=1 all unit fuzz-replay
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) SAN=1 integration PYTEST_ARGS="$(SAN_SKIP) $(ALLOWED_SKIPS) $(PYTEST_ARGS)"

demo: deps $(BIN)
	$(PYTHON) tests/demo.py $(BIN)

bench-api: deps $(BIN)
	$(MAKE) $(BUILD)/tools/ec2_probe && $(PYTHON) tests/bench/bench_api.py $(BIN) $(BUILD)/tools/ec2_probe

.PHONY: bench-freeze
bench-freeze: deps $(BIN)
	$(PYTHON) tests/bench/bench_freeze.py $(BIN)

.PHONY: bench-idle
bench-idle: deps $(BIN) $(DAEMON_BIN)
	$(PYTHON) tests/bench/bench_idle.py $(BIN)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj $(BUILD)/lfobj $(BUILD)/tests $(BUILD)/tools -name '*.d' 2>/dev/null)

# Installation, for packages (DESTDIR) and by hand. Both packages install exactly this tree.
PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec
LIBDIR_EC2 ?= $(PREFIX)/lib/ec2-imaged
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/ec2-imaged
UNITDIR    ?= /lib/systemd/system
PRESETDIR  ?= $(dir $(UNITDIR))system-preset
SYSCONFDIR ?= /etc
INSTALL    ?= install

.PHONY: install
install: $(BIN) $(DAEMON_BIN)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR)/ec2-imaged \
		$(DESTDIR)$(LIBDIR_EC2)/hooks $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PRESETDIR) \
		$(DESTDIR)$(SYSCONFDIR)/ec2-imaged $(DESTDIR)$(SYSCONFDIR)/needrestart/conf.d \
		$(DESTDIR)$(DATADIR)/ec2-imaged $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples/ec2-imaged-run.timer.d $(DESTDIR)$(DOCDIR)/examples/user-data
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/ec2-imaged
	$(INSTALL) -m 0755 $(DAEMON_BIN) $(DESTDIR)$(LIBEXECDIR)/ec2-imaged/ec2-imaged-daemon
	$(INSTALL) -m 0644 units/*.service units/*.timer $(DESTDIR)$(UNITDIR)/
	$(INSTALL) -m 0644 packaging/50-ec2-imaged.preset $(DESTDIR)$(PRESETDIR)/50-ec2-imaged.preset
	$(INSTALL) -m 0644 conf/ec2-imaged.conf $(DESTDIR)$(SYSCONFDIR)/ec2-imaged/ec2-imaged.conf
	$(INSTALL) -m 0644 packaging/needrestart.conf \
		$(DESTDIR)$(SYSCONFDIR)/needrestart/conf.d/ec2-imaged.conf
	$(INSTALL) -m 0755 hooks/firstboot hooks/patch hooks/sanitize $(DESTDIR)$(LIBDIR_EC2)/hooks/
	$(INSTALL) -m 0644 hooks/lib.sh $(DESTDIR)$(LIBDIR_EC2)/hooks/lib.sh
	$(INSTALL) -m 0755 hooks/mysql-hold hooks/postgresql-checkpoint hooks/postgresql-hold \
		hooks/services-stop $(DESTDIR)$(LIBDIR_EC2)/hooks/
	$(INSTALL) -m 0644 hooks/db.sh $(DESTDIR)$(LIBDIR_EC2)/hooks/db.sh
	$(INSTALL) -m 0755 packaging/restart-after-upgrade $(DESTDIR)$(LIBDIR_EC2)/restart-after-upgrade
	$(INSTALL) -m 0644 packaging/ssm/ec2-imaged-run.json $(DESTDIR)$(DATADIR)/ec2-imaged/
	$(INSTALL) -m 0644 packaging/man/ec2-imaged.8 $(DESTDIR)$(MANDIR)/man8/ec2-imaged.8
	$(INSTALL) -m 0644 packaging/man/ec2-imaged.conf.5 $(DESTDIR)$(MANDIR)/man5/ec2-imaged.conf.5
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -m 0644 conf/ec2-imaged-run.timer.d/schedule.conf \
		$(DESTDIR)$(DOCDIR)/examples/ec2-imaged-run.timer.d/schedule.conf
	$(INSTALL) -m 0644 conf/user-data/* $(DESTDIR)$(DOCDIR)/examples/user-data/

# Packages, into build/: the tools they need are installed the way install-build-deps.sh does it.
.PHONY: deb rpm
deb:
	packaging/build-deb.sh build

rpm:
	packaging/build-rpm.sh build $(VERSION)

# The end-to-end test in real VMs (qemu, TCG) with the freshly built .deb.
.PHONY: e2e
e2e: deps deb
	$(PYTHON) tests/vm/e2e.py
