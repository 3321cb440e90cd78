/*
 * libFuzzer target: handler_json_parse() (handlers/json_parse.c), the
 * one-pass strict reader of every webhook payload, against its reference
 * (test/unit/json_ref.h: the earlier scan + cJSON + walk).  Invariant:
 * both accept the same bodies, and where they accept, the trees are the
 * same as a handler reads them (types, keys, bytes of every string, bits
 * of every number, member order and links).  A refusal always has a
 * reason.  The reader runs inside the arena bracket on odd-length inputs
 * and on malloc otherwise, as the daemon and its tools do.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "handler.h"
#include "../test/unit/json_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 why[256] = "", rwhy[256] = "", where[256];
	cJSON	*a, *b;
	int	 arena = size % 2 == 1;

	handler_json_init();
	if (arena)
		handler_json_arena_begin();
	a = handler_json_parse(data, size, why, sizeof(why));
	b = json_ref_parse(data, size, rwhy, sizeof(rwhy));
	if ((a == NULL) != (b == NULL)) {
		fprintf(stderr, "fuzz_json: reader %s (%s), reference %s "
		    "(%s)\n", a ? "accepts" : "refuses", why,
		    b ? "accepts" : "refuses", rwhy);
		abort();
	}
	if (a == NULL && why[0] == '\0') {
		fprintf(stderr, "fuzz_json: refused without a reason\n");
		abort();
	}
	if (a != NULL && !json_ref_same(a, b, where, sizeof(where))) {
		fprintf(stderr, "fuzz_json: trees differ: %s\n", where);
		abort();
	}
	handler_json_delete(a);
	cJSON_Delete(b);
	if (arena)
		handler_json_arena_end();
	return 0;
}
