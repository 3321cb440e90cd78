/*
 * gitnet.c: deadlines for libgit2's network operations.
 *
 * DESIGN
 * - The stream.  git_stream_register(GIT_STREAM_STANDARD) replaces the
 *   socket libgit2 opens for http and git://, and the one its TLS stream
 *   wraps for https.  gitssh.c's SSH transport opens the same stream with
 *   gitnet_connect and hands its descriptor to libssh2.  (libgit2's own
 *   SSH transport, not used, read the descriptor from libgit2's
 *   git_socket_stream struct: gitnet_stream keeps that struct's leading
 *   members in the same order.)  connect() is non-blocking with poll()
 *   bounded by the timeout; reads and writes block, as libgit2's own do.
 * - The watchdog.  One thread looks at the running operations four times
 *   a second.  An operation whose bytes stopped moving for its timeout
 *   (reads and writes of its sockets, and libgit2's progress callbacks,
 *   which are all that SSH shows since libssh2 reads the descriptor
 *   itself), or that ran for GITNET_TOTAL_FACTOR times it, is marked timed
 *   out and its sockets are shut down: the blocked recv() returns, the
 *   stream reports the timeout, libgit2 fails the operation.  shutdown()
 *   and close() of a descriptor both happen under gitnet_mtx, so the
 *   watchdog never touches a number that was closed and reused.
 * - Threads: an operation belongs to the thread that began it (libgit2
 *   runs transports on the calling thread); gitnet_cur is thread-local.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/stream.h>

#include "gitnet.h"
#include "util.h"

#define GITNET_DEFAULT_S	120
#define GITNET_MAXFD		8
#define GITNET_TICK_MS		250
#define GITNET_GRACE_MS		5000

struct gitnet_op {
	int64_t			 start_ms;
	int64_t			 last_ms;	/* atomic: last bytes moved */
	int64_t			 timeout_ms;
	int64_t			 timed_out_ms;	/* 0: running */
	char			 why[128];
	int			 fds[GITNET_MAXFD];
	int			 nfds;
	struct gitnet_op	*next;
};

/* Same leading members as libgit2 1.5's git_socket_stream (see DESIGN). */
struct gitnet_stream {
	git_stream		 parent;
	char			*host;
	char			*port;
	int			 s;
	struct gitnet_op	*op;
};

static pthread_mutex_t	 gitnet_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 gitnet_cv;
static struct gitnet_op	*gitnet_ops;
static pthread_t	 gitnet_thread;
static int		 gitnet_running, gitnet_stopping;
static _Thread_local struct gitnet_op *gitnet_cur;

static void
gitnet_mark(struct gitnet_op *op)
{
	__atomic_store_n(&op->last_ms, util_mono_ms(), __ATOMIC_RELAXED);
}

void
gitnet_touch(void)
{
	if (gitnet_cur != NULL)
		gitnet_mark(gitnet_cur);
}

/* With gitnet_mtx held. */
static void
gitnet_expire(struct gitnet_op *op, int64_t now, const char *why)
{
	int	 i;

	if (op->timed_out_ms != 0)
		return;
	op->timed_out_ms = now;
	snprintf(op->why, sizeof(op->why), "%s", why);
	for (i = 0; i < op->nfds; i++)
		shutdown(op->fds[i], SHUT_RDWR);
}

static void *
gitnet_watchdog(void *arg)
{
	struct gitnet_op	*op;
	struct timespec		 ts;
	int64_t			 now, last;
	char			 why[128];

	(void)arg;
	pthread_mutex_lock(&gitnet_mtx);
	while (!gitnet_stopping) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += GITNET_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&gitnet_cv, &gitnet_mtx, &ts);
		now = util_mono_ms();
		for (op = gitnet_ops; op != NULL; op = op->next) {
			last = __atomic_load_n(&op->last_ms, __ATOMIC_RELAXED);
			if (now - last >= op->timeout_ms) {
				snprintf(why, sizeof(why), "no data from the "
				    "remote for %lld s",
				    (long long)(op->timeout_ms / 1000));
				gitnet_expire(op, now, why);
			} else if (now - op->start_ms >=
			    op->timeout_ms * GITNET_TOTAL_FACTOR) {
				snprintf(why, sizeof(why), "still transferring "
				    "after %lld s", (long long)(op->timeout_ms *
				    GITNET_TOTAL_FACTOR / 1000));
				gitnet_expire(op, now, why);
			}
		}
	}
	pthread_mutex_unlock(&gitnet_mtx);
	return NULL;
}

struct gitnet_op *
gitnet_begin(int timeout_s)
{
	struct gitnet_op	*op = xcalloc(1, sizeof(*op));

	op->timeout_ms = (int64_t)(timeout_s > 0 ? timeout_s :
	    GITNET_DEFAULT_S) * 1000;
	op->start_ms = util_mono_ms();
	op->last_ms = op->start_ms;
	pthread_mutex_lock(&gitnet_mtx);
	op->next = gitnet_ops;
	gitnet_ops = op;
	pthread_mutex_unlock(&gitnet_mtx);
	gitnet_cur = op;
	return op;
}

long long
gitnet_idle_ms(const struct gitnet_op *op)
{
	return (long long)(util_mono_ms() -
	    __atomic_load_n(&op->last_ms, __ATOMIC_RELAXED));
}

int
gitnet_end(struct gitnet_op *op, char *why, size_t whylen)
{
	struct gitnet_op	**pp;
	int			 timed_out;

	if (op == NULL)
		return 0;
	pthread_mutex_lock(&gitnet_mtx);
	for (pp = &gitnet_ops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	timed_out = op->timed_out_ms != 0;
	if (timed_out && why != NULL)
		snprintf(why, whylen, "%s", op->why);
	pthread_mutex_unlock(&gitnet_mtx);
	if (gitnet_cur == op)
		gitnet_cur = NULL;
	free(op);
	return timed_out;
}

int
gitnet_overdue(void)
{
	struct gitnet_op	*op;
	int64_t			 now = util_mono_ms(), grace;
	int			 n = 0;

	pthread_mutex_lock(&gitnet_mtx);
	for (op = gitnet_ops; op != NULL; op = op->next) {
		grace = op->timeout_ms < GITNET_GRACE_MS ? op->timeout_ms :
		    GITNET_GRACE_MS;
		if (op->timed_out_ms != 0 && now - op->timed_out_ms > grace)
			n++;
	}
	pthread_mutex_unlock(&gitnet_mtx);
	return n;
}

/* Give the connected socket s to the current operation (or close it). */
static int
gitnet_adopt(struct gitnet_stream *st, int s)
{
	struct gitnet_op	*op = gitnet_cur;

	pthread_mutex_lock(&gitnet_mtx);
	if (op != NULL && op->timed_out_ms != 0) {
		pthread_mutex_unlock(&gitnet_mtx);
		close(s);
		git_error_set_str(GIT_ERROR_NET, "timed out");
		return -1;
	}
	if (op != NULL && op->nfds < GITNET_MAXFD)
		op->fds[op->nfds++] = s;
	else
		op = NULL;
	st->op = op;
	st->s = s;
	pthread_mutex_unlock(&gitnet_mtx);
	return 0;
}

/* Connect s to ai within ms; 0, or -1 with errno (ETIMEDOUT). */
static int
gitnet_connect_one(int s, const struct addrinfo *ai, int64_t ms)
{
	struct pollfd	 pfd = { .fd = s, .events = POLLOUT };
	socklen_t	 len = sizeof(int);
	int		 r, soerr = 0;

	if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	do
		r = poll(&pfd, 1, ms > INT32_MAX ? INT32_MAX : (int)ms);
	while (r == -1 && errno == EINTR);
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (r == -1 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

static int
gitnet_stream_connect(git_stream *stream)
{
	struct gitnet_stream	*st = (struct gitnet_stream *)stream;
	struct addrinfo		 hints, *info = NULL, *p;
	int64_t			 timeout_ms, deadline, left;
	int			 s = -1, r, e = 0;

	timeout_ms = gitnet_cur != NULL ? gitnet_cur->timeout_ms :
	    GITNET_DEFAULT_S * 1000;
	deadline = util_mono_ms() + timeout_ms;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	if ((r = getaddrinfo(st->host, st->port, &hints, &info)) != 0) {
		git_error_set(GIT_ERROR_NET, "failed to resolve address for "
		    "%s: %s", st->host, gai_strerror(r));
		return -1;
	}
	for (p = info; p != NULL; p = p->ai_next) {
		if ((left = deadline - util_mono_ms()) <= 0) {
			e = ETIMEDOUT;
			break;
		}
		s = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, p->ai_protocol);
		if (s == -1) {
			e = errno;
			continue;
		}
		if (gitnet_connect_one(s, p, left) == 0 &&
		    fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK) != -1)
			break;
		e = errno;
		close(s);
		s = -1;
	}
	freeaddrinfo(info);
	if (s == -1) {
		if (e == ETIMEDOUT)
			git_error_set(GIT_ERROR_NET, "connect to %s port %s "
			    "timed out after %lld s", st->host, st->port,
			    (long long)(timeout_ms / 1000));
		else
			git_error_set(GIT_ERROR_NET, "failed to connect to %s "
			    "port %s: %s", st->host, st->port, strerror(e));
		return -1;
	}
	gitnet_touch();
	return gitnet_adopt(st, s);
}

/* After a failed or empty read/write: the watchdog's reason, if it was. */
static int
gitnet_timed_out(struct gitnet_stream *st)
{
	int	 t = 0;

	if (st->op == NULL)
		return 0;
	pthread_mutex_lock(&gitnet_mtx);
	if (st->op->timed_out_ms != 0) {
		git_error_set(GIT_ERROR_NET, "timed out: %s", st->op->why);
		t = 1;
	}
	pthread_mutex_unlock(&gitnet_mtx);
	return t;
}

static ssize_t
gitnet_stream_read(git_stream *stream, void *data, size_t len)
{
	struct gitnet_stream	*st = (struct gitnet_stream *)stream;
	ssize_t			 n;

	do
		n = recv(st->s, data, len, 0);
	while (n == -1 && errno == EINTR);
	if (n > 0 && st->op != NULL)
		gitnet_mark(st->op);
	if (n <= 0 && gitnet_timed_out(st))
		return -1;
	if (n == -1)
		git_error_set(GIT_ERROR_NET, "error receiving socket data: %s",
		    strerror(errno));
	return n;
}

static ssize_t
gitnet_stream_write(git_stream *stream, const char *data, size_t len,
    int flags)
{
	struct gitnet_stream	*st = (struct gitnet_stream *)stream;
	ssize_t			 n;

	do
		n = send(st->s, data, len, flags | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n > 0 && st->op != NULL)
		gitnet_mark(st->op);
	if (n == -1 && !gitnet_timed_out(st))
		git_error_set(GIT_ERROR_NET, "error sending data: %s",
		    strerror(errno));
	return n;
}

static int
gitnet_stream_close(git_stream *stream)
{
	struct gitnet_stream	*st = (struct gitnet_stream *)stream;
	struct gitnet_op	*op;
	int			 i, r = 0;

	pthread_mutex_lock(&gitnet_mtx);
	/* The operation may have ended already (its struct is gone). */
	for (op = gitnet_ops; op != NULL && op != st->op; op = op->next)
		;
	for (i = 0; op != NULL && i < op->nfds; i++)
		if (op->fds[i] == st->s) {
			op->fds[i] = op->fds[--op->nfds];
			break;
		}
	st->op = NULL;
	if (st->s != -1)
		r = close(st->s);
	st->s = -1;
	pthread_mutex_unlock(&gitnet_mtx);
	return r;
}

static void
gitnet_stream_free(git_stream *stream)
{
	struct gitnet_stream	*st = (struct gitnet_stream *)stream;

	if (st->s != -1)
		gitnet_stream_close(stream);
	free(st->host);
	free(st->port);
	free(st);
}

static int
gitnet_stream_new(git_stream **out, const char *host, const char *port)
{
	struct gitnet_stream	*st;

	st = xcalloc(1, sizeof(*st));
	st->host = xstrdup(host);
	st->port = xstrdup(port != NULL ? port : "");
	st->s = -1;
	st->parent.version = GIT_STREAM_VERSION;
	st->parent.connect = gitnet_stream_connect;
	st->parent.read = gitnet_stream_read;
	st->parent.write = gitnet_stream_write;
	st->parent.close = gitnet_stream_close;
	st->parent.free = gitnet_stream_free;
	*out = &st->parent;
	return 0;
}

int
gitnet_connect(git_stream **out, const char *host, const char *port)
{
	gitnet_stream_new(out, host, port);
	if (gitnet_stream_connect(*out) == -1) {
		gitnet_stream_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
gitnet_fd(const git_stream *stream)
{
	return ((const struct gitnet_stream *)stream)->s;
}

int
gitnet_init(char *err, size_t errlen)
{
	git_stream_registration	 reg = {
		.version = GIT_STREAM_VERSION,
		.init = gitnet_stream_new,
	};
	pthread_condattr_t	 ca;
	int			 e;

	if (git_stream_register(GIT_STREAM_STANDARD, &reg) < 0) {
		snprintf(err, errlen, "git stream: %s", git_error_last() != NULL ?
		    git_error_last()->message : "cannot register");
		return -1;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&gitnet_cv, &ca);
	pthread_condattr_destroy(&ca);
	gitnet_stopping = 0;
	if ((e = pthread_create(&gitnet_thread, NULL, gitnet_watchdog,
	    NULL)) != 0) {
		snprintf(err, errlen, "git watchdog thread: %s", strerror(e));
		pthread_cond_destroy(&gitnet_cv);
		return -1;
	}
	gitnet_running = 1;
	return 0;
}

void
gitnet_shutdown(void)
{
	if (!gitnet_running)
		return;
	pthread_mutex_lock(&gitnet_mtx);
	gitnet_stopping = 1;
	pthread_cond_signal(&gitnet_cv);
	pthread_mutex_unlock(&gitnet_mtx);
	pthread_join(gitnet_thread, NULL);
	pthread_cond_destroy(&gitnet_cv);
	gitnet_running = 0;
}
