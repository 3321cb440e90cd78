/*
 * copystate.h: `gitopsd --copy-state FROM TO`: one state store's whole
 * content (events and their delivery ids, jobs in every state, attempts,
 * app status and images, inventories, alert keys) into another, empty one,
 * through the store ops (include/store.h), so any backend to any backend.
 */
#ifndef GITOPSD_COPYSTATE_H
#define GITOPSD_COPYSTATE_H

#include <stddef.h>
#include <stdio.h>

struct config_state;

/*
 * Copy from into to in one transaction of to, ids kept; refuses a target
 * that holds any row.  Prints one count per table to out.  0, or -1 with
 * the reason in err (nothing written then).
 */
int	copystate_run(const struct config_state *from,
	    const struct config_state *to, FILE *out, char *err,
	    size_t errlen);

#endif
