/*
 * metrics.c: counters, gauges and histograms in one mutex-protected list,
 * rendered in the Prometheus text exposition format.  The number of series
 * is small (tens to hundreds), so a linear list is enough.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

static const double metrics_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
	300, 600
};
#define METRICS_NBUCKETS nitems(metrics_buckets)

struct metrics_family {
	char			*name;
	char			*type;
	char			*help;
	struct metrics_family	*next;
};

struct metrics_series {
	char			*name;
	char			*labels;
	int			 histogram;
	double			 value;		/* counter/gauge; histogram sum */
	unsigned long long	 count;
	unsigned long long	 buckets[METRICS_NBUCKETS];
	struct metrics_series	*next;
};

static pthread_mutex_t		 metrics_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family	*metrics_families;
static struct metrics_series	*metrics_series;
static metrics_collect_cb	*metrics_collector;
static void			*metrics_collector_arg;

void
metrics_set_collector(metrics_collect_cb *cb, void *arg)
{
	pthread_mutex_lock(&metrics_mtx);
	metrics_collector = cb;
	metrics_collector_arg = arg;
	pthread_mutex_unlock(&metrics_mtx);
}

void
metrics_init(void)
{
}

void
metrics_free(void)
{
	struct metrics_family	*f, *fn;
	struct metrics_series	*s, *sn;

	pthread_mutex_lock(&metrics_mtx);
	for (f = metrics_families; f != NULL; f = fn) {
		fn = f->next;
		free(f->name);
		free(f->type);
		free(f->help);
		free(f);
	}
	for (s = metrics_series; s != NULL; s = sn) {
		sn = s->next;
		free(s->name);
		free(s->labels);
		free(s);
	}
	metrics_families = NULL;
	metrics_series = NULL;
	pthread_mutex_unlock(&metrics_mtx);
}

void
metrics_describe(const char *name, const char *type, const char *help)
{
	struct metrics_family	*f, **fp;

	pthread_mutex_lock(&metrics_mtx);
	for (fp = &metrics_families; *fp != NULL; fp = &(*fp)->next)
		if (strcmp((*fp)->name, name) == 0)
			goto out;
	f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	f->type = xstrdup(type);
	f->help = xstrdup(help);
	*fp = f;	/* appended: output keeps declaration order */
out:
	pthread_mutex_unlock(&metrics_mtx);
}

/* Caller holds metrics_mtx. */
static struct metrics_series *
do_metrics_get(const char *name, const char *labels, int histogram)
{
	struct metrics_series	*s, **sp;

	if (labels == NULL)
		labels = "";
	for (sp = &metrics_series; *sp != NULL; sp = &(*sp)->next) {
		s = *sp;
		if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
			return s;
	}
	s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
	s->histogram = histogram;
	*sp = s;
	return s;
}

void
metrics_counter_add(const char *name, const char *labels, double v)
{
	pthread_mutex_lock(&metrics_mtx);
	do_metrics_get(name, labels, 0)->value += v;
	pthread_mutex_unlock(&metrics_mtx);
}

void
metrics_gauge_set(const char *name, const char *labels, double v)
{
	pthread_mutex_lock(&metrics_mtx);
	do_metrics_get(name, labels, 0)->value = v;
	pthread_mutex_unlock(&metrics_mtx);
}

void
metrics_observe(const char *name, const char *labels, double v)
{
	struct metrics_series	*s;
	size_t			 i;

	pthread_mutex_lock(&metrics_mtx);
	s = do_metrics_get(name, labels, 1);
	s->value += v;
	s->count++;
	for (i = 0; i < METRICS_NBUCKETS; i++)
		if (v <= metrics_buckets[i])
			s->buckets[i]++;
	pthread_mutex_unlock(&metrics_mtx);
}

static void
metrics_render_series(struct buf *b, const struct metrics_series *s)
{
	const char	*sep = s->labels[0] != '\0' ? "," : "";
	size_t		 i;

	if (!s->histogram) {
		if (s->labels[0] != '\0')
			buf_printf(b, "%s{%s} %.17g\n", s->name, s->labels, s->value);
		else
			buf_printf(b, "%s %.17g\n", s->name, s->value);
		return;
	}
	for (i = 0; i < METRICS_NBUCKETS; i++)
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name,
		    s->labels, sep, metrics_buckets[i], s->buckets[i]);
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels,
	    sep, s->count);
	if (s->labels[0] != '\0') {
		buf_printf(b, "%s_sum{%s} %.17g\n", s->name, s->labels, s->value);
		buf_printf(b, "%s_count{%s} %llu\n", s->name, s->labels, s->count);
	} else {
		buf_printf(b, "%s_sum %.17g\n", s->name, s->value);
		buf_printf(b, "%s_count %llu\n", s->name, s->count);
	}
}

void
metrics_render(struct buf *b)
{
	struct metrics_family	*f;
	struct metrics_series	*s;
	metrics_collect_cb	*cb;
	void			*arg;

	pthread_mutex_lock(&metrics_mtx);
	cb = metrics_collector;
	arg = metrics_collector_arg;
	pthread_mutex_unlock(&metrics_mtx);
	if (cb != NULL)
		cb(arg);
	pthread_mutex_lock(&metrics_mtx);
	for (f = metrics_families; f != NULL; f = f->next) {
		buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
		    f->name, f->type);
		for (s = metrics_series; s != NULL; s = s->next)
			if (strcmp(s->name, f->name) == 0)
				metrics_render_series(b, s);
	}
	pthread_mutex_unlock(&metrics_mtx);
}

void
metrics_label_escape(const char *in, char *out, size_t outlen)
{
	size_t	 o = 0;

	if (outlen == 0)
		return;
	for (; *in != '\0' && o + 2 < outlen; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else
			out[o++] = *in;
	}
	out[o] = '\0';
}
