# gitopsd: `make` builds build/gitopsd and build/gitopsctl.
# `make test` builds everything with ASan+UBSan into build-san/ and runs
# every unit and integration test.  `make deps` installs what is missing.

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/bin
SBINDIR	 = $(PREFIX)/bin
MANDIR	 = $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system

CC	?= cc
PKG_CONFIG ?= pkg-config
PKGS	 = libevent libevent_openssl libevent_pthreads libgit2 libssh2 libcurl \
	   yaml-0.1 libcjson openssl sqlite3 libpq
HAVE_SYSTEMD := $(shell $(PKG_CONFIG) --exists libsystemd 2>/dev/null && echo 1)
ifeq ($(HAVE_SYSTEMD),1)
PKGS	+= libsystemd
SYSTEMD_CFLAGS = -DHAVE_LIBSYSTEMD=1
endif

VERSION	:= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
WARN	 = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
	   -Wmissing-prototypes -Wformat=2 -Wvla
BASE_CFLAGS = -std=c17 $(WARN) -D_GNU_SOURCE -Iinclude \
	   -DGITOPSD_VERSION='"$(VERSION)"' $(SYSTEMD_CFLAGS) \
	   $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LIBS	 = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lpthread -lm

OPT	?= -O2 -g
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined

# Build flavours: plain (build/) and sanitized (build-san/).
B	?= build
ifeq ($(B),build-san)
CFLAGS_EXTRA = $(SAN_FLAGS)
LDFLAGS_EXTRA = -fsanitize=address,undefined
else
CFLAGS_EXTRA = $(OPT)
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS_EXTRA) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_EXTRA) $(LDFLAGS)

LIB_SRC	 = $(filter-out daemon/main.c,$(wildcard daemon/*.c handlers/*.c notify/*.c))
# The status page's files, embedded as C arrays (scripts/embed-web.sh).
WEB_SRC	 = $(sort $(wildcard web/*))
LIB_OBJ	 = $(LIB_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/web_assets.o
UNIT_SRC = $(wildcard test/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:test/unit/%.c=$(B)/test/%)
# C suites that start real peers or need npm fixtures: built like the unit
# binaries, run by the integration suite (test_cmocka_suites.py).
INTEG_SRC = $(wildcard test/integration/*_suite.c)
INTEG_BIN = $(INTEG_SRC:test/integration/%.c=$(B)/itest/%)
SUPPORT_SRC = $(wildcard test/support/*.c)
SUPPORT_BIN = $(SUPPORT_SRC:test/support/%.c=$(B)/support/%)

.PHONY: all deps run test test-unit test-integration install clean fuzz \
	fuzz-smoke lint bench valgrind unit-bins integration-bins support-bins

all: $(B)/gitopsd $(B)/gitopsctl

$(B)/obj/%.o: %.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

%/gen/web_assets.c: $(WEB_SRC) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@sh scripts/embed-web.sh $@ $(WEB_SRC)

$(B)/obj/gen/web_assets.o: $(B)/gen/web_assets.c include/web.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libgitopsd.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/gitopsd: $(B)/obj/daemon/main.o $(B)/libgitopsd.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/gitopsctl: $(B)/obj/tools/gitopsctl.o $(B)/libgitopsd.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/test/%: test/unit/%.c $(B)/libgitopsd.a $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(ALL_CFLAGS) -Itest/unit $(ALL_LDFLAGS) -o $@ $< $(B)/libgitopsd.a \
	    $(LIBS) -lcmocka

# The status page's test inflates the embedded gzip copies in process.
$(B)/test/test_web: LIBS += -lz

$(B)/itest/%: test/integration/%.c $(B)/libgitopsd.a \
    $(wildcard test/unit/*.h test/integration/*.h)
	@mkdir -p $(dir $@)
	@echo "  ITEST   $@"
	@$(CC) $(ALL_CFLAGS) -Itest/integration -Itest/unit $(ALL_LDFLAGS) \
	    -o $@ $< $(B)/libgitopsd.a $(LIBS) -lcmocka

# test_gitopsctl.c includes the tool's source to test its static printers.
$(B)/test/test_gitopsctl: tools/gitopsctl.c

$(B)/support/%: test/support/%.c $(B)/libgitopsd.a
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libgitopsd.a $(LIBS)

# The store conformance suite is a cmocka program run by an integration
# test (it needs a PostgreSQL server, see test_store_conformance.py).
$(B)/support/store_conformance: LIBS += -lcmocka

deps:
	@sh scripts/deps.sh

# The demo: embedded default config, local bare repo, simulator cluster.
run: deps
	@$(MAKE) --no-print-directory B=build all
	@sh scripts/demo.sh

test: deps
	@$(MAKE) --no-print-directory -j2 B=build-san all unit-bins \
	    integration-bins support-bins
	@GITOPSD_BUILD=build-san sh test/run.sh

# Integration modules under Valgrind memcheck (plain build: ASan and
# Valgrind do not mix).  Any leak or error fails the run.  The whole suite
# takes about 30 minutes under memcheck, too long beside the rest of CI
# inside its time limit, so CI runs the modules that between them go
# through every part of the daemon once (ingest and every handler, the
# Git transports, sync, each notifier family, both stores, replicas,
# restarts and kill -9, the admin API and the status page);
# `make valgrind VALGRIND_MODULES=test_` runs them all.
VALGRIND_MODULES ?= test_daemon,test_e2e,test_sync,test_notify,\
test_postgres,test_replicas.py,test_pg_wakeup,test_git_remotes,\
test_interrupted,test_kill,test_copy_state,test_drift,test_metrics,\
test_web,test_bad_requests,test_admin_security,test_secrets_hygiene,\
test_limits,test_registry_e2e,test_verify_tag,test_commit_status,\
test_review_flow,test_socket_activation,test_systemd,test_store_conformance
valgrind: deps
	@$(MAKE) --no-print-directory -j2 B=build all integration-bins \
	    support-bins
	@GITOPSD_BUILD=build GITOPSD_VALGRIND=1 TEST_ONLY=integration \
	    TEST_FILTER="$(VALGRIND_MODULES)" sh test/run.sh

unit-bins: $(UNIT_BIN)
integration-bins: $(INTEG_BIN)
support-bins: $(SUPPORT_BIN)

test-unit:
	@$(MAKE) --no-print-directory -j2 B=build-san all unit-bins
	@GITOPSD_BUILD=build-san TEST_ONLY=unit sh test/run.sh

test-integration:
	@$(MAKE) --no-print-directory -j2 B=build-san all integration-bins \
	    support-bins
	@GITOPSD_BUILD=build-san TEST_ONLY=integration sh test/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(B)/gitopsd $(DESTDIR)$(SBINDIR)/gitopsd
	install -m 0755 $(B)/gitopsctl $(DESTDIR)$(BINDIR)/gitopsctl
	install -d $(DESTDIR)$(SYSCONFDIR)/gitopsd
	install -m 0644 config/gitopsd.example.yaml \
	    $(DESTDIR)$(SYSCONFDIR)/gitopsd/gitopsd.example.yaml
	install -d $(DESTDIR)$(UNITDIR)
	for f in systemd/*.service systemd/*.socket; do \
	    [ -f "$$f" ] && install -m 0644 $$f $(DESTDIR)$(UNITDIR)/; done; true
	if [ -f systemd/gitopsd.sysusers ]; then \
	    install -d $(DESTDIR)$(PREFIX)/lib/sysusers.d && \
	    install -m 0644 systemd/gitopsd.sysusers \
	    $(DESTDIR)$(PREFIX)/lib/sysusers.d/gitopsd.conf; fi
	if [ -f systemd/gitopsd.tmpfiles ]; then \
	    install -d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d && \
	    install -m 0644 systemd/gitopsd.tmpfiles \
	    $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/gitopsd.conf; fi
	for m in man/*.[0-9]; do [ -f "$$m" ] || continue; \
	    s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

clean:
	rm -rf build build-san build-fuzz

-include fuzz/fuzz.mk

# Static analysis: cppcheck and clang-tidy (.clang-tidy), both must be clean.
# varFuncNullUB is off: glibc's NULL is ((void *)0), a valid sentinel.
LINT_SRC = $(wildcard daemon/*.c handlers/*.c notify/*.c tools/*.c)
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr --std=c11 -D_GNU_SOURCE -Iinclude \
	    --suppress=missingIncludeSystem --suppress=varFuncNullUB \
	    --suppress=funcArgOrderDifferent \
	    --include=/usr/include/x86_64-linux-gnu/sys/queue.h $(LINT_SRC)
	clang-tidy --quiet $(LINT_SRC) -- $(BASE_CFLAGS)
