/*
 * server.c: routes of the public listener (webhooks, /healthz) and the
 * admin listener (/readyz, /metrics, /api/v1), per-source rate limits,
 * and one log line per request.
 *
 * A webhook is answered only from the queue's commit callback: 202 means
 * the event and its jobs are on disk.  Each pending request holds a
 * reference on the configuration it was parsed under, because the queue
 * items borrow strings from it and a SIGHUP may swap it meanwhile.
 */
#include <sys/resource.h>

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "admin_guard.h"
#include "config.h"
#include "handler.h"
#include "http.h"
#include "ingest.h"
#include "job.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "queue.h"
#include "server.h"
#include "util.h"
#include "web.h"

/* A token bucket: per source, or per source and peer address. */
struct server_bucket {
	char			*key;
	double			 tokens;
	double			 last;
	double			 rps;		/* as last taken */
	double			 burst;
	struct server_bucket	*next;
};

struct server {
	struct event_base	*base;
	struct config		*cfg;
	struct queue		*queue;
	struct poller		*poller;	/* NULL while draining */
	struct http_server	*pub;
	struct http_server	*admin;
	struct live		*live;		/* GET /api/v1/stream */
	int			 draining;
	int			 pending;
	struct server_bucket	*buckets;	/* verified, per source */
	struct server_bucket	*unverified;	/* per source and peer */
};

struct server_pending {
	struct server		*srv;
	struct http_request	*req;
	struct config		*cfg;
	struct ingest_result	 res;
};

/*
 * Descriptors kept out of the listeners' reach: the store (database, WAL,
 * shared memory, the admin read connection), the event loop, the log,
 * and per worker a clone's pack files, a push or a cluster connection and
 * an alert's connection.  A listener that may take them all turns the
 * next clone or store open into EMFILE.
 */
#define SERVER_FD_RESERVE		64
#define SERVER_FD_RESERVE_PER_WORKER	16
/* The admin listener serves operators and a scraper, not senders. */
#define SERVER_ADMIN_MAX_CONNECTIONS	64
/* Below this the public listener would serve nothing useful. */
#define SERVER_MIN_CONNECTIONS		8

/*
 * The public listener's max_connections within RLIMIT_NOFILE: the soft
 * limit (main raised it to the hard one) less the reserve and what the
 * admin listener and the public listener's 503 answers may hold.  nofile
 * and reserve are set for the log line; nofile is 0 without a limit.
 */
static int
server_max_connections(const struct config *cfg, long *nofile, long *reserve)
{
	struct rlimit	 rl;
	long		 avail;
	int		 max = cfg->server.max_connections, admin;

	admin = max < SERVER_ADMIN_MAX_CONNECTIONS ? max :
	    SERVER_ADMIN_MAX_CONNECTIONS;
	*reserve = SERVER_FD_RESERVE +
	    SERVER_FD_RESERVE_PER_WORKER * (long)cfg->queue.workers;
	*nofile = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return max;
	*nofile = rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
	avail = *nofile - *reserve - http_listener_fds(admin) -
	    http_listener_fds(0);
	if (avail < SERVER_MIN_CONNECTIONS)
		avail = SERVER_MIN_CONNECTIONS;
	return avail < max ? (int)avail : max;
}

static void
server_limits(const struct config *cfg, int admin, struct http_limits *l)
{
	long	 nofile, reserve;

	l->max_body_bytes = cfg->server.max_body_bytes;
	l->max_header_bytes = cfg->server.max_header_bytes;
	l->read_timeout_s = cfg->server.read_timeout_s;
	l->write_timeout_s = cfg->server.write_timeout_s;
	if (admin) {
		l->name = "admin";
		l->max_connections = cfg->server.max_connections <
		    SERVER_ADMIN_MAX_CONNECTIONS ? cfg->server.max_connections :
		    SERVER_ADMIN_MAX_CONNECTIONS;
		/* Operators share one loopback address. */
		l->max_connections_per_client = 0;
		/* The admin API answers small requests. */
		if (l->max_body_bytes > 65536)
			l->max_body_bytes = 65536;
		return;
	}
	l->name = "public";
	l->max_connections = server_max_connections(cfg, &nofile, &reserve);
	l->max_connections_per_client = cfg->server.max_connections_per_client;
}

/* The limits in effect, once at start and at each reload. */
static void
server_log_limits(const struct config *cfg)
{
	char	 eff[24], conf[24], pc[24], nf[24], rs[24];
	long	 nofile, reserve;
	int	 max = server_max_connections(cfg, &nofile, &reserve);

	snprintf(eff, sizeof(eff), "%d", max);
	snprintf(conf, sizeof(conf), "%d", cfg->server.max_connections);
	snprintf(pc, sizeof(pc), "%d", cfg->server.max_connections_per_client);
	snprintf(nf, sizeof(nf), "%ld", nofile);
	snprintf(rs, sizeof(rs), "%ld", reserve);
	log_kv(max < cfg->server.max_connections ? LOG_LEVEL_WARN :
	    LOG_LEVEL_INFO, max < cfg->server.max_connections ?
	    "max_connections lowered to fit the descriptor limit" :
	    "connection limits", "max_connections", eff, "configured", conf,
	    "max_connections_per_client", pc, "nofile", nofile > 0 ? nf :
	    "unlimited", "fd_reserve", rs, NULL);
}

static void
server_count(const char *source, int status)
{
	char	 labels[256], esc[160];

	metrics_label_escape(source != NULL ? source : "", esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "source=\"%s\",code=\"%d\"", esc,
	    status);
	metrics_counter_add("gitopsd_webhooks_total", labels, 1);
}

static void
server_log(const struct http_request *req, const char *source,
    const char *delivery, int status, const char *cause)
{
	const struct http_request_info *ri = http_request_info(req);
	const char	*path = ri->path, *slash;
	char		 st[16], ms[32], *redacted = NULL;

	/* /hooks/<name>/<token>: the token is a secret; never log it. */
	if (strncmp(path, "/hooks/", 7) == 0 &&
	    (slash = strchr(path + 7, '/')) != NULL) {
		redacted = xasprintf("%.*s/<token>", (int)(slash - path), path);
		path = redacted;
	}
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ms, sizeof(ms), "%.2f", (util_mono_s() - ri->start) * 1000.0);
	log_kv(status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "request",
	    "peer", ri->peer, "method", ri->method, "path", path,
	    "source", source, "delivery", delivery, "status", st,
	    "ms", ms, "cause", cause, NULL);
	free(redacted);
}

/*
 * Peer buckets kept per server.  Past this many, requests from further
 * addresses share one bucket per source: an address spray then costs a
 * bounded scan, and only the spray's own requests share the overflow.
 */
#define SERVER_PEER_BUCKETS_MAX	4096

/*
 * The bucket of key in list, or NULL.  Buckets idle long enough to be
 * full again are dropped on the way (a new one starts full: the same),
 * so a list keyed by peer address does not keep every address seen.
 * *n counts the buckets kept.
 */
static struct server_bucket *
server_bucket_find(struct server_bucket **list, const char *key, double now,
    size_t *n)
{
	struct server_bucket	*b, *prev = NULL, *next;

	*n = 0;
	for (b = *list; b != NULL; b = next) {
		next = b->next;
		if (strcmp(b->key, key) == 0)
			return b;
		if (b->tokens + (now - b->last) * b->rps >= b->burst + 1) {
			if (prev != NULL)
				prev->next = next;
			else
				*list = next;
			free(b->key);
			free(b);
			continue;
		}
		(*n)++;
		prev = b;
	}
	return NULL;
}

/*
 * Take a token from the bucket of key in list: rate_limit.rps tokens a
 * second up to burst.  Returns 0 if allowed, else the seconds to wait.
 * max: buckets beyond which new keys share overflow_key's (0: no cap).
 */
static int
server_take(struct server_bucket **list, const char *key,
    const char *overflow_key, size_t max, const struct config_source *src)
{
	struct server_bucket	*b;
	double			 now = util_mono_s(), rps = src->rate_limit.rps;
	double			 burst;
	size_t			 n;

	burst = src->rate_limit.burst > 0 ? src->rate_limit.burst :
	    (rps < 1 ? 1 : rps);
	if ((b = server_bucket_find(list, key, now, &n)) == NULL && max > 0 &&
	    n >= max) {
		key = overflow_key;
		b = server_bucket_find(list, key, now, &n);
	}
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->key = xstrdup(key);
		b->tokens = burst;
		b->last = now;
		b->next = *list;
		*list = b;
	}
	/* A reload may change the rate: the bucket follows. */
	b->rps = rps;
	b->burst = burst;
	b->tokens += (now - b->last) * rps;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return (int)ceil((1 - b->tokens) / rps);
}

/*
 * The source's rate limit, taken once the request is verified or not:
 * verified deliveries share the source's bucket; the others draw from a
 * bucket of the same size per peer address, so a flood of unsigned or
 * wrongly signed requests runs out on its own and never takes the
 * tokens of the sender that holds the secret.  0, or seconds to wait.
 */
static int
server_rate_limit(struct server *srv, const struct config_source *src,
    int verified, const char *peer)
{
	const char	*colon;
	char		*key, *overflow;
	int		 wait;

	if (src->rate_limit.rps <= 0)
		return 0;
	if (verified)
		return server_take(&srv->buckets, src->name, NULL, 0, src);
	/* "host:port" or "[v6]:port": the port changes per connection. */
	colon = strrchr(peer, ':');
	key = xasprintf("%s %.*s", src->name, colon != NULL ?
	    (int)(colon - peer) : (int)strlen(peer), peer);
	overflow = xasprintf("%s *", src->name);
	wait = server_take(&srv->unverified, key, overflow,
	    SERVER_PEER_BUCKETS_MAX, src);
	free(overflow);
	free(key);
	return wait;
}

static void
server_pending_free(struct server_pending *p)
{
	ingest_result_free(&p->res);
	config_unref(p->cfg);
	free(p);
}

/*
 * A push for a head that a poll (or an earlier webhook) already handled
 * adds nothing: its sync jobs for polled repos at that head are dropped
 * here, and an item left without jobs goes.  Returns the items left.
 */
static size_t
server_drop_handled(struct server *srv, struct ingest_result *res)
{
	struct queue_item	*it;
	struct job_spec		*s;
	size_t			 i, j, k, m = 0;

	for (i = 0; i < res->nitems; i++) {
		it = &res->items[i];
		s = res->specs[i];
		if (it->event->kind == HOOK_EVENT_PUSH) {
			for (j = k = 0; j < it->njobs; j++) {
				if (s[j].kind == JOB_SYNC &&
				    poller_repo_handled(srv->poller, s[j].repo,
				    s[j].revision))
					continue;
				s[k++] = s[j];
			}
			it->njobs = k;
		}
		if (it->njobs == 0) {
			free(s);
			continue;
		}
		res->items[m] = *it;
		res->specs[m] = s;
		m++;
	}
	res->nitems = m;
	return m;
}

/* The heads of polled repos whose syncs a webhook's items stored. */
static void
server_note_heads(struct server *srv, const struct ingest_result *res,
    const struct queue_outcome *out, size_t n)
{
	const struct queue_item	*it;
	size_t			 i, j;

	for (i = 0; i < n && i < res->nitems; i++) {
		it = &res->items[i];
		if (out[i].status != QUEUE_OK ||
		    it->event->kind != HOOK_EVENT_PUSH)
			continue;
		for (j = 0; j < it->njobs; j++)
			if (it->jobs[j].kind == JOB_SYNC)
				poller_repo_note(srv->poller, it->jobs[j].repo,
				    it->jobs[j].revision);
	}
}

static void
server_submit_cb(const struct queue_outcome *out, size_t n, void *arg)
{
	struct server_pending	*p = arg;
	struct server		*srv = p->srv;
	const char		*retry[] = { "Retry-After: 5", NULL };
	const char		*src = p->res.source->name;
	struct buf		 b;
	char			*body, *esc;
	size_t			 i, j, nok = 0, ndup = 0, dlen, blen;
	char			 num[32];
	int			 full = 0, error = 0, status, first, k;

	srv->pending--;
	for (i = 0; i < n; i++) {
		switch (out[i].status) {
		case QUEUE_OK:
			nok++;
			break;
		case QUEUE_DUPLICATE:
			ndup++;
			break;
		case QUEUE_FULL:
			full = 1;
			break;
		case QUEUE_ERROR:
			error = 1;
			break;
		}
	}
	if (full || error) {
		status = 503;
		server_log(p->req, src, p->res.delivery, status,
		    full ? "queue full" : "store error");
		http_reply_error(p->req, status, full ? "queue full" :
		    "state store unavailable", retry);
		goto out;
	}
	server_note_heads(srv, &p->res, out, n);
	/* The answer every accepted webhook gets, built without a tree. */
	dlen = strlen(p->res.delivery);
	esc = xmalloc(dlen * 6 + 1);
	log_escape(p->res.delivery, dlen, esc, dlen * 6 + 1);
	buf_init(&b, 0);
	buf_addstr(&b, "{\"delivery\":\"");
	buf_addstr(&b, esc);
	buf_addstr(&b, "\"");
	free(esc);
	if (nok == 0) {
		status = 200;
		buf_addstr(&b, ",\"duplicate\":true}");
	} else {
		status = 202;
		buf_addstr(&b, ",\"jobs\":[");
		for (i = 0, first = 1; i < n; i++)
			for (j = 0; out[i].status == QUEUE_OK &&
			    j < out[i].njob_ids; j++, first = 0) {
				k = snprintf(num, sizeof(num), "%s%" PRId64,
				    first ? "" : ",", out[i].job_ids[j]);
				buf_add(&b, num, (size_t)k);
			}
		buf_addstr(&b, "]");
		if (ndup > 0)
			buf_printf(&b, ",\"duplicates\":%zu", ndup);
		buf_addstr(&b, "}");
	}
	body = b.data;
	blen = b.len;
	/* Log first: the reply frees the request. */
	server_log(p->req, src, p->res.delivery, status,
	    status == 200 ? "duplicate" : "accepted");
	http_reply(p->req, status, "application/json", NULL, body, blen);
	buf_free(&b);
out:
	server_count(src, status);
	server_pending_free(p);
}

static void
server_hook(struct server *srv, struct http_request *req, const char *rest)
{
	const struct http_request_info	*ri = http_request_info(req);
	struct server_pending		*p;
	struct hook_request		 hr;
	const char			*retry[2] = { NULL, NULL };
	char				 ra[64];
	int				 wait;

	if (srv->draining) {
		retry[0] = "Retry-After: 5";
		server_log(req, NULL, NULL, 503, "draining");
		http_reply_error(req, 503, "shutting down", retry);
		return;
	}
	memset(&hr, 0, sizeof(hr));
	hr.method = ri->method;
	hr.query = ri->query;
	hr.headers = ri->headers;
	hr.nheaders = ri->nheaders;
	hr.body = ri->body;
	hr.body_len = ri->body_len;

	p = xcalloc(1, sizeof(*p));
	p->srv = srv;
	p->req = req;
	p->cfg = config_ref(srv->cfg);
	ingest_process(p->cfg, rest, &hr, &p->res);
	if (p->res.source != NULL && (wait = server_rate_limit(srv,
	    p->res.source, p->res.verified, ri->peer)) > 0) {
		snprintf(ra, sizeof(ra), "Retry-After: %d", wait);
		retry[0] = ra;
		server_log(req, p->res.source->name, p->res.delivery, 429,
		    p->res.verified ? "rate limit" :
		    "rate limit of unverified requests");
		http_reply_error(req, 429, "rate limit exceeded", retry);
		server_count(p->res.source->name, 429);
		server_pending_free(p);
		return;
	}
	if (p->res.status != 0) {
		const char *allow[] = { "Allow: POST", NULL };

		server_log(req, p->res.source ? p->res.source->name : NULL,
		    p->res.delivery, p->res.status, p->res.cause);
		http_reply(req, p->res.status, "application/json",
		    p->res.status == 405 ? allow : NULL, p->res.body,
		    strlen(p->res.body));
		if (p->res.source != NULL)
			server_count(p->res.source->name, p->res.status);
		server_pending_free(p);
		return;
	}
	if (server_drop_handled(srv, &p->res) == 0) {
		static const char handled[] = "{\"ignored\":\"head already "
		    "handled (a poll or an earlier push queued its syncs)\"}";
		const char *src = p->res.source != NULL ?
		    p->res.source->name : NULL;

		server_log(req, src, p->res.delivery, 200,
		    "head already handled");
		http_reply(req, 200, "application/json", NULL, handled,
		    sizeof(handled) - 1);
		if (src != NULL)
			server_count(src, 200);
		server_pending_free(p);
		return;
	}
	srv->pending++;
	queue_submit(srv->queue, p->res.items, p->res.nitems,
	    server_submit_cb, p);
}

static void
server_public_cb(struct http_request *req, void *arg)
{
	struct server			*srv = arg;
	const struct http_request_info	*ri = http_request_info(req);
	static const char		 ok[] = "{\"status\":\"ok\"}";

	if (strncmp(ri->path, "/hooks/", 7) == 0) {
		server_hook(srv, req, ri->path + 7);
		return;
	}
	if (strcmp(ri->path, "/healthz") == 0) {
		if (strcmp(ri->method, "GET") != 0 &&
		    strcmp(ri->method, "HEAD") != 0) {
			http_reply_error(req, 405, "method not allowed", NULL);
			return;
		}
		http_reply(req, 200, "application/json", NULL, ok,
		    sizeof(ok) - 1);
		return;
	}
	server_log(req, NULL, NULL, 404, "no route");
	http_reply_error(req, 404, "not found", NULL);
}

/* Constant-time bearer token check for /api/v1. */
static int
server_admin_authorized(const struct server *srv,
    const struct http_request_info *ri)
{
	const char	*tok = srv->cfg->admin.token, *auth = NULL;
	size_t		 i;

	if (tok == NULL)
		return 1;
	for (i = 0; i < ri->nheaders; i++)
		if (strcasecmp(ri->headers[i].name, "Authorization") == 0)
			auth = ri->headers[i].value;
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	return util_ct_equal(auth, strlen(auth), tok, strlen(tok));
}

static void
server_admin_cb(struct http_request *req, void *arg)
{
	struct server			*srv = arg;
	const struct http_request_info	*ri = http_request_info(req);
	struct buf			 body;
	char				 why[128];
	int				 status;

	if (strcmp(ri->path, "/readyz") == 0) {
		if (srv->draining || !queue_ready(srv->queue))
			http_reply_error(req, 503, srv->draining ?
			    "draining" : "not ready", NULL);
		else
			http_reply(req, 200, "application/json", NULL,
			    "{\"status\":\"ready\"}", 18);
		return;
	}
	if (strcmp(ri->path, "/healthz") == 0) {
		http_reply(req, 200, "application/json", NULL,
		    "{\"status\":\"ok\"}", 15);
		return;
	}
	/* The probes above tell nothing; metrics and the API check. */
	if ((status = admin_guard_check(&srv->cfg->admin,
	    http_server_port(srv->admin), ri, why, sizeof(why))) != 0) {
		server_log(req, NULL, NULL, status, status == 421 ?
		    "admin host" : "admin cross-site");
		http_reply_error(req, status, why, NULL);
		return;
	}
	/* The status page; its data comes from /api/v1 like anyone's. */
	if (web_serve(req))
		return;
	if (strcmp(ri->path, "/metrics") == 0) {
		buf_init(&body, 0);
		metrics_render(&body);
		http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
		    NULL, body.data != NULL ? body.data : "", body.len);
		buf_free(&body);
		return;
	}
	if (strncmp(ri->path, "/api/v1/", 8) == 0 ||
	    strcmp(ri->path, "/api/v1") == 0) {
		if (!server_admin_authorized(srv, ri)) {
			const char *hdr[] = { "WWW-Authenticate: Bearer", NULL };

			server_log(req, NULL, NULL, 401, "admin token");
			http_reply_error(req, 401, "missing or wrong token", hdr);
			return;
		}
		if (strcmp(ri->path, "/api/v1/stream") == 0) {
			live_open(srv->live, req);
			return;
		}
		buf_init(&body, 0);
		status = admin_api(srv->queue, srv->poller, ri->method,
		    ri->path, ri->query, &body);
		if (status == 0)
			http_reply_error(req, 404, "not found", NULL);
		else
			http_reply(req, status, "application/json", NULL,
			    body.data != NULL ? body.data : "", body.len);
		buf_free(&body);
		return;
	}
	http_reply_error(req, 404, "not found", NULL);
}

/*
 * Sockets passed by systemd (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES as in
 * sd_listen_fds(3)): the one named "public" (or the first) serves
 * webhooks, "admin" (or the second) the admin API.  Read once at start and
 * removed from the environment so render commands do not see them.
 */
static int	server_fd_public = -1, server_fd_admin = -1;

static void
server_inherit_fds(void)
{
	static int	 done;
	const char	*pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char	*names = getenv("LISTEN_FDNAMES");
	char		*copy, *tok, *save = NULL, *end;
	long		 n, p;
	int		 i;

	if (done)
		return;
	done = 1;
	if (pid == NULL || nfds == NULL)
		goto out;
	p = strtol(pid, &end, 10);
	if (*end != '\0' || p != (long)getpid())
		goto out;
	n = strtol(nfds, &end, 10);
	if (*end != '\0' || n <= 0 || n > 16)
		goto out;
	if (names != NULL) {
		copy = xstrdup(names);
		for (i = 0, tok = strtok_r(copy, ":", &save); tok != NULL &&
		    i < n; i++, tok = strtok_r(NULL, ":", &save)) {
			if (strcmp(tok, "public") == 0)
				server_fd_public = 3 + i;
			else if (strcmp(tok, "admin") == 0)
				server_fd_admin = 3 + i;
		}
		free(copy);
	}
	if (server_fd_public == -1 && server_fd_admin == -1) {
		server_fd_public = 3;
		if (n > 1)
			server_fd_admin = 4;
	}
	log_info("socket activation: public fd %d, admin fd %d",
	    server_fd_public, server_fd_admin);
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

static struct http_server *
server_listen(struct server *srv, const struct config *cfg, int admin,
    char *err, size_t errlen)
{
	struct http_limits	 l;
	int			 fd;

	server_limits(cfg, admin, &l);
	if (admin) {
		fd = server_fd_admin;
		server_fd_admin = -1;	/* used once; a reload binds anew */
		return http_server_new_fd(srv->base, fd, cfg->admin.listen.host,
		    cfg->admin.listen.port, &l, NULL, NULL, server_admin_cb,
		    srv, err, errlen);
	}
	fd = server_fd_public;
	server_fd_public = -1;
	return http_server_new_fd(srv->base, fd, cfg->server.listen.host,
	    cfg->server.listen.port, &l, cfg->server.tls_cert_file,
	    cfg->server.tls_key_file, server_public_cb, srv, err, errlen);
}

struct server *
server_new(struct event_base *base, struct config *cfg, struct queue *q,
    char *err, size_t errlen)
{
	struct server	*srv;

	metrics_describe("gitopsd_webhooks_total", "counter",
	    "Webhook requests by source and HTTP status.");
	server_inherit_fds();
	srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->queue = q;
	srv->cfg = config_ref(cfg);
	if ((srv->pub = server_listen(srv, cfg, 0, err, errlen)) == NULL)
		goto fail;
	if ((srv->admin = server_listen(srv, cfg, 1, err, errlen)) == NULL)
		goto fail;
	if ((srv->live = live_new(base, q, err, errlen)) == NULL)
		goto fail;
	server_log_limits(cfg);
	return srv;
fail:
	server_free(srv);
	return NULL;
}

static int
server_same_listen(const struct config_listen *a, const struct config_listen *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int
server_reconfigure(struct server *srv, struct config *cfg, char *err,
    size_t errlen)
{
	struct http_server	*np = NULL, *na = NULL;
	struct http_limits	 l;
	int			 tls_changed;

	tls_changed = (cfg->server.tls_cert_file == NULL) !=
	    (srv->cfg->server.tls_cert_file == NULL) ||
	    (cfg->server.tls_cert_file != NULL &&
	    (strcmp(cfg->server.tls_cert_file,
	    srv->cfg->server.tls_cert_file) != 0 ||
	    strcmp(cfg->server.tls_key_file,
	    srv->cfg->server.tls_key_file) != 0));
	if (!server_same_listen(&cfg->server.listen, &srv->cfg->server.listen) ||
	    tls_changed) {
		if ((np = server_listen(srv, cfg, 0, err, errlen)) == NULL)
			return -1;
	}
	if (!server_same_listen(&cfg->admin.listen, &srv->cfg->admin.listen)) {
		if ((na = server_listen(srv, cfg, 1, err, errlen)) == NULL) {
			http_server_free(np);
			return -1;
		}
	}
	if (np != NULL) {
		/* Requests in flight on the old listener still get answers. */
		http_server_stop(srv->pub);
		http_server_free(srv->pub);
		srv->pub = np;
	} else {
		server_limits(cfg, 0, &l);
		http_server_set_limits(srv->pub, &l);
	}
	if (na != NULL) {
		http_server_free(srv->admin);
		srv->admin = na;
	} else {
		server_limits(cfg, 1, &l);
		http_server_set_limits(srv->admin, &l);
	}
	server_log_limits(cfg);
	config_unref(srv->cfg);
	srv->cfg = config_ref(cfg);
	return 0;
}

void
server_drain(struct server *srv)
{
	srv->draining = 1;
	live_drain(srv->live);
	if (srv->pub != NULL)
		http_server_stop(srv->pub);
}

int
server_pending(const struct server *srv)
{
	return srv->pending;
}

int
server_public_port(const struct server *srv)
{
	return http_server_port(srv->pub);
}

int
server_admin_port(const struct server *srv)
{
	return http_server_port(srv->admin);
}

void
server_free(struct server *srv)
{
	struct server_bucket	*b, *next;

	if (srv == NULL)
		return;
	live_free(srv->live);
	http_server_free(srv->pub);
	http_server_free(srv->admin);
	for (b = srv->buckets; b != NULL; b = next) {
		next = b->next;
		free(b->key);
		free(b);
	}
	for (b = srv->unverified; b != NULL; b = next) {
		next = b->next;
		free(b->key);
		free(b);
	}
	if (srv->cfg != NULL)
		config_unref(srv->cfg);
	free(srv);
}

void
server_set_poller(struct server *srv, struct poller *p)
{
	srv->poller = p;
}
