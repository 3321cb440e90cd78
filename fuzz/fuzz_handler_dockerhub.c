/* libFuzzer target: the dockerhub handler (verify, parse, route). */
#define FUZZ_SOURCE "dockerhub"
#include "handler.inc"
