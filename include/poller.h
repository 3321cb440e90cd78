/*
 * poller.h: registry polling (daemon/poller.c), the safety net for image
 * events that never arrived: each app image with images[].poll_interval_s
 * has its tags listed on that interval, and a newer tag its policy accepts
 * is handed to the queue as the image event a registry would have sent.
 */
#ifndef GITOPSD_POLLER_H
#define GITOPSD_POLLER_H

#include <stdint.h>

struct event_base;
struct config;
struct queue;
struct poller;

/* What the last poll of one image did, for the admin API. */
struct poller_status {
	int	 interval_s;	/* 0: not polled */
	int64_t	 last_ms;	/* 0: not polled yet */
	int64_t	 next_ms;
	char	 result[16];	/* "ok", "unchanged", "throttled", "error" */
	char	 tag[129];	/* the best tag the listing had, or "" */
	char	 error[256];
};

/* Start the poller thread; results come back on base's loop. */
struct poller	*poller_new(struct event_base *, struct queue *, struct config *);
void		 poller_reconfigure(struct poller *, struct config *);
/* Stop the thread (a poll in flight ends first) and free. */
void		 poller_free(struct poller *);
/* 1 and *st filled when app's image repository is polled, else 0. */
int		 poller_status_get(struct poller *, const char *app,
		    const char *repository, struct poller_status *st);
/*
 * When an image is first polled after start_ms: its slot in the interval
 * (a hash of app and repository), at least one whole interval after start
 * so a restart does not send every poll at once.
 */
int64_t		 poller_first_due_ms(const char *app, const char *repository,
		    int interval_s, int64_t start_ms);

#endif
