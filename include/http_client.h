/*
 * http_client.h: asynchronous HTTP(S) and SMTP(S) requests on the event
 * loop (daemon/http_client.c).
 *
 * One client per event_base wraps one libcurl multi handle driven by
 * libevent through the multi-socket API: one event per socket, one timer.
 * Nothing blocks the loop and no thread is started per request.  The client
 * and every callback live on the loop thread.
 */
#ifndef GITOPSD_HTTP_CLIENT_H
#define GITOPSD_HTTP_CLIENT_H

#include <stddef.h>

struct event_base;
struct http_client;

/* What to send.  Everything is copied by http_client_submit(). */
struct http_request {
	const char		*url;		/* http(s):// or smtp(s):// */
	const char		*method;	/* NULL: POST with a body, else GET */
	const char *const	*headers;	/* "Name: value" (HTTP only) */
	size_t			 nheaders;
	const void		*body;		/* HTTP body or the whole mail */
	size_t			 body_len;
	/* SMTP: envelope sender and recipients (bare addresses). */
	const char		*mail_from;
	const char *const	*rcpt;
	size_t			 nrcpt;
	const char		*username;	/* login; NULL: none */
	const char		*password;
	int			 require_tls;	/* smtp://: STARTTLS is mandatory */
	const char		*ca_file;	/* NULL: the system trust store */
	int			 timeout_s;	/* whole transfer; <= 0: 10 */
};

/* What came back; valid only during the callback. */
struct http_response {
	int		 ok;		/* transfer done and (HTTP) status 2xx */
	long		 status;	/* HTTP status or last SMTP reply code; 0: none */
	int		 retry_after_s;	/* from Retry-After; 0 when absent */
	const char	*error;		/* NULL when ok: transport or status text */
	int		 starttls_missing; /* require_tls: none offered */
	const char	*body;		/* response body, capped (NUL-terminated) */
	size_t		 body_len;
};

typedef void http_client_cb(const struct http_response *, void *arg);
typedef void http_client_free_cb(void *arg);

struct http_client	*http_client_create(struct event_base *,
			    char *err, size_t errlen);
/*
 * Pending requests are cancelled: their free_cb runs, their cb does not.
 */
void			 http_client_free(struct http_client *);

/*
 * Start a request.  On 0, cb runs exactly once later on the loop (never
 * from inside this call), then free_cb (if set).  On -1 (bad request,
 * libcurl refused it) neither runs and err says why.
 */
int			 http_client_submit(struct http_client *,
			    const struct http_request *, http_client_cb *cb,
			    http_client_free_cb *free_cb, void *arg,
			    char *err, size_t errlen);

/* Requests started and not finished yet. */
size_t			 http_client_pending(const struct http_client *);

/* Parse a Retry-After value (delta-seconds or HTTP-date) relative to
 * now (unix seconds); returns seconds (>= 0) or -1 when malformed. */
int			 http_client_parse_retry_after(const char *, long long now);

#endif
