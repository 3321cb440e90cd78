/*
 * notify_fixture.h: a notifier configuration built by hand (four sinks, two
 * apps, a default), jobs and failed results to plan alerts for.  Shared by
 * the planning and rendering unit tests and the runner suite that delivers
 * to real receivers (test/integration/notify_run_suite.c).
 */
#ifndef NOTIFY_FIXTURE_H
#define NOTIFY_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "notify.h"

#define NFX_UNUSED __attribute__((unused))


struct tcfg {
	struct config		 cfg;
	struct config_app	 apps[2];
	struct config_notifier	 n[4];
	struct config_header	 hdr[1];
	char			*web_notify[3];
	char			*defaults[1];
	char			*to[2];
};

static NFX_UNUSED void
tcfg_init(struct tcfg *t)
{
	memset(t, 0, sizeof(*t));
	t->cfg.notify.max_attempts = 10;
	t->cfg.notify.repeat_after_s = 3600;
	t->cfg.notify.timeout_s = 5;
	t->cfg.links_base_url = "https://gitopsd.test/";
	t->n[0].name = "ops-slack";
	t->n[0].type = "slack";
	t->n[0].url_secret = "http://127.0.0.1:1/slack/T000/B000";
	t->n[0].on = CONFIG_ON_FAILURE;
	t->n[1].name = "oncall-mail";
	t->n[1].type = "email";
	t->n[1].smtp_url = "smtp://127.0.0.1:1";
	t->n[1].from = "gitopsd <gitopsd@example.test>";
	t->to[0] = "oncall@example.test";
	t->to[1] = "Second <dev@example.test>";
	t->n[1].to = t->to;
	t->n[1].nto = 2;
	t->n[1].on = CONFIG_ON_FAILURE | CONFIG_ON_RECOVERY;
	t->n[2].name = "audit";
	t->n[2].type = "webhook";
	t->n[2].url = "http://127.0.0.1:1/audit";
	t->n[2].secret = "topsecret";
	t->hdr[0].name = "X-Env";
	t->hdr[0].value = "prod\r\nX-Injected: 1";
	t->n[2].headers = t->hdr;
	t->n[2].nheaders = 1;
	t->n[2].on = CONFIG_ON_ALL;
	t->n[3].name = "fallback";
	t->n[3].type = "webhook";
	t->n[3].url = "http://127.0.0.1:1/fallback";
	t->n[3].on = CONFIG_ON_FAILURE;
	t->cfg.notifiers = t->n;
	t->cfg.nnotifiers = 4;
	t->web_notify[0] = "ops-slack";
	t->web_notify[1] = "oncall-mail";
	t->web_notify[2] = "audit";
	t->apps[0].name = "web";
	t->apps[0].notify = t->web_notify;
	t->apps[0].nnotify = 3;
	t->apps[1].name = "api";		/* names none: notify_default */
	t->cfg.apps = t->apps;
	t->cfg.napps = 2;
	t->defaults[0] = "fallback";
	t->cfg.notify_default = t->defaults;
	t->cfg.nnotify_default = 1;
}

static NFX_UNUSED void
job_init(struct job *j, int64_t id, enum job_kind kind, const char *app,
    int attempts)
{
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->kind = kind;
	j->app = (char *)app;
	j->attempts = attempts;
	j->delivery = (char *)"delivery-1";
	if (kind == JOB_UPDATE_IMAGE) {
		j->image = (char *)"registry.test/acme/web";
		j->tag = (char *)"1.4.0";
	} else
		j->revision = (char *)"0123456789abcdef0123456789abcdef01234567";
}

static NFX_UNUSED void
res_fail(struct job_result *r, enum job_error_kind k, const char *error,
    const char *object)
{
	memset(r, 0, sizeof(*r));
	r->err_kind = k;
	r->error = (char *)error;
	r->object = (char *)object;
}

static NFX_UNUSED const struct notify_plan_item *
plan_find(const struct notify_plan *p, const char *notifier)
{
	size_t	 i;
	char	 want[128];

	snprintf(want, sizeof(want), "\"notifier\":\"%s\"", notifier);
	for (i = 0; i < p->n; i++)
		if (strstr(p->items[i].spec.params, want) != NULL)
			return &p->items[i];
	return NULL;
}

#endif
