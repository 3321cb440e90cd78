/*
 * admin_guard.h: what the admin listener accepts before any route runs:
 * the Host header (DNS rebinding) and, for state-changing requests, the
 * Origin header and the content type (cross-site request forgery).
 */
#ifndef GITOPSD_ADMIN_GUARD_H
#define GITOPSD_ADMIN_GUARD_H

#include <stddef.h>

struct config_admin;
struct http_request_info;

/*
 * 0 when the request may go on; else the status to answer with (421: the
 * Host is not this listener, 403: a cross-site or form request) and why
 * in the message buffer.  port is the port the listener is bound to.
 */
int	admin_guard_check(const struct config_admin *, int port,
	    const struct http_request_info *, char *why, size_t whylen);

#endif
