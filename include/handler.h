/*
 * handler.h: the sender plug-in interface (DESIGN.md section 1).
 *
 * One handler per sender type (github, gitlab, registry, ...), each a const
 * struct in its own file under handlers/, listed in handler_table[]
 * (handlers/handlers.c).  The HTTP server builds a struct hook_request from
 * the raw request, looks the source up by name, and calls verify() then
 * parse().  Handlers are pure functions of the request and the source: they
 * do no I/O, so unit tests and fuzz targets call them directly.
 */
#ifndef GITOPSD_HANDLER_H
#define GITOPSD_HANDLER_H

#include <stddef.h>
#include <stdint.h>

struct config_source;

struct hook_header {
	const char	*name;
	const char	*value;
};

/* One request as received; nothing here is trusted. */
struct hook_request {
	const char		*method;	/* "POST" */
	const char		*path_token;	/* "/hooks/<name>/<token>": token, else NULL */
	const char		*query;		/* raw query string or NULL */
	const struct hook_header *headers;
	size_t			 nheaders;
	const unsigned char	*body;		/* exact bytes received */
	size_t			 body_len;
};

/* Case-insensitive header lookup; first match or NULL. */
const char	*hook_request_header(const struct hook_request *, const char *);

/*
 * Parse a Content-Type into its lowercase media type (no parameters) into
 * out.  Returns 0, or -1 if absent/malformed.
 */
int		 hook_media_type(const struct hook_request *, char *out, size_t);

enum hook_event_kind {
	HOOK_EVENT_PUSH = 1,
	HOOK_EVENT_IMAGE,
};

/* A normalized event.  All strings malloc'd, owned by the event. */
struct hook_event {
	enum hook_event_kind kind;
	char	*delivery;		/* dedup key within the source */
	char	*summary;		/* one line for logs and the API */

	/* push */
	char	*repo_name;		/* "acme/deploy" */
	char	*clone_url;		/* https clone URL */
	char	*ssh_url;		/* scp-like or ssh:// URL */
	char	*web_url;
	char	*ref;			/* "refs/heads/main" */
	char	*branch;		/* set for branch pushes */
	char	*tag;			/* set for tag pushes (also image tag) */
	char	*before;
	char	*after;			/* the commit to deploy */
	char	*pusher;
	char	**paths;		/* changed paths, when the payload lists them */
	size_t	 npaths;
	int	 paths_complete;	/* 1: paths lists every change */
	/*
	 * 1: the sender's repository paths ignore case (GitHub, GitLab,
	 * Gitea/Forgejo, Bitbucket), so "Acme/Web" is "acme/web".
	 */
	int	 path_nocase;
	/*
	 * Bitbucket Data Center: project key and repository slug.  A payload
	 * without clone links (Atlassian's documented example) is routed by
	 * these against the repo URL's path.
	 */
	char	*scm_project;
	char	*scm_slug;

	/* image (tag above is reused) */
	char	*registry;		/* normalized host, "docker.io" */
	char	*repository;		/* "library/nginx", "acme/web" */
	char	*digest;		/* "sha256:..." or NULL */
	int64_t	 pushed_at_ms;		/* 0 when unknown */
};

/*
 * What a handler answers.  status 0 means events were produced; otherwise
 * it is the HTTP status to send: 200 (ping, ignored: reason says why),
 * 400 (malformed: reason says why), 401, 415.
 */
struct hook_result {
	int			 status;
	char			 reason[256];
	struct hook_event	*events;
	size_t			 nevents;
};

struct config_plugin;

struct handler {
	const char	*type;
	/*
	 * Keys of this sender type beyond those every source has
	 * (config_schema.h), read as the source's opts; NULL: none.
	 */
	const struct config_plugin *config;
	/* The secret travels in the URL path (/hooks/<name>/<token>). */
	int		 path_token;
	/*
	 * Authenticate the request against the source's secrets.  Returns 0,
	 * or an HTTP status (401, 415) with a reason that never echoes
	 * secrets or signatures.
	 */
	int		(*verify)(const struct hook_request *,
			    const struct config_source *, char *why, size_t);
	/* Parse a verified request into res (see struct hook_result). */
	void		(*parse)(const struct hook_request *,
			    const struct config_source *, struct hook_result *);
};

extern const struct handler *const handler_table[];
extern const size_t handler_table_len;

const struct handler	*handler_find(const char *type);

/* The sources list's plug-ins, for the config core. */
extern const struct config_family handler_config_family;

/* Event helpers shared by handlers. */
struct hook_event	*hook_result_add(struct hook_result *, enum hook_event_kind);
void			 hook_result_setf(struct hook_result *, int status,
			    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void			 hook_result_free(struct hook_result *);
void			 hook_event_free(struct hook_event *);
void			 hook_event_add_path(struct hook_event *, const char *);

/*
 * Shared verification: secret-keyed HMAC-SHA256 hex over msg compared in
 * constant time with sig_hex (no prefix); any of the source's secrets
 * verifies (rotation).  Returns 0 on match.
 */
int	handler_check_hmac256(const struct config_source *, const void *msg,
	    size_t len, const char *sig_hex);
int	handler_check_hmac1(const struct config_source *, const void *msg,
	    size_t len, const char *sig_hex);
/*
 * Strict JSON for payloads (handlers/json_parse.c, one pass): valid UTF-8,
 * nothing after the value, nesting at most HANDLER_JSON_MAX_DEPTH, no
 * duplicate keys in an object, no \u0000 or other escape cJSON would cut
 * a string at, finite numbers.  Returns the cJSON tree cJSON would build
 * (cJSON_Delete or handler_json_delete) or NULL with the reason in why.
 */
#define HANDLER_JSON_MAX_DEPTH	64
struct cJSON;
struct cJSON	*handler_json_parse(const void *body, size_t len, char *why,
		    size_t whylen);

/*
 * While a handler parses on this thread, cJSON allocates from a reused
 * per-thread arena (handlers/json_arena.c): bracket parse() with _begin()
 * and _end(); nothing cJSON allocated inside may be kept past _end().
 * handler_json_init() installs the allocator; call it before starting
 * threads (begin() calls it too, for single-threaded programs).
 */
void	handler_json_init(void);
void	handler_json_arena_begin(void);
void	handler_json_arena_end(void);
/* Memory as cJSON's allocator hands it out on this thread (the arena
 * inside a bracket, else malloc): what handler_json_parse builds with. */
void	*handler_json_alloc(size_t);
/* 1 if p is arena memory of this thread's open bracket (tests). */
int	handler_json_arena_owns(const void *p);
/*
 * cJSON_Delete for what handler_json_parse() returned: a tree in the open
 * arena is left to _end() (walking 500 nodes to free nothing cost 5% of
 * the loop), any other tree is deleted.
 */
void	handler_json_delete(struct cJSON *);

/* Constant-time compare of a presented token with any of the secrets. */
int	handler_check_token(const struct config_source *, const char *presented);

#endif
