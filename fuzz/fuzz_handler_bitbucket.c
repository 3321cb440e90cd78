/* libFuzzer target: the bitbucket handler (verify, parse, route). */
#define FUZZ_SOURCE "bitbucket"
#include "handler.inc"
