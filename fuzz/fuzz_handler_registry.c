/* libFuzzer target: the registry handler (verify, parse, route). */
#define FUZZ_SOURCE "registry"
#include "handler.inc"
