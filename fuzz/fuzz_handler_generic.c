/* libFuzzer target: the generic handler (verify, parse, route). */
#define FUZZ_SOURCE "generic"
#include "handler.inc"
