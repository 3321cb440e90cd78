/*
 * notify_fixture.h: a notifier configuration (four sinks loaded from YAML
 * as in the daemon, two apps and a default by hand), jobs and failed
 * results to plan alerts for.  Shared by the planning and rendering unit
 * tests and the runner suite that delivers to real receivers
 * (test/integration/notify_run_suite.c).
 */
#ifndef NOTIFY_FIXTURE_H
#define NOTIFY_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "notify.h"
#include "util.h"

#define NFX_UNUSED __attribute__((unused))


/* ---- a configuration: apps by hand, notifiers loaded --------------------- */

/*
 * A sink's own keys belong to its plug-in (options private to its file), so
 * the notifiers come from YAML through config_load_buffer, as in the daemon.
 * Secrets travel in the environment (url_env, secret_env, password_env).
 */
struct tparams {
	const char	*slack_url;
	const char	*hook_url;
	const char	*hook_header;		/* "Name: value" */
	const char	*smtp_url;
	const char	*smtp_extra;		/* more email keys, flow style */
	const char	*to1;			/* the second recipient */
};

static NFX_UNUSED const struct tparams tparams_default = {
	.slack_url = "http://127.0.0.1:1/slack/T000/B000",
	.hook_url = "http://127.0.0.1:1/audit",
	.hook_header = "X-Env: prod",
	.smtp_url = "smtp://127.0.0.1:1",
	.smtp_extra = "",
	.to1 = "Second <dev@example.test>",
};

struct tcfg {
	struct config		 cfg;
	struct config_app	 apps[2];
	struct config_notifier	*n;
	char			*web_notify[3];
	char			*defaults[1];
};

/* The last loaded notifiers, freed by the teardown. */
static NFX_UNUSED struct config *tcfg_loaded;

static NFX_UNUSED int
tcfg_teardown(void **state)
{
	(void)state;
	config_unref(tcfg_loaded);
	tcfg_loaded = NULL;
	return 0;
}

static NFX_UNUSED void
tcfg_load(struct tcfg *t, const struct tparams *p)
{
	struct config_errors	 e;
	char			*yaml;
	size_t			 i;

	memset(t, 0, sizeof(*t));
	t->cfg.notify.max_attempts = 10;
	t->cfg.notify.repeat_after_s = 3600;
	t->cfg.notify.timeout_s = 5;
	t->cfg.links_base_url = "https://gitopsd.test/";
	setenv("TEST_NOTIFY_SLACK_URL", p->slack_url, 1);
	setenv("TEST_NOTIFY_HOOK_SECRET", "topsecret", 1);
	yaml = xasprintf("notifiers:\n"
	    "  - {name: ops-slack, type: slack, url_env: TEST_NOTIFY_SLACK_URL,"
	    " on: [failure]}\n"
	    "  - {name: oncall-mail, type: email, smtp_url: \"%s\","
	    " from: \"gitopsd <gitopsd@example.test>\","
	    " to: [oncall@example.test, \"%s\"], on: [failure, recovery]%s}\n"
	    "  - {name: audit, type: webhook, url: \"%s\","
	    " secret_env: TEST_NOTIFY_HOOK_SECRET, headers: {%s}, on: [all]}\n"
	    "  - {name: fallback, type: webhook,"
	    " url: \"http://127.0.0.1:1/fallback\", on: [failure]}\n",
	    p->smtp_url, p->to1, p->smtp_extra, p->hook_url, p->hook_header);
	memset(&e, 0, sizeof(e));
	config_unref(tcfg_loaded);
	tcfg_loaded = config_load_buffer("test.yaml", yaml, strlen(yaml), &e);
	for (i = 0; i < e.n; i++)
		fprintf(stderr, "%s\n", e.msgs[i]);
	assert_non_null(tcfg_loaded);
	config_errors_free(&e);
	free(yaml);
	t->n = tcfg_loaded->notifiers;
	t->cfg.notifiers = t->n;
	t->cfg.nnotifiers = tcfg_loaded->nnotifiers;
	assert_int_equal(t->cfg.nnotifiers, 4);
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
tcfg_init(struct tcfg *t)
{
	tcfg_load(t, &tparams_default);
}

/* Replace a loaded string field. */
static NFX_UNUSED void
tset(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
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
