/* libFuzzer target: the github handler (verify, parse, route). */
#define FUZZ_SOURCE "github"
#include "handler.inc"
