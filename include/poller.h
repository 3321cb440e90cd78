/*
 * poller.h: registry and Git polling (daemon/poller.c), the safety net for
 * events that never arrived: each app image with images[].poll_interval_s
 * has its tags listed on that interval, and a newer tag its policy accepts
 * is handed to the queue as the image event a registry would have sent;
 * each repo with repos[].poll_interval_s has its branch head asked for,
 * and a head that moved is handed over as the push a Git host would have
 * sent.
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
	char	 head[41];	/* a repo's branch head at its last poll */
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
/* 1 and *st filled when repo is polled, else 0. */
int		 poller_repo_status_get(struct poller *, const char *repo,
		    struct poller_status *st);
/*
 * The webhook side of the shared deduplication, on the loop: 1 when
 * revision is the head of polled repo that was handled already (a poll or
 * a webhook queued its syncs), so a push for it adds nothing; and after a
 * webhook's syncs of repo at revision were stored, poller_repo_note.
 */
int		 poller_repo_handled(struct poller *, const char *repo,
		    const char *revision);
void		 poller_repo_note(struct poller *, const char *repo,
		    const char *revision);
/*
 * When a repo is first polled after start_ms: its slot in the interval (a
 * hash of its name), strictly after start and at most one interval
 * later, so a push made while gitopsd was down is found within one
 * interval and repos do not all ask at once.
 */
int64_t		 poller_repo_first_due_ms(const char *repo, int interval_s,
		    int64_t start_ms);
/*
 * When an image is first polled after start_ms: its slot in the interval
 * (a hash of app and repository), at least one whole interval after start
 * so a restart does not send every poll at once.
 */
int64_t		 poller_first_due_ms(const char *app, const char *repository,
		    int interval_s, int64_t start_ms);

#endif
