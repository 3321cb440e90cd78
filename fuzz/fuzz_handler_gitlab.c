/* libFuzzer target: the gitlab handler (verify, parse, route). */
#define FUZZ_SOURCE "gitlab"
#include "handler.inc"
