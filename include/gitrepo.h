/*
 * gitrepo.h: local clones of configured repositories (daemon/git.c,
 * libgit2), shared by the update-image and sync jobs on worker threads.
 */
#ifndef GITOPSD_GITREPO_H
#define GITOPSD_GITREPO_H

#include <stddef.h>

struct config;
struct config_repo;

/* libgit2 global init/shutdown (once per process). */
int	git_repo_global_init(void);
void	git_repo_global_shutdown(void);

/*
 * Make sure a local clone of repo exists under cfg->workdir and is fetched
 * (clone on first use, fetch on reuse).  *path_out (malloc'd) is the local
 * repository path; *head_out (malloc'd, may be NULL) the hex commit of the
 * remote branch after fetching.  Thread-safe: serialized per repository.
 * Returns 0, or -1 with a reason in err (git_error_last() text copied).
 */
int	git_repo_prepare(const struct config *, const struct config_repo *,
	    char **path_out, char **head_out, char *err, size_t errlen);

#endif
