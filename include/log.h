/*
 * log.h: leveled logging to stderr (journald picks it up), text or JSON.
 * The level is checked before formatting.  Untrusted bytes go through
 * log_escape() first.  Secrets are never passed here.
 */
#ifndef GITOPSD_LOG_H
#define GITOPSD_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

void	log_init(enum log_level, enum log_format);
int	log_parse_level(const char *, enum log_level *);
int	log_parse_format(const char *, enum log_format *);
int	log_enabled(enum log_level);
/* Routes libevent's internal messages into this log. */
void	log_hook_libevent(void);

/* log_warn appends strerror(errno). */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Start-up failures and broken invariants only; exits the process. */
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A structured line: msg plus key/value pairs (NULL-terminated list of
 * const char * pairs).  Text: `msg k=v k=v`; JSON: one object per line.
 */
void	log_kv(enum log_level, const char *msg, ...) __attribute__((sentinel));

/*
 * From log_batch_start() on, info and debug lines of the calling thread
 * (the event loop's) are written once per loop iteration; log_flush()
 * writes what is pending now; log_batch_stop() flushes and ends it
 * (before the event base is freed).
 */
struct event_base;
void	log_batch_start(struct event_base *);
void	log_batch_stop(void);
void	log_flush(void);

/* Escape untrusted bytes (control chars, quotes, non-UTF-8) into out. */
void	log_escape(const char *in, size_t len, char *out, size_t outlen);

#endif
