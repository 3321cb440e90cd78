/*
 * gitnet.h: deadlines for libgit2's network operations (daemon/gitnet.c).
 *
 * libgit2 1.5 has no timeout of its own: a remote that accepts and never
 * answers keeps a worker in recv() forever.  gitnet registers libgit2's
 * plain socket stream (every transport's TCP connection goes through it:
 * http, https under TLS, git://; gitssh.c's ssh asks gitnet_connect) with
 * a connect timeout, and a
 * watchdog thread that shuts the sockets of an operation down once nothing
 * moved for its timeout, or once it ran for GITNET_TOTAL_FACTOR times it.
 * The blocked read then fails and libgit2 returns an error.
 */
#ifndef GITOPSD_GITNET_H
#define GITOPSD_GITNET_H

#include <stddef.h>

/* An operation may run this many times its timeout in all. */
#define GITNET_TOTAL_FACTOR	10

/* Register the stream and start the watchdog (after git_libgit2_init). */
int	gitnet_init(char *err, size_t errlen);
void	gitnet_shutdown(void);

/*
 * One network operation on the calling thread: sockets libgit2 opens on
 * this thread until gitnet_end belong to it.  timeout_s <= 0: 120.
 */
struct gitnet_op;
struct gitnet_op *gitnet_begin(int timeout_s);
/* Bytes moved (libgit2 progress callbacks): the stall clock restarts. */
void	gitnet_touch(void);
/* Milliseconds since op last moved a byte. */
long long gitnet_idle_ms(const struct gitnet_op *);
/*
 * End (and free) op.  Returns 1 when it was timed out, with the reason
 * ("no data from the remote for 5 s") in why; 0 otherwise.
 */
int	gitnet_end(struct gitnet_op *, char *why, size_t whylen);

/*
 * Operations still running although their deadline passed more than a
 * grace period ago (min(timeout, 5 s)): a worker stuck beyond it, which
 * /readyz reports.
 */
int	gitnet_overdue(void);

/*
 * A TCP connection to host:port that belongs to the current operation,
 * connected and watched like the sockets libgit2 opens (for gitssh.c,
 * which hands the descriptor to libssh2).  0, or -1 with libgit2's error
 * set.  Closed and freed through the stream's close and free members.
 */
struct git_stream;
int	gitnet_connect(struct git_stream **out, const char *host,
	    const char *port);
/* The descriptor of a stream from gitnet_connect. */
int	gitnet_fd(const struct git_stream *);

#endif
