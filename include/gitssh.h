/*
 * gitssh.h: gitopsd's SSH transport for libgit2 (daemon/gitssh.c).
 *
 * libgit2 1.5's own SSH transport leaks memory on every connection (see
 * docs/operations.md "Memory"); gitopsd registers this one for ssh://,
 * ssh+git://, git+ssh:// and scp-like user@host:path URLs instead.  It
 * asks libgit2's certificate_check and credentials callbacks exactly as
 * libgit2's transport does, and its TCP connection is gitnet's (deadlines).
 */
#ifndef GITOPSD_GITSSH_H
#define GITOPSD_GITSSH_H

#include <stddef.h>

/* Register the transport (after git_libgit2_init and gitnet_init). */
int	gitssh_init(char *err, size_t errlen);
void	gitssh_shutdown(void);

/*
 * The host and port an SSH URL names (ssh://, or scp-like user@host:path,
 * user@[host:port]:path): 0, or -1 when it is not one or host does not fit
 * hostlen.  port: 22 when the URL names none, 0 when it is not 1..65535.
 */
int	gitssh_url_host(const char *url, char *host, size_t hostlen,
	    int *port);

#endif
