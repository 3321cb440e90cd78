/*
 * runner.c: runs notify jobs on the event loop.
 *
 * DESIGN
 * start() parses the job's params (what notify_plan stored), finds the
 * notifier by name in the current config, renders the request with the
 * notifier type's render(), copies everything it needs, and submits it to
 * the loop's http_client; the config is not used after start() returns.
 * Completion (http_client callback, on the loop) turns the answer into a
 * job_result and calls done exactly once.  Errors found before sending
 * (notifier gone, render failed) are reported through a zero-delay loop
 * event, so done never runs inside start().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "config.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "notifier.h"
#include "notify_runner.h"
#include "util.h"

struct notify_delivery {
	struct job		*job;
	job_done_cb		*done;
	void			*arg;
	char			*notifier;
	const struct notifier	*type;		/* static: outlives reloads */
	int			 smtp;
	int			 auth_needs_tls;	/* see notify_request */
	int			 reported;
	int			 variant;	/* the request's */
	char			*url;		/* for refused(); else NULL */
	struct job_result	 res;
};

static struct http_client	*notify_client;
static struct event_base	*notify_client_base;

static void
notify_runner_metrics(void)
{
	metrics_describe("gitopsd_notifications_total", "counter",
	    "Alert delivery attempts by notifier and result "
	    "(sent, retry, rejected)");
}

static struct http_client *
notify_runner_client(struct event_base *base, char *err, size_t errlen)
{
	if (notify_client != NULL && notify_client_base == base)
		return notify_client;
	if (notify_client != NULL) {
		/* A new loop (tests): the old one's transfers cannot finish. */
		http_client_free(notify_client);
		notify_client = NULL;
	}
	if ((notify_client = http_client_create(base, err, errlen)) == NULL)
		return NULL;
	notify_client_base = base;
	notify_runner_metrics();
	return notify_client;
}

void
notify_runner_shutdown(void)
{
	http_client_free(notify_client);
	notify_client = NULL;
	notify_client_base = NULL;
}

size_t
notify_runner_pending(void)
{
	return notify_client != NULL ? http_client_pending(notify_client) : 0;
}

static void
notify_count(const char *notifier, const char *result)
{
	char	 esc[256], label[320];

	metrics_label_escape(notifier != NULL ? notifier : "", esc, sizeof(esc));
	snprintf(label, sizeof(label), "notifier=\"%s\",result=\"%s\"", esc,
	    result);
	metrics_counter_add("gitopsd_notifications_total", label, 1);
}

/* Hand the result to the queue; the delivery is freed by the caller. */
static void
notify_report(struct notify_delivery *d)
{
	char	 esc[512];

	if (d->res.ok)
		log_info("job %" PRId64 " notify %s: sent", d->job->id,
		    d->notifier != NULL ? d->notifier : "-");
	else {
		log_escape(d->res.error != NULL ? d->res.error : "", strlen(
		    d->res.error != NULL ? d->res.error : ""), esc, sizeof(esc));
		log_warnx("job %" PRId64 " notify %s: %s%s", d->job->id,
		    d->notifier != NULL ? d->notifier : "-", esc,
		    d->res.permanent ? " (permanent)" : "");
	}
	d->reported = 1;
	d->done(d->job, &d->res, d->arg);
	job_result_clear(&d->res);
}

static void
notify_delivery_free(struct notify_delivery *d)
{
	job_result_clear(&d->res);
	free(d->notifier);
	free(d->url);
	free(d);
}

/* A failure found before sending, reported from the loop. */
static void
notify_runner_deferred_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct notify_delivery	*d = arg;

	(void)fd;
	(void)kind;
	notify_count(d->notifier, "rejected");
	notify_report(d);
	notify_delivery_free(d);
}

/*
 * Which failures a retry cannot fix: HTTP 4xx other than 408 (timeout),
 * 425 and 429 (rate limit), and 5xx SMTP replies (mailbox unknown, relay
 * refused, login rejected).
 */
static int
notify_is_permanent(const struct notify_delivery *d,
    const struct http_response *resp)
{
	if (d->smtp)
		return resp->status >= 500 && resp->status <= 599;
	if (resp->status >= 400 && resp->status <= 499)
		return resp->status != 408 && resp->status != 425 &&
		    resp->status != 429;
	return 0;
}

static void
notify_runner_http_cb(const struct http_response *resp, void *arg)
{
	struct notify_delivery	*d = arg;
	cJSON			*o;
	char			*s;

	memset(&d->res, 0, sizeof(d->res));
	if (resp->ok) {
		d->res.ok = 1;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "notifier", d->notifier);
		cJSON_AddNumberToObject(o, "status", (double)resp->status);
		if ((s = cJSON_PrintUnformatted(o)) != NULL) {
			d->res.detail = xstrdup(s);
			cJSON_free(s);
		}
		cJSON_Delete(o);
		notify_count(d->notifier, "sent");
	} else if (d->auth_needs_tls && resp->starttls_missing) {
		job_result_fail(&d->res, JOB_ERR_NOTIFY, 0, "%s: the SMTP "
		    "server offers no STARTTLS: refusing to send the password "
		    "in clear (smtps://, a server with STARTTLS, or "
		    "allow_plaintext_auth: true)", d->notifier);
		notify_count(d->notifier, "retry");
	} else if (d->type != NULL && d->type->refused != NULL &&
	    resp->status >= 400) {
		int	 permanent = notify_is_permanent(d, resp);
		int	 wait = resp->retry_after_s;
		char	 text[1024];

		d->type->refused(d->variant, d->url, resp->status, resp->body,
		    &permanent, &wait, text, sizeof(text));
		job_result_fail(&d->res, JOB_ERR_NOTIFY, permanent, "%s: %s",
		    d->notifier, text);
		d->res.retry_after_s = wait;
		notify_count(d->notifier, permanent ? "rejected" : "retry");
	} else {
		job_result_fail(&d->res, JOB_ERR_NOTIFY,
		    notify_is_permanent(d, resp), "%s: %s", d->notifier,
		    resp->error != NULL ? resp->error : "failed");
		d->res.retry_after_s = resp->retry_after_s;
		if (d->type != NULL && d->type->retry_after != NULL &&
		    resp->body != NULL) {
			int hint = d->type->retry_after(resp->status,
			    resp->body);

			if (hint > 0)
				d->res.retry_after_s = hint;
		}
		notify_count(d->notifier, d->res.permanent ? "rejected" :
		    "retry");
	}
	notify_report(d);
}

/* After the callback, or on cancel (client freed): release. */
static void
notify_runner_free_cb(void *arg)
{
	notify_delivery_free(arg);
}

static const char *
notify_param(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
notify_param_num(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Render and submit; -1 with res set (and err) when nothing was sent. */
static int
notify_runner_send(const struct config *cfg, struct event_base *base,
    struct notify_delivery *d, char *err, size_t errlen)
{
	const struct config_notifier	*n = NULL;
	const struct notifier		*nt;
	struct notify_alert		 a;
	struct notify_request		 req;
	struct http_request		 hr;
	struct http_client		*c;
	cJSON				*p;
	const char			*name;
	size_t				 i;
	int				 rc = -1;

	memset(&req, 0, sizeof(req));
	if (d->job->params == NULL ||
	    (p = cJSON_Parse(d->job->params)) == NULL) {
		snprintf(err, errlen, "notify job without valid params");
		return -1;
	}
	if ((name = notify_param(p, "notifier")) == NULL) {
		snprintf(err, errlen, "notify job names no notifier");
		goto out;
	}
	d->notifier = xstrdup(name);
	for (i = 0; i < cfg->nnotifiers; i++)
		if (strcmp(cfg->notifiers[i].name, name) == 0)
			n = &cfg->notifiers[i];
	if (n == NULL) {
		snprintf(err, errlen, "notifier %s is no longer configured",
		    name);
		goto out;
	}
	if ((nt = notifier_find(n->type)) == NULL) {
		snprintf(err, errlen, "notifier %s: unknown type %s", name,
		    n->type);
		goto out;
	}
	d->type = nt;
	memset(&a, 0, sizeof(a));
	a.event = notify_param(p, "event");
	if (a.event == NULL)
		a.event = "job.failed";
	a.app = notify_param(p, "app");
	a.cluster = notify_param(p, "cluster");
	a.target = (int)notify_param_num(p, "target");
	a.job_id = (int64_t)notify_param_num(p, "job");
	a.kind = notify_param(p, "kind");
	a.reason = notify_param(p, "reason");
	a.reason_kind = notify_param(p, "reason_kind");
	a.object = notify_param(p, "object");
	a.revision = notify_param(p, "revision");
	a.image = notify_param(p, "image");
	a.tag = notify_param(p, "tag");
	a.delivery = notify_param(p, "delivery");
	a.attempts = (int)notify_param_num(p, "attempts");
	a.url = notify_param(p, "url");
	a.pr_url = notify_param(p, "pr_url");
	a.page_url = notify_param(p, "page_url");
	a.repo_owner = notify_param(p, "repo_owner");
	a.repo_name = notify_param(p, "repo_name");
	a.time_ms = (int64_t)notify_param_num(p, "time");
	a.alert_id = notify_param(p, "alert_id");
	a.incident = notify_param(p, "incident");
	if (nt->render(n, &a, &req, err, errlen) == -1)
		goto out;

	memset(&hr, 0, sizeof(hr));
	hr.url = req.url;
	hr.headers = (const char *const *)req.headers;
	hr.nheaders = req.nheaders;
	hr.body = req.body;
	hr.body_len = req.body_len;
	hr.mail_from = req.mail_from;
	hr.rcpt = (const char *const *)req.rcpt;
	hr.nrcpt = req.nrcpt;
	if (req.mail_from != NULL) {
		hr.username = req.username;
		hr.password = req.password;
		hr.require_tls = req.require_tls;
	}
	hr.ca_file = req.ca_file;
	hr.timeout_s = n->timeout_s > 0 ? n->timeout_s :
	    cfg->notify.timeout_s;
	d->smtp = req.mail_from != NULL;
	d->auth_needs_tls = req.auth_needs_tls;
	d->variant = req.variant;
	/* Only a type that explains refusals sees its URL again (others'
	 * URLs are secrets). */
	if (nt->refused != NULL)
		d->url = xstrdup(req.url);
	if ((c = notify_runner_client(base, err, errlen)) == NULL)
		goto out;
	if (http_client_submit(c, &hr, notify_runner_http_cb,
	    notify_runner_free_cb, d, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	notify_request_free(&req);
	cJSON_Delete(p);
	return rc;
}

static void
notify_runner_start(const struct config *cfg, struct event_base *base,
    struct job *job, job_done_cb *done, void *arg)
{
	struct notify_delivery	*d;
	struct timeval		 now = { 0, 0 };
	char			 err[512];

	d = xcalloc(1, sizeof(*d));
	d->job = job;
	d->done = done;
	d->arg = arg;
	if (notify_runner_send(cfg, base, d, err, sizeof(err)) == 0)
		return;
	/* Nothing was sent and a retry would render the same: permanent. */
	job_result_fail(&d->res, JOB_ERR_CONFIG, 1, "%s", err);
	if (event_base_once(base, -1, EV_TIMEOUT, notify_runner_deferred_cb, d,
	    &now) == -1) {
		log_warnx("job %" PRId64 " notify: cannot schedule", job->id);
		notify_runner_deferred_cb(-1, 0, d);
	}
}

const struct job_runner job_runner_notify = {
	.kind = JOB_NOTIFY,
	.start = notify_runner_start,
	.init = notify_runner_metrics,
};
