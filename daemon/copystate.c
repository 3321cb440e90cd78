/*
 * copystate.c: one state into another (include/copystate.h), for a user
 * who moves from the embedded SQLite file to PostgreSQL and keeps history.
 *
 * Rows travel as text through the store ops rows_each and row_put, table
 * by table, parents first (store_tables), with their ids: jobs keep the
 * ids the admin API, logs and alerts showed, and the delivery ids of the
 * events keep deduplicating.  The target is written in one transaction,
 * so a failed copy leaves it empty; the source is read in one too, a
 * consistent picture even if a gitopsd still runs on it (its writes wait).
 *
 * The one case where rows do not map one to one: SQLite can hold the same
 * (source, delivery) twice (a delivery sent again after its dedup window),
 * PostgreSQL keeps it as a unique key.  The later event is then folded
 * into the first: its jobs point at the first one's id, and it is counted
 * as merged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "copystate.h"
#include "store.h"
#include "util.h"

struct copystate {
	const struct store_ops	*ops;
	struct store		*to;
	enum store_table	 table;
	int64_t			 copied[STORE_T_MAX];
	int64_t			 merged;
	int64_t			*from_ids, *to_ids;	/* merged events */
	size_t			 nmap;
};

static int
copystate_id_col(enum store_table t)
{
	switch (t) {
	case STORE_T_JOBS:
		return 10;	/* event_id */
	case STORE_T_EVENT_JOBS:
		return 0;	/* event_id */
	default:
		return -1;
	}
}

static int
copystate_row_cb(void *arg, const char *const *vals, char *err,
    size_t errlen)
{
	struct copystate	*c = arg;
	const char		*row[STORE_TABLE_MAXCOLS];
	char			 idbuf[24];
	int64_t			 kept = 0, id;
	size_t			 i;
	int			 col, r;

	memcpy(row, vals, sizeof(row[0]) * (size_t)store_tables[c->table].ncols);
	col = copystate_id_col(c->table);
	if (col >= 0 && row[col] != NULL && c->nmap > 0) {
		id = strtoll(row[col], NULL, 10);
		for (i = 0; i < c->nmap; i++)
			if (c->from_ids[i] == id) {
				snprintf(idbuf, sizeof(idbuf), "%" PRId64,
				    c->to_ids[i]);
				row[col] = idbuf;
				break;
			}
	}
	r = c->ops->row_put(c->to, c->table, row, &kept, err, errlen);
	if (r == -1)
		return -1;
	if (r == 0) {
		c->copied[c->table]++;
		return 0;
	}
	if (c->table == STORE_T_EVENTS && kept > 0) {
		c->from_ids = xreallocarray(c->from_ids, c->nmap + 1,
		    sizeof(*c->from_ids));
		c->to_ids = xreallocarray(c->to_ids, c->nmap + 1,
		    sizeof(*c->to_ids));
		c->from_ids[c->nmap] = strtoll(row[0], NULL, 10);
		c->to_ids[c->nmap++] = kept;
		c->merged++;
		return 0;
	}
	/* Links of a merged event that the first one has already. */
	if (c->table == STORE_T_EVENT_JOBS)
		return 0;
	snprintf(err, errlen, "%s: a row's key is already stored",
	    store_tables[c->table].name);
	return -1;
}

/* Which state, for messages: never the DSN (a secret). */
static const char *
copystate_name(const struct config_state *cs)
{
	return cs->driver == CONFIG_STATE_POSTGRES ? "the PostgreSQL database" :
	    cs->path;
}

int
copystate_run(const struct config_state *from, const struct config_state *to,
    FILE *out, char *err, size_t errlen)
{
	const struct store_ops	*fops, *tops;
	struct copystate	 c;
	struct store		*src = NULL, *dst = NULL;
	const char		*ftarget, *ttarget;
	char			 e[512];
	int64_t			 n;
	int			 t, src_tx = 0, dst_tx = 0, rc = -1;

	memset(&c, 0, sizeof(c));
	fops = store_backend(from, &ftarget);
	tops = store_backend(to, &ttarget);
	if (ftarget == NULL || ttarget == NULL) {
		snprintf(err, errlen, "no state store configured");
		return -1;
	}
	if (fops == tops && strcmp(ftarget, ttarget) == 0) {
		snprintf(err, errlen, "FROM and TO name the same state");
		return -1;
	}
	/* Opening a missing SQLite file would create an empty state. */
	if (from->driver != CONFIG_STATE_POSTGRES && access(ftarget, F_OK) != 0) {
		snprintf(err, errlen, "%s: no such state file", ftarget);
		return -1;
	}
	if ((src = fops->open(ftarget, NULL, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "FROM: %s", e);
		goto out;
	}
	if ((dst = tops->open(ttarget, NULL, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "TO: %s", e);
		goto out;
	}
	if (tops->begin(dst, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "TO: %s", e);
		goto out;
	}
	dst_tx = 1;
	for (t = 0; t < STORE_T_MAX; t++) {
		if (tops->rows_count(dst, t, &n, e, sizeof(e)) == -1) {
			snprintf(err, errlen, "TO: %s", e);
			goto out;
		}
		if (n > 0) {
			snprintf(err, errlen, "TO (%s) is not empty: %s holds"
			    " %" PRId64 " rows; the state is copied into an"
			    " empty one only", copystate_name(to),
			    store_tables[t].name, n);
			goto out;
		}
	}
	if (fops->begin(src, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "FROM: %s", e);
		goto out;
	}
	src_tx = 1;
	c.ops = tops;
	c.to = dst;
	for (t = 0; t < STORE_T_MAX; t++) {
		c.table = t;
		if (fops->rows_each(src, t, copystate_row_cb, &c, e,
		    sizeof(e)) == -1) {
			snprintf(err, errlen, "copying %s: %s",
			    store_tables[t].name, e);
			goto out;
		}
	}
	if (tops->rows_done(dst, e, sizeof(e)) == -1 ||
	    tops->commit(dst, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "TO: %s", e);
		goto out;
	}
	dst_tx = 0;
	fprintf(out, "copied %s into %s:\n", copystate_name(from),
	    copystate_name(to));
	for (t = 0; t < STORE_T_MAX; t++)
		fprintf(out, "  %-14s %" PRId64 "\n", store_tables[t].name,
		    c.copied[t]);
	if (c.merged > 0)
		fprintf(out, "  %" PRId64 " events merged into an earlier event"
		    " of the same delivery id\n", c.merged);
	rc = 0;
out:
	if (dst_tx)
		tops->rollback(dst);
	if (src_tx)
		fops->rollback(src);
	if (dst != NULL)
		tops->close(dst);
	if (src != NULL)
		fops->close(src);
	free(c.from_ids);
	free(c.to_ids);
	return rc;
}
