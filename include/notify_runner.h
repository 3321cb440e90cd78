/*
 * notify_runner.h: the JOB_NOTIFY runner (notify/runner.c).
 *
 * A notify job is rendered from its params (written by notify_plan) and
 * the current notifier config, and delivered on the event loop through one
 * shared http_client (libcurl multi) per loop.  Its result feeds the
 * queue's retry machinery: 5xx, timeouts and refused connections retry
 * (429 with the receiver's Retry-After), other 4xx and 5xx SMTP replies
 * are permanent.
 */
#ifndef GITOPSD_NOTIFY_RUNNER_H
#define GITOPSD_NOTIFY_RUNNER_H

#include "job.h"

extern const struct job_runner job_runner_notify;

/*
 * Free the loop's client (after queue_close).  Deliveries still in flight
 * are abandoned without calling done: their jobs are still `running` in
 * the store and are taken over when their lease ends.
 */
void	notify_runner_shutdown(void);

/* Deliveries in flight now. */
size_t	notify_runner_pending(void);

#endif
