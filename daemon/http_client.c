/*
 * http_client.c: libcurl's multi-socket API driven by the libevent loop.
 *
 * DESIGN
 * The shape is the one of curl's hiperfifo.c / multi-event.c examples:
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * struct event per socket, kept as the socket's curl_multi_assign pointer)
 * and when to wake up (CURLMOPT_TIMERFUNCTION: one evtimer).  Both events
 * call curl_multi_socket_action() and then reap finished transfers
 * (http_client_check_done).  The timer callback only arms the evtimer; it
 * never calls back into libcurl, as libcurl asks.
 *
 * Ownership: a request (struct http_req) is owned by the client from
 * http_client_submit() until its callback has run; the caller's arg is
 * released through free_cb afterwards, or without cb when the client is
 * freed with the request still pending.  Everything runs on the loop
 * thread, so nothing here locks.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http_client.h"
#include "log.h"
#include "util.h"

#define HTTP_CLIENT_RESP_CAP	(16 * 1024)	/* kept for error messages */
#define HTTP_CLIENT_RETRY_MAX	86400		/* a day: ignore larger asks */

struct http_client;

struct http_req {
	struct http_client	*c;
	CURL			*easy;
	struct curl_slist	*headers;
	struct curl_slist	*rcpt;
	char			*url;
	char			*method;
	char			*body;
	size_t			 body_len;
	size_t			 body_off;	/* SMTP upload position */
	char			*mail_from;
	char			*username;
	char			*password;
	char			*ca_file;
	int			 smtp;
	int			 retry_after_s;
	struct buf		 resp;
	char			 errbuf[CURL_ERROR_SIZE];
	http_client_cb		*cb;
	http_client_free_cb	*free_cb;
	void			*arg;
	LIST_ENTRY(http_req)	 entry;
};

/* One watched socket. */
struct http_sock {
	struct event	*ev;
};

struct http_client {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	LIST_HEAD(, http_req)	 reqs;
	size_t			 npending;
};

static void	http_client_check_done(struct http_client *);

/* Free what a request owns; the caller's arg goes through free_cb. */
static void
http_req_free(struct http_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	curl_slist_free_all(r->rcpt);
	free(r->url);
	free(r->method);
	free(r->body);
	free(r->mail_from);
	free(r->username);
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->ca_file);
	buf_free(&r->resp);
	if (r->free_cb != NULL)
		r->free_cb(r->arg);
	free(r);
}

/* A socket is ready: hand it to libcurl, then reap what finished. */
static void
http_client_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct http_client	*c = arg;
	int			 action = 0, running = 0;
	CURLMcode		 mc;

	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	mc = curl_multi_socket_action(c->multi, fd, action, &running);
	if (mc != CURLM_OK)
		log_warnx("http_client: socket_action: %s", curl_multi_strerror(mc));
	http_client_check_done(c);
	if (running <= 0 && evtimer_pending(c->timer, NULL))
		evtimer_del(c->timer);
}

/* libcurl's timeout expired. */
static void
http_client_timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct http_client	*c = arg;
	int			 running = 0;
	CURLMcode		 mc;

	(void)fd;
	(void)kind;
	mc = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	if (mc != CURLM_OK)
		log_warnx("http_client: socket_action: %s", curl_multi_strerror(mc));
	http_client_check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm or stop our timer. */
static int
http_client_multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct http_client	*c = arg;
	struct timeval		 tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (evtimer_add(c->timer, &tv) == -1)
		return -1;
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget one socket. */
static int
http_client_sock_cb(CURL *easy, curl_socket_t s, int what, void *arg,
    void *sockp)
{
	struct http_client	*c = arg;
	struct http_sock	*hs = sockp;
	short			 kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			event_free(hs->ev);
			free(hs);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (hs == NULL) {
		hs = xcalloc(1, sizeof(*hs));
		if (curl_multi_assign(c->multi, s, hs) != CURLM_OK) {
			free(hs);
			return -1;
		}
	} else
		event_free(hs->ev);
	hs->ev = event_new(c->base, s, kind, http_client_event_cb, c);
	if (hs->ev == NULL || event_add(hs->ev, NULL) == -1) {
		log_warnx("http_client: cannot watch socket %d", (int)s);
		if (hs->ev != NULL)
			event_free(hs->ev);
		curl_multi_assign(c->multi, s, NULL);
		free(hs);
		return -1;
	}
	return 0;
}

/* Keep the response body (capped) for error messages. */
static size_t
http_client_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n, room;

	room = HTTP_CLIENT_RESP_CAP - r->resp.len;
	if (room > 0)
		(void)buf_add(&r->resp, p, len < room ? len : room);
	return len;
}

/* Watch the response headers for Retry-After. */
static size_t
http_client_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n;
	char		 val[128];
	const char	*v, *end;
	int		 secs;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue or a redirect). */
		r->retry_after_s = 0;
		return len;
	}
	if (len < 12 || strncasecmp(p, "retry-after:", 12) != 0)
		return len;
	v = p + 12;
	end = p + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	if ((size_t)(end - v) >= sizeof(val))
		return len;
	memcpy(val, v, (size_t)(end - v));
	val[end - v] = '\0';
	if ((secs = http_client_parse_retry_after(val, (long long)time(NULL))) >= 0)
		r->retry_after_s = secs;
	return len;
}

/* Feed the mail to libcurl's SMTP upload. */
static size_t
http_client_read_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 want = size * n, left = r->body_len - r->body_off;

	if (want > left)
		want = left;
	memcpy(p, r->body + r->body_off, want);
	r->body_off += want;
	return want;
}

int
http_client_parse_retry_after(const char *s, long long now)
{
	char		*end;
	long long	 v;
	time_t		 t;

	if (*s >= '0' && *s <= '9') {
		v = strtoll(s, &end, 10);
		if (*end != '\0')
			return -1;
		return v > HTTP_CLIENT_RETRY_MAX ? HTTP_CLIENT_RETRY_MAX : (int)v;
	}
	if ((t = curl_getdate(s, NULL)) == -1)
		return -1;
	v = (long long)t - now;
	if (v < 0)
		v = 0;
	return v > HTTP_CLIENT_RETRY_MAX ? HTTP_CLIENT_RETRY_MAX : (int)v;
}

/* One control character or more in untrusted text becomes one space. */
static void
http_client_clean_text(const char *in, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;

	for (i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch < 0x20 || ch == 0x7f) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		out[o++] = (char)ch;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* A transfer ended: report it, then free it. */
static void
http_client_finish(struct http_client *c, struct http_req *r, CURLcode res)
{
	struct http_response	 resp;
	char			 err[CURL_ERROR_SIZE + 256], text[201];
	long			 status = 0;

	memset(&resp, 0, sizeof(resp));
	(void)curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	resp.status = status;
	resp.retry_after_s = r->retry_after_s;
	resp.starttls_missing = r->smtp && res == CURLE_USE_SSL_FAILED;
	resp.body = r->resp.data != NULL ? r->resp.data : "";
	resp.body_len = r->resp.len;
	if (res != CURLE_OK) {
		snprintf(err, sizeof(err), "%s", r->errbuf[0] != '\0' ?
		    r->errbuf : curl_easy_strerror(res));
		resp.error = err;
	} else if (!r->smtp && (status < 200 || status > 299)) {
		http_client_clean_text(resp.body, resp.body_len, text,
		    sizeof(text));
		if (text[0] != '\0')
			snprintf(err, sizeof(err), "HTTP %ld: %s", status, text);
		else
			snprintf(err, sizeof(err), "HTTP %ld", status);
		resp.error = err;
	} else
		resp.ok = 1;

	LIST_REMOVE(r, entry);
	c->npending--;
	curl_multi_remove_handle(c->multi, r->easy);
	r->cb(&resp, r->arg);
	http_req_free(r);
}

/* Reap finished transfers. */
static void
http_client_check_done(struct http_client *c)
{
	CURLMsg		*msg;
	int		 left;
	struct http_req	*r;
	char		*priv;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		r = (struct http_req *)(void *)priv;
		if (r == NULL)
			continue;
		http_client_finish(c, r, msg->data.result);
	}
}

struct http_client *
http_client_create(struct event_base *base, char *err, size_t errlen)
{
	struct http_client	*c;
	CURLcode		 cc;

	if ((cc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init: %s",
		    curl_easy_strerror(cc));
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	LIST_INIT(&c->reqs);
	if ((c->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "curl_multi_init failed");
		goto fail;
	}
	if ((c->timer = evtimer_new(base, http_client_timer_cb, c)) == NULL) {
		snprintf(err, errlen, "evtimer_new failed");
		goto fail;
	}
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
	    http_client_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
	    http_client_multi_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
		snprintf(err, errlen, "curl_multi_setopt failed");
		goto fail;
	}
	return c;
fail:
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	free(c);
	curl_global_cleanup();
	return NULL;
}

void
http_client_free(struct http_client *c)
{
	struct http_req	*r;

	if (c == NULL)
		return;
	while ((r = LIST_FIRST(&c->reqs)) != NULL) {
		LIST_REMOVE(r, entry);
		curl_multi_remove_handle(c->multi, r->easy);
		http_req_free(r);
	}
	/* Sockets still watched are released through CURL_POLL_REMOVE. */
	curl_multi_cleanup(c->multi);
	event_free(c->timer);
	free(c);
	curl_global_cleanup();
}

size_t
http_client_pending(const struct http_client *c)
{
	return c->npending;
}

static int
http_client_is_smtp(const char *url)
{
	return strncasecmp(url, "smtp://", 7) == 0 ||
	    strncasecmp(url, "smtps://", 8) == 0;
}

static int
http_client_is_http(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 ||
	    strncasecmp(url, "https://", 8) == 0;
}

#define HTTP_SETOPT(opt, val) do {					\
	if ((cc = curl_easy_setopt(r->easy, opt, val)) != CURLE_OK) {	\
		snprintf(err, errlen, "curl option %s: %s", #opt,	\
		    curl_easy_strerror(cc));				\
		goto out;						\
	}								\
} while (0)

int
http_client_submit(struct http_client *c, const struct http_request *req,
    http_client_cb *cb, http_client_free_cb *free_cb, void *arg,
    char *err, size_t errlen)
{
	struct http_req		*r;
	struct curl_slist	*l;
	CURLcode		 cc;
	CURLMcode		 mc;
	size_t			 i;
	long			 timeout_ms;
	int			 rc = -1;

	if (req->url == NULL ||
	    (!http_client_is_smtp(req->url) && !http_client_is_http(req->url))) {
		snprintf(err, errlen, "unsupported URL scheme");
		return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	buf_init(&r->resp, HTTP_CLIENT_RESP_CAP + 1);
	r->smtp = http_client_is_smtp(req->url);
	r->url = xstrdup(req->url);
	r->body = xmalloc(req->body_len + 1);
	if (req->body_len > 0)
		memcpy(r->body, req->body, req->body_len);
	r->body[req->body_len] = '\0';
	r->body_len = req->body_len;
	if ((r->easy = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		goto out;
	}
	timeout_ms = (req->timeout_s > 0 ? req->timeout_s : 10) * 1000L;

	HTTP_SETOPT(CURLOPT_PRIVATE, (void *)r);
	HTTP_SETOPT(CURLOPT_URL, r->url);
	HTTP_SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
	HTTP_SETOPT(CURLOPT_NOSIGNAL, 1L);
	HTTP_SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
	HTTP_SETOPT(CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
	HTTP_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	HTTP_SETOPT(CURLOPT_WRITEFUNCTION, http_client_write_cb);
	HTTP_SETOPT(CURLOPT_WRITEDATA, (void *)r);
	HTTP_SETOPT(CURLOPT_HEADERFUNCTION, http_client_header_cb);
	HTTP_SETOPT(CURLOPT_HEADERDATA, (void *)r);
	if (req->ca_file != NULL) {
		r->ca_file = xstrdup(req->ca_file);
		HTTP_SETOPT(CURLOPT_CAINFO, r->ca_file);
	}
	if (req->username != NULL) {
		r->username = xstrdup(req->username);
		HTTP_SETOPT(CURLOPT_USERNAME, r->username);
	}
	if (req->password != NULL) {
		r->password = xstrdup(req->password);
		HTTP_SETOPT(CURLOPT_PASSWORD, r->password);
	}

	if (r->smtp) {
		if (req->mail_from == NULL || req->nrcpt == 0) {
			snprintf(err, errlen, "mail needs a sender and a recipient");
			goto out;
		}
		r->mail_from = xasprintf("<%s>", req->mail_from);
		for (i = 0; i < req->nrcpt; i++) {
			char *a = xasprintf("<%s>", req->rcpt[i]);

			l = curl_slist_append(r->rcpt, a);
			free(a);
			if (l == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			r->rcpt = l;
		}
		HTTP_SETOPT(CURLOPT_MAIL_FROM, r->mail_from);
		HTTP_SETOPT(CURLOPT_MAIL_RCPT, r->rcpt);
		HTTP_SETOPT(CURLOPT_UPLOAD, 1L);
		HTTP_SETOPT(CURLOPT_READFUNCTION, http_client_read_cb);
		HTTP_SETOPT(CURLOPT_READDATA, (void *)r);
		HTTP_SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		/* smtps:// is TLS from the first byte; on smtp:// STARTTLS is
		 * used when offered, and required when asked for. */
		HTTP_SETOPT(CURLOPT_USE_SSL, req->require_tls ?
		    (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
	} else {
		for (i = 0; i < req->nheaders; i++) {
			if ((l = curl_slist_append(r->headers,
			    req->headers[i])) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			r->headers = l;
		}
		/* No "Expect: 100-continue" round trip for small alerts. */
		if ((l = curl_slist_append(r->headers, "Expect:")) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		r->headers = l;
		HTTP_SETOPT(CURLOPT_HTTPHEADER, r->headers);
		HTTP_SETOPT(CURLOPT_USERAGENT, "gitopsd/" GITOPSD_VERSION);
		if (req->method != NULL && strcmp(req->method, "GET") == 0)
			HTTP_SETOPT(CURLOPT_HTTPGET, 1L);
		else if (req->method == NULL && req->body_len == 0 &&
		    req->body == NULL)
			HTTP_SETOPT(CURLOPT_HTTPGET, 1L);
		else {
			HTTP_SETOPT(CURLOPT_POSTFIELDS, r->body);
			HTTP_SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)r->body_len);
			if (req->method != NULL &&
			    strcmp(req->method, "POST") != 0) {
				r->method = xstrdup(req->method);
				HTTP_SETOPT(CURLOPT_CUSTOMREQUEST, r->method);
			}
		}
	}

	if ((mc = curl_multi_add_handle(c->multi, r->easy)) != CURLM_OK) {
		snprintf(err, errlen, "curl_multi_add_handle: %s",
		    curl_multi_strerror(mc));
		goto out;
	}
	r->cb = cb;
	r->free_cb = free_cb;
	r->arg = arg;
	LIST_INSERT_HEAD(&c->reqs, r, entry);
	c->npending++;
	rc = 0;
out:
	if (rc == -1)
		http_req_free(r);	/* cb/free_cb not set yet: arg untouched */
	return rc;
}
