/* libFuzzer target: the harbor handler (verify, parse, route). */
#define FUZZ_SOURCE "harbor"
#include "handler.inc"
