/* libFuzzer target: the quay handler (verify, parse, route). */
#define FUZZ_SOURCE "quay"
#include "handler.inc"
