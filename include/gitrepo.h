/*
 * gitrepo.h: local clones of configured repositories (daemon/git.c,
 * libgit2), shared by the update-image and sync jobs on worker threads.
 *
 * Each configured repository has one bare clone, <workdir>/<name>.git, with
 * the remote "origin" and remote-tracking refs refs/remotes/origin/<branch>.
 * Nothing is ever checked out there: readers look at trees by commit
 * (git_repo_walk, git_repo_export), writers build commits from blobs
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
/* The same without fetching (a poll that found the head here already). */
enum git_repo_status git_repo_open_nofetch(const struct config *,
	    const struct config_repo *, struct git_repo **, char *err,
	    size_t errlen);

/*
 * A poll: ask the remote for refs/heads/<branch> without fetching
 * (libgit2's connect and ls; over smart HTTP one GET of info/refs), under
 * the clone's lock and with a fetch's deadline, credentials and host key
 * check.  remote_out: the remote's head; local_out: the clone's
 * refs/remotes/origin/<branch>, "" when absent.  A branch the remote
 * lacks is an error.
 */
enum git_repo_status git_repo_remote_head(const struct config *,
	    const struct config_repo *, char remote_out[41],
	    char local_out[41], char *err, size_t errlen);

/* Paths changed between two commits (both sides of each change). */
struct git_repo_paths {
	char	**paths;
	size_t	  n;
	size_t	  max;		/* more than this: complete 0 */
	int	  complete;	/* 0: no full list (from unknown here) */
};
/*
 * Fill out (its max set by the caller) with the paths changed from commit
 * `from` to `to`.  From missing in the clone: 0 with complete 0.  -1 with
 * err when to cannot be read.  Clear with git_repo_paths_clear.
 */
int	git_repo_changed_paths(struct git_repo *, const char *from,
	    const char *to, struct git_repo_paths *out, char *err,
	    size_t errlen);
void	git_repo_paths_clear(struct git_repo_paths *);
void	git_repo_close(struct git_repo *);
/* Fetch the configured branch again. */
enum git_repo_status git_repo_fetch(struct git_repo *, char *err, size_t errlen);
/* Fetch the configured branch and another one (a per-update push
 * branch); a branch absent on the remote ends absent here. */
enum git_repo_status git_repo_fetch_branch(struct git_repo *,
	    const char *branch, char *err, size_t errlen);
/* Hex id of refs/remotes/origin/<branch> (41 bytes), or -1 when absent. */
int	git_repo_head(struct git_repo *, char out[41]);
/* Same for refs/remotes/origin/<branch> of another fetched branch. */
int	git_repo_head_of(struct git_repo *, const char *branch, char out[41]);
/* The local path of the bare clone (owned by the handle). */
const char *git_repo_path(const struct git_repo *);

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
 * Reading trees.  Every entry name is checked with git_repo_name_ok before
 * it becomes part of a path, and a walk or export fails on the first
 * refused one, naming it.  A symlink is never followed on disk: its target,
 * normalized against the link's directory inside the commit's tree
 * (git_repo_link_target), must name a regular file under the reader's base
 * directory; that file's content stands in for the link.  Any other link
 * fails the read with an error naming it.
 */

/* 1 when name (len bytes) may be a path component: not "", ".", "..",
 * ".git" in any case, and no '/', '\\' or NUL.  0 otherwise. */
int	git_repo_name_ok(const char *name, size_t len);

/*
 * Normalize a link's target (tlen bytes) against linkdir, the repository-
 * relative directory holding the link ("" root, components already
 * checked).  0 and *out (malloc'd, repository-relative, no "." or ".."
 * left) when the result lies strictly under base (normalized, "" = the
 * repository); -1 with a reason in err otherwise.
 */
int	git_repo_link_target(const char *base, const char *linkdir,
	    const char *target, size_t tlen, char **out, char *err,
	    size_t errlen);

/*
 * Open an existing clone at path (from git_repo_prepare) for reading,
 * under its lock, without fetching; close with git_repo_close.  Handles
 * opened this way have no branch: use git_repo_resolve, not git_repo_head
 * or git_repo_fetch.
 */
enum git_repo_status git_repo_open_path(const char *path,
	    struct git_repo **, char *err, size_t errlen);

/*
 * The commit (hex, 41 bytes) of revision, or when NULL of branch's head:
 * refs/remotes/origin/<branch>, then refs/heads/<branch>, then HEAD.
 */
int	git_repo_resolve(struct git_repo *, const char *revision,
	    const char *branch, char out[41], char *err, size_t errlen);

/* Call cb for each file under dir.  path is relative to dir. */
typedef int git_repo_file_cb(const char *path, const char *data, size_t len,
	    void *arg);

struct git_repo_walk {
	const char	*dir;		/* repository-relative; "" or "." root */
	size_t		 max_bytes;	/* larger files: data NULL, len = size */
	int		 links;		/* 1: read in-bounds links (above);
					 * 0: skip every link */
	int		 missing_ok;	/* dir absent: 0 instead of an error */
	int		(*want)(const char *path, void *arg); /* NULL: all */
	git_repo_file_cb *cb;		/* nonzero stops the walk (returned) */
	void		*arg;
};

/* Walk commit's tree under w->dir in tree order: 0, -1 or cb's value. */
int	git_repo_walk(struct git_repo *, const char *commit,
	    const struct git_repo_walk *, char *err, size_t errlen);

/*
 * For the update-image job: call cb for each .yaml/.yml file under dir
 * (missing: none) with its repository-relative path; links are skipped
 * (an edit through one would rewrite another file).
 */
int	git_repo_read_files(struct git_repo *, const char *commit,
	    const char *dir, size_t max_bytes, git_repo_file_cb *, void *arg,
	    char *err, size_t errlen);

/*
 * Write commit's whole tree into destdir (created: it must not exist), for
 * renderers that read beyond the app (kustomize's ../base).  Links are
 * checked against base, the app path.  Regular files only (0600, 0700
 * when executable); no symlink is ever created; at most max_total bytes.
 */
int	git_repo_export(struct git_repo *, const char *commit,
	    const char *base, const char *destdir, size_t max_total,
	    char *err, size_t errlen);

/*
 * Tests only: called from libgit2's push negotiation, after the remote
 * advertised its refs and before the pack is sent (a race window).
 */
typedef void git_repo_push_hook(void *arg);
void	git_repo_set_push_hook(git_repo_push_hook *, void *arg);

#endif
