/*
 * ratelimit.c: token-bucket reservations (include/ratelimit.h).  Not
 * locked: callers that share a bucket between threads hold their own lock.
 */
#include "ratelimit.h"

double
ratelimit_reserve(struct ratelimit *r, double rate, double burst, double now)
{
	if (rate <= 0)
		return 0;
	if (burst < 1)
		burst = 1;
	if (!r->started) {
		r->tokens = burst;
		r->last = now;
		r->started = 1;
	}
	if (now > r->last) {
		r->tokens += (now - r->last) * rate;
		if (r->tokens > burst)
			r->tokens = burst;
		r->last = now;
	}
	r->tokens -= 1;
	if (r->tokens >= 0)
		return 0;
	return -r->tokens / rate;
}
