/*
 * admin.h: the admin REST API (daemon/admin.c), served on the admin
 * listener under /api/v1.
 */
#ifndef GITOPSD_ADMIN_H
#define GITOPSD_ADMIN_H

struct queue;
struct poller;
struct buf;

/*
 * Answer one /api/v1 request: the JSON answer goes to body and its HTTP
 * status is returned; 0 when the path is not an API route.
 */
int	 admin_api(struct queue *, struct poller *, const char *method,
	    const char *path, const char *query, struct buf *body);

#endif
