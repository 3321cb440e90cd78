# libFuzzer targets (clang).  `make fuzz` builds build-fuzz/fuzz_*;
# `make fuzz-smoke` runs each for FUZZ_SECONDS (default 45), FUZZ_JOBS
# (default 2) at a time, on its seed corpus fuzz/corpus/<target>/ (built
# from test/fixtures by fuzz/mkcorpus.py).  See docs/security-testing.md.

FUZZ_CC	?= clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = $(BASE_CFLAGS) -Wno-unused-command-line-argument -g -O1 \
	   -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	   -DGITOPSD_FUZZ=1
FUZZ_LIB_OBJ = $(LIB_SRC:%.c=build-fuzz/obj/%.o) build-fuzz/obj/gen/web_assets.o
FUZZ_SRC = $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 45

build-fuzz/obj/%.o: %.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build-fuzz/obj/gen/web_assets.o: build-fuzz/gen/web_assets.c include/web.h
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build-fuzz/libgitopsd.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h fuzz/handler.inc test/unit/json_ref.h \
    build-fuzz/libgitopsd.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ifuzz -fsanitize=fuzzer -o $@ $< \
	    build-fuzz/libgitopsd.a $(LIBS)

fuzz: $(FUZZ_BIN)

fuzz-smoke: fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/smoke.sh
