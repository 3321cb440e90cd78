/*
 * pr.h: the review flow of image updates (daemon/pr.c): templated branch
 * names and the pull/merge request REST clients of GitHub, GitLab, Gitea
 * and Bitbucket Cloud (DESIGN.md section 12, docs/review-flow.md).
 *
 * Templates are strict: "{{name}}" or "{{ name }}" with a known name; an
 * unknown name or a "{{" without "}}" is an error found when the
 * configuration is checked.  The REST calls block (libcurl easy handle):
 * they run on the update-image job's worker thread.
 */
#ifndef GITOPSD_PR_H
#define GITOPSD_PR_H

#include <stddef.h>

#include "config_schema.h"

struct buf;
struct config_repo;

/* The value of a template variable; NULL: unknown name. */
typedef const char *pr_var_fn(const char *name, void *arg);

/* Append tmpl rendered to out: 0, or -1 with err saying where. */
int	 pr_render(const char *tmpl, pr_var_fn *, void *arg, struct buf *out,
	    char *err, size_t errlen);

/* 1 when name is a valid branch name (git check-ref-format rules for
 * refs/heads/<name>), else 0. */
int	 pr_branch_name_ok(const char *name);

/* 1 when s holds template braces: a push_branch per update. */
int	 pr_is_template(const char *s);

/* Config checks: 0, or -1 with err.  Variables of each template:
 * branch: app image tag short_sha; title/body: app image repository old
 * new tag digest event repo branch job. */
int	 pr_check_branch(const char *tmpl, char *err, size_t errlen);
int	 pr_check_text(const char *tmpl, char *err, size_t errlen);

/* The values the branch template sees. */
struct pr_branch_vars {
	const char	*app, *image, *tag, *short_sha;
};
/* Render and validate a branch name: malloc'd, or NULL with err. */
char	*pr_branch_expand(const char *tmpl, const struct pr_branch_vars *,
	    char *err, size_t errlen);

/* The same with {{tag}} and {{short_sha}} rendered as "*": where the
 * branches of this update's other tags differ. */
char	*pr_branch_pattern(const char *tmpl, const struct pr_branch_vars *,
	    char *err, size_t errlen);

/* One image change listed in a pull request. */
struct pr_change {
	const char	*app;
	const char	*image;		/* short name (marker) */
	const char	*repository;	/* normalized image repository */
	const char	*old, *new_tag, *digest;
	const char	*event;		/* delivery id of the event */
	long long	 job;
};

struct pr_outcome {
	char		*url;		/* web URL of the PR/MR (malloc'd) */
	long long	 number;
	int		 created;	/* 1 opened now, 0 an open one updated */
	int		 permanent;	/* failure retrying cannot fix */
	int		 auth;		/* 401/403: the token */
	int		 retry_after_s;	/* >0: rate limited, not before */
};

/*
 * Open a pull request from head to base of repo, or update the open one
 * whose source is head (never a second one).  Returns 0 with out->url, or
 * -1 with err (never holding the token) and out's failure fields.
 */
int	 pr_ensure(const struct config_repo *, const char *head,
	    const char *base, const struct pr_change *, size_t nchanges,
	    struct pr_outcome *out, char *err, size_t errlen);
void	 pr_outcome_free(struct pr_outcome *);

/* 1 when the open PR from branch is superseded by the new one. */
typedef int pr_stale_fn(const char *branch, void *arg);

/*
 * Close (Bitbucket: decline) the open PRs, other than head's, whose source
 * branch stale() says is superseded.  *urls (malloc'd, *nurls) lists those
 * closed, also on -1.
 */
int	 pr_close_stale(const struct config_repo *, const char *head,
	    pr_stale_fn *stale, void *arg, char ***urls, size_t *nurls,
	    struct pr_outcome *out, char *err, size_t errlen);

/*
 * Was a pull request from head closed without being merged?  1 with
 * out->url (that update is not proposed again), 0 no, -1 with err.
 */
int	 pr_declined(const struct config_repo *, const char *head,
	    struct pr_outcome *out, char *err, size_t errlen);

/*
 * Owner (group path, workspace) and repository name from a Git URL's
 * path, whatever the host: https://h/a/b/c.git -> "a/b", "c"; scp-like
 * git@h:a/c.git too.  0, or -1 when the path has fewer than two parts.
 */
int	 pr_repo_path(const char *url, char **owner, char **name);

/* The names of enum config_pr_provider, for key tables. */
extern const struct config_enum pr_provider_enums[];

/*
 * The API URL of the repository owner/name (pr_repo_path) on provider
 * (a CONFIG_PR_* other than NONE) under api_url (NULL: the public API):
 * .../repos/o/n, .../projects/<url-encoded path>,
 * .../repositories/w/s.  malloc'd.
 */
char	*pr_repo_api_url(int provider, const char *api_url, const char *owner,
	    const char *name);
/* The provider's auth header up to the token ("PRIVATE-TOKEN: ") and its
 * Accept header. */
const char *pr_provider_auth(int provider);
const char *pr_provider_accept(int provider);

/* A refused answer, as pr_answer_fail() reads it. */
struct pr_answer {
	long		 status;
	const char	*body;		/* NULL: none */
	int		 retry_after_s;	/* Retry-After; 0: none */
	int		 rl_exhausted;	/* X-RateLimit-Remaining: 0 */
	long long	 rl_reset;	/* X-RateLimit-Reset, unix seconds */
};
/*
 * Turn a refused answer of provider into err as the host documents its
 * errors: the host's own message (never a header); 401/403 mark out
 * auth and permanent, 404 says what to check under where, a rate limit
 * sets out->retry_after_s (Retry-After, the reset, else a minute).
 * Always -1.
 */
int	 pr_answer_fail(int provider, const char *where,
	    const struct pr_answer *, const char *what, struct pr_outcome *out,
	    char *err, size_t errlen);

#endif
