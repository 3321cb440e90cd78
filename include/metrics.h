/*
 * metrics.h: process-wide Prometheus metrics (daemon/metrics.c).
 * Thread-safe; label sets are given as preformatted text
 * `source="github",code="202"` (values escaped by the caller with
 * metrics_label_escape when they come from outside).
 */
#ifndef GITOPSD_METRICS_H
#define GITOPSD_METRICS_H

#include <stddef.h>

struct buf;

void	metrics_init(void);
void	metrics_free(void);
/* Declare a metric's HELP and TYPE ("counter", "gauge", "histogram"). */
void	metrics_describe(const char *name, const char *type, const char *help);
void	metrics_counter_add(const char *name, const char *labels, double v);
void	metrics_gauge_set(const char *name, const char *labels, double v);
/* Histogram with the default buckets (seconds). */
void	metrics_observe(const char *name, const char *labels, double v);
/* Render everything in the text exposition format. */
void	metrics_render(struct buf *);
/*
 * Called at the start of every metrics_render (on the renderer's thread,
 * without the metrics lock) to set gauges that are read, not counted.
 * One collector; NULL removes it.
 */
typedef void metrics_collect_cb(void *arg);
void	metrics_set_collector(metrics_collect_cb *, void *arg);
/* Escape a label value (\\, ", newline) into out. */
void	metrics_label_escape(const char *in, char *out, size_t outlen);

#endif
