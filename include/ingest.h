/*
 * ingest.h: what happens to a webhook between the socket and the queue,
 * as a pure function (daemon/ingest.c).  The HTTP server, the webhook case
 * runner and the fuzz targets all call ingest_process(), so what the tests
 * check is what the server does.
 *
 *   route /hooks/<name>[/<token>] -> source (404) -> method (405)
 *   -> handler.verify (401/415) -> handler.parse (400, 200 ignored)
 *   -> router (200 "no app") -> queue items (the server submits them;
 *   202 after commit, 200 duplicate, 503 when full)
 */
#ifndef GITOPSD_INGEST_H
#define GITOPSD_INGEST_H

#include <stddef.h>

#include "handler.h"
#include "queue.h"

struct config;
struct config_source;

struct ingest_result {
	int				 status;	/* 0: submit items; else answer this */
	char				*body;		/* JSON answer when status != 0 */
	char				 cause[256];	/* for the log line; no secrets */
	const struct config_source	*source;	/* NULL when unknown */
	int				 verified;	/* signature or token good */
	const char			*delivery;	/* first event's delivery id */
	struct hook_result		 hr;
	struct queue_item		*items;		/* one per event with jobs */
	size_t				 nitems;
	struct job_spec			**specs;	/* per item, owned */
};

/*
 * Process one request for path (the part after "/hooks/", e.g. "github" or
 * "dockerhub/<token>").  Always fills res; free with ingest_result_free.
 */
void	ingest_process(const struct config *, const char *path,
	    const struct hook_request *, struct ingest_result *res);
void	ingest_result_free(struct ingest_result *);

/* {"error": msg, "code": status} (malloc'd). */
char	*ingest_error_json(int status, const char *msg);

#endif
