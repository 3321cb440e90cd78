/*
 * notify_plan_tmp.c: a placeholder for notify_plan() until notify/dispatch.c
 * is merged; it plans no alerts.  Delete this file when dispatch.c lands
 * (both define the same symbols).
 */
#include <stdlib.h>
#include <string.h>

#include "notify.h"

void
notify_plan(const struct config *cfg, const struct job *j,
    const struct job_result *res, enum job_state final, int app_was_failing,
    struct notify_plan *out)
{
	(void)cfg;
	(void)j;
	(void)res;
	(void)final;
	(void)app_was_failing;
	memset(out, 0, sizeof(*out));
}

void
notify_plan_free(struct notify_plan *p)
{
	size_t	 i;

	for (i = 0; i < p->n; i++)
		free(p->items[i].dedup_key);
	free(p->items);
	for (i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
	memset(p, 0, sizeof(*p));
}
