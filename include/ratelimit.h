/*
 * ratelimit.h: a token bucket that hands out reservations (daemon/ratelimit.c).
 * A caller that finds the bucket empty is told how long to wait for its
 * token, and its token is already taken, so callers that wait together are
 * released one rate interval apart instead of all at once when it refills.
 */
#ifndef GITOPSD_RATELIMIT_H
#define GITOPSD_RATELIMIT_H

struct ratelimit {
	double	 tokens;	/* may go negative: reserved ahead */
	double	 last;		/* time of the last refill, seconds */
	int	 started;
};

/*
 * Take one token at time now (seconds, monotonic) from a bucket refilled at
 * rate a second up to burst.  Returns 0 when it was there, else the seconds
 * to wait before using it.  rate <= 0: unlimited, always 0.
 */
double	 ratelimit_reserve(struct ratelimit *, double rate, double burst,
	    double now);

#endif
