/*
 * log.c: leveled logging to stderr, as text or one JSON object per line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "log.h"

static enum log_level	log_level = LOG_LEVEL_INFO;
static enum log_format	log_format = LOG_FORMAT_TEXT;
static pthread_mutex_t	log_mtx = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };

/*
 * Lines the event-loop thread logs at info and debug (one per webhook) are
 * gathered and written once per loop iteration, not with one write(2)
 * each: under load that was a system call per request.  The flush event
 * runs in the same iteration, after the callbacks that logged, so a line
 * is late by microseconds; warnings and errors flush at once (after what
 * is pending, to keep the order).  A kill -9 can lose the info lines of
 * the iteration it interrupts, never stored data.
 */
static struct event	*log_flush_ev;
static pthread_t	 log_batch_thread;
static struct buf	 log_pending;
#define LOG_PENDING_MAX	(64 * 1024)

static void
log_write(const char *data, size_t len)
{
	pthread_mutex_lock(&log_mtx);
	fwrite(data, 1, len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}

void
log_flush(void)
{
	/* The thread test first: only the loop thread reads the event. */
	if (!pthread_equal(pthread_self(), log_batch_thread) ||
	    log_flush_ev == NULL || log_pending.len == 0)
		return;
	log_write(log_pending.data, log_pending.len);
	buf_reset(&log_pending);
}

static void
log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_flush();
}

void
log_batch_start(struct event_base *base)
{
	if (log_flush_ev != NULL)
		return;
	if ((log_flush_ev = event_new(base, -1, 0, log_flush_cb, NULL)) == NULL)
		return;		/* unbatched, as before */
	log_batch_thread = pthread_self();
	buf_init(&log_pending, 0);
}

void
log_batch_stop(void)
{
	if (log_flush_ev == NULL)
		return;
	log_flush();
	event_free(log_flush_ev);
	log_flush_ev = NULL;
	buf_free(&log_pending);
}

void
log_init(enum log_level level, enum log_format format)
{
	log_level = level;
	log_format = format;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]);
	    i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

int
log_parse_format(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

int
log_enabled(enum log_level level)
{
	return level <= log_level;
}

/* JSON-escape (and make valid UTF-8 of) arbitrary bytes. */
static void
log_json_escape(struct buf *b, const char *s, size_t len)
{
	size_t	 cap = len * 6 + 1;
	char	*esc;

	if (buf_reserve(b, cap) == -1)
		return;
	esc = b->data + b->len;
	log_escape(s, len, esc, cap);
	b->len += strlen(esc);
}

static void
log_emit(enum log_level level, const char *msg, const char *kv)
{
	struct buf	 b;
	char		 ts[40];
	struct timespec	 now;
	struct tm	 tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ",
	    now.tv_nsec / 1000000);

	buf_init(&b, 0);
	if (log_format == LOG_FORMAT_JSON) {
		buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
		    ts, log_level_names[level]);
		log_json_escape(&b, msg, strlen(msg));
		buf_addstr(&b, "\"");
		if (kv != NULL)
			buf_addstr(&b, kv);
		buf_addstr(&b, "}\n");
	} else {
		buf_printf(&b, "%s %s %s", ts, log_level_names[level], msg);
		if (kv != NULL)
			buf_addstr(&b, kv);
		buf_addstr(&b, "\n");
	}
	if (pthread_equal(pthread_self(), log_batch_thread) &&
	    log_flush_ev != NULL) {
		if (level >= LOG_LEVEL_INFO &&
		    log_pending.len + b.len <= LOG_PENDING_MAX &&
		    buf_add(&log_pending, b.data, b.len) == 0) {
			/* Active already: a no-op. */
			event_active(log_flush_ev, 0, 0);
			buf_free(&b);
			return;
		}
		log_flush();
	}
	log_write(b.data, b.len);
	buf_free(&b);
}

static void log_vmsg(enum log_level, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_vmsg(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	struct buf	 msg;
	int		 saved = errno;

	if (!log_enabled(level))
		return;
	buf_init(&msg, 0);
	buf_vprintf(&msg, fmt, ap);
	if (with_errno)
		buf_printf(&msg, ": %s", strerror(saved));
	log_emit(level, msg.data != NULL ? msg.data : "", NULL);
	buf_free(&msg);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_WARN, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_WARN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	log_flush();
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	log_flush();
	exit(1);
}

void
log_kv(enum log_level level, const char *msg, ...)
{
	va_list		 ap;
	const char	*k, *v;
	struct buf	 b;
	char		*esc;

	if (!log_enabled(level))
		return;
	/*
	 * Built with plain appends, the value escaped in place: the loop
	 * writes one of these per request, and a malloc and a printf per
	 * field were a visible share of its time.
	 */
	buf_init(&b, 0);
	buf_reserve(&b, 512);
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		size_t	 vlen, cap;
		int	 quote;

		v = va_arg(ap, const char *);
		if (v == NULL)
			v = "-";
		vlen = strlen(v);
		if (log_format == LOG_FORMAT_JSON) {
			buf_add(&b, ",\"", 2);
			buf_addstr(&b, k);
			buf_add(&b, "\":\"", 3);
			log_json_escape(&b, v, vlen);
			buf_add(&b, "\"", 1);
			continue;
		}
		cap = vlen * 6 + 1;
		quote = strpbrk(v, " \t\"=") != NULL || *v == '\0';
		buf_add(&b, " ", 1);
		buf_addstr(&b, k);
		buf_add(&b, quote ? "=\"" : "=", quote ? 2 : 1);
		buf_reserve(&b, cap);
		esc = b.data + b.len;
		log_escape(v, vlen, esc, cap);
		b.len += strlen(esc);
		if (quote)
			buf_add(&b, "\"", 1);
	}
	va_end(ap);
	log_emit(level, msg, b.len > 0 ? b.data : NULL);
	buf_free(&b);
}

/*
 * Escape untrusted bytes: printable ASCII passes, quotes and backslashes are
 * escaped, valid UTF-8 sequences pass, everything else becomes \u00XX.
 */
void
log_escape(const char *in, size_t len, char *out, size_t outlen)
{
	size_t		 i = 0, o = 0, n, k;
	unsigned char	 c;

	if (outlen == 0)
		return;
	while (i < len) {
		c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)c;
			i++;
			continue;
		}
		if (c == '"' || c == '\\') {
			if (o + 2 >= outlen)
				break;
			out[o++] = '\\';
			out[o++] = (char)c;
			i++;
			continue;
		}
		n = 0;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		if (n > 0 && i + n < len) {
			for (k = 1; k <= n; k++)
				if (((unsigned char)in[i + k] & 0xc0) != 0x80)
					break;
			if (k == n + 1) {
				if (o + n + 1 >= outlen)
					break;
				memcpy(out + o, in + i, n + 1);
				o += n + 1;
				i += n + 1;
				continue;
			}
		}
		if (o + 6 >= outlen)
			break;
		snprintf(out + o, 7, "\\u%04x", c);
		o += 6;
		i++;
	}
	out[o] = '\0';
}

static void
log_libevent_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

void
log_hook_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
