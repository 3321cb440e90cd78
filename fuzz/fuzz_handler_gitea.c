/* libFuzzer target: the gitea handler (verify, parse, route). */
#define FUZZ_SOURCE "gitea"
#include "handler.inc"
