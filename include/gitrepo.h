/*
 * gitrepo.h: local clones of configured repositories (daemon/git.c,
 * libgit2), shared by the update-image and sync jobs on worker threads.
 *
 * Each configured repository has one bare clone, <workdir>/<name>.git, with
 * the remote "origin" and remote-tracking refs refs/remotes/origin/<branch>.
 * Nothing is ever checked out there: readers look at trees by commit
 * (git_repo_read_files, git_repo_export), writers build commits from blobs
 * and trees (git_repo_commit) and push them (git_repo_push).
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

/* Outcome of a remote operation, for callers that must tell them apart. */
enum git_repo_status {
	GIT_REPO_OK = 0,
	GIT_REPO_ERROR = -1,		/* network, server, local repository */
	GIT_REPO_AUTH = -2,		/* credentials refused; host key unknown/changed */
	GIT_REPO_REJECTED = -3,		/* push not a fast-forward / ref moved meanwhile */
};

/*
 * An open, locked clone for a sequence of operations (update-image: fetch,
 * read, commit, push, maybe again).  The per-repository lock is held from
 * git_repo_open to git_repo_close, so git_repo_prepare callers wait.
 */
struct git_repo;

/* Like git_repo_prepare, but keep the clone open and locked. */
enum git_repo_status git_repo_open(const struct config *,
	    const struct config_repo *, struct git_repo **, char *err,
	    size_t errlen);
void	git_repo_close(struct git_repo *);
/* Fetch the configured branch again. */
enum git_repo_status git_repo_fetch(struct git_repo *, char *err, size_t errlen);
/* Hex id of refs/remotes/origin/<branch> (41 bytes), or -1 when absent. */
int	git_repo_head(struct git_repo *, char out[41]);
/* Same for refs/remotes/origin/<branch> of another fetched branch. */
int	git_repo_head_of(struct git_repo *, const char *branch, char out[41]);
/* The local path of the bare clone (owned by the handle). */
const char *git_repo_path(const struct git_repo *);

/*
 * Call cb for each blob under dir (repository-relative, "" or "." = root)
 * in commit whose name ends in .yaml or .yml, in tree order.  path is
 * repository-relative.  Blobs over max_bytes are passed with data NULL and
 * len set to their size.  cb returns 0 to go on, nonzero to stop (returned).
 */
typedef int git_repo_file_cb(const char *path, const char *data, size_t len,
	    void *arg);
int	git_repo_read_files(struct git_repo *, const char *commit,
	    const char *dir, size_t max_bytes, git_repo_file_cb *, void *arg,
	    char *err, size_t errlen);

/* A file to replace in a commit (an existing or new blob path). */
struct git_repo_change {
	const char	*path;		/* repository-relative */
	const char	*data;
	size_t		 len;
};

/*
 * Create a commit with parent `parent` whose tree is the parent's with the
 * changes applied (file modes kept).  No ref is moved.  out: hex id.
 */
int	git_repo_commit(struct git_repo *, const char *parent,
	    const struct git_repo_change *, size_t nchanges,
	    const char *author_name, const char *author_email,
	    const char *message, char out[41], char *err, size_t errlen);

/*
 * Push commit to refs/heads/<branch> on origin, never forced: returns
 * GIT_REPO_REJECTED when the remote branch moved (non-fast-forward or a
 * failed ref update reported by the server).
 */
enum git_repo_status git_repo_push(struct git_repo *, const char *commit,
	    const char *branch, char *err, size_t errlen);

/*
 * Write the files under dir of commit into destdir (created), for readers
 * that want a plain directory (render commands).  0 or -1.
 */
int	git_repo_export(const char *repo_path, const char *commit,
	    const char *dir, const char *destdir, char *err, size_t errlen);

/*
 * Check an SSH host key against an OpenSSH known_hosts file (plain,
 * "[host]:port" and hashed "|1|salt|hash" entries; @revoked lines refuse).
 * key is the raw public key blob, keytype its name ("ssh-ed25519").
 * Returns 0 when a line matches, -1 with a reason in err otherwise
 * (unknown host, key changed, unreadable file).
 */
int	git_repo_known_hosts_check(const char *file, const char *host,
	    int port, const char *keytype, const unsigned char *key,
	    size_t keylen, char *err, size_t errlen);

/*
 * Tests only: called from libgit2's push negotiation, after the remote
 * advertised its refs and before the pack is sent (a race window).
 */
typedef void git_repo_push_hook(void *arg);
void	git_repo_set_push_hook(git_repo_push_hook *, void *arg);

#endif
