/*
 * server.h: the public and admin HTTP listeners and their routes
 * (daemon/server.c, DESIGN.md sections 4 and 5).
 */
#ifndef GITOPSD_SERVER_H
#define GITOPSD_SERVER_H

struct event_base;
struct config;
struct queue;
struct poller;
struct server;

struct server	*server_new(struct event_base *, struct config *, struct queue *,
		    char *err, size_t errlen);
/*
 * Take a new configuration: limits and sources change at once; a listener
 * is rebound only if its address changed.  On a bind failure the old
 * listener stays and -1 is returned with err.
 */
int		 server_reconfigure(struct server *, struct config *,
		    char *err, size_t errlen);
/* Stop accepting; answer 503 to new webhooks on open connections. */
void		 server_drain(struct server *);
/* The registry poller whose status the admin API shows (NULL: none). */
void		 server_set_poller(struct server *, struct poller *);
/* Requests still waiting for their answer (the queue commit). */
int		 server_pending(const struct server *);
void		 server_free(struct server *);
int		 server_public_port(const struct server *);
int		 server_admin_port(const struct server *);

#endif
