/*
 * router_image.c: placeholder until image routing lands (router.h).  It
 * routes no image event to any app and says so, so an image event is
 * answered 200 "image routing not built" rather than accepted and lost.
 */
#include <stdio.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "router.h"

size_t
router_route_image(const struct config *cfg, const struct hook_event *ev,
    struct job_spec **out, char *why, size_t whylen)
{
	(void)cfg;
	(void)ev;
	*out = NULL;
	snprintf(why, whylen, "image routing not built");
	return 0;
}
