/*
 * hookjson.h: small cJSON helpers for the webhook handlers (handlers/hookjson.c).
 *
 * Every getter takes a dotted path ("repository.clone_url") and, on a
 * missing required field or a value of the wrong JSON type, sets the hook
 * result to 400 with the field name, so a handler reads a payload as a
 * list of one-line lookups and rejects it whole on the first bad field.
 */
#ifndef GITOPSD_HOOKJSON_H
#define GITOPSD_HOOKJSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct hook_result;

#define HOOKJSON_OPTIONAL	0x0
#define HOOKJSON_REQUIRED	0x1	/* absent or null: 400 "missing field" */

/*
 * Parse body as one JSON value with handler_json_parse (strict: UTF-8,
 * nothing after the value, bounded depth, no duplicate keys).  Returns the
 * tree (cJSON_Delete) or NULL with res set to 400 and the reason.
 */
cJSON		*hookjson_parse(const char *body, size_t len, struct hook_result *);
/* Parse and require an object at the top. */
cJSON		*hookjson_parse_object(const char *body, size_t len,
		    struct hook_result *);

/* The item at a dotted path, or NULL when a step is missing. */
const cJSON	*hookjson_get(const cJSON *root, const char *path);

/*
 * A string at path: *out points into the tree (NULL when absent/null and
 * optional).  Returns 0, or -1 with res set to 400.
 */
int		 hookjson_str(const cJSON *root, const char *path, int flags,
		    const char **out, struct hook_result *);
/* Same, and the string must be non-empty. */
int		 hookjson_str_nonempty(const cJSON *root, const char *path,
		    int flags, const char **out, struct hook_result *);
/* A boolean; absent/null (when optional) gives 0. */
int		 hookjson_bool(const cJSON *root, const char *path, int flags,
		    int *out, struct hook_result *);
/* An integral number; absent/null (when optional) gives 0. */
int		 hookjson_int(const cJSON *root, const char *path, int flags,
		    int64_t *out, struct hook_result *);
/* An array (or NULL when absent/null and optional). */
int		 hookjson_array(const cJSON *root, const char *path, int flags,
		    const cJSON **out, struct hook_result *);
/* An object (or NULL when absent/null and optional). */
int		 hookjson_object(const cJSON *root, const char *path, int flags,
		    const cJSON **out, struct hook_result *);

/*
 * A commit id at path: 40 (SHA-1) or 64 (SHA-256) hex digits, copied
 * lowercased into a new string in *out.  Returns 0 or -1 with 400.
 */
int		 hookjson_commit(const cJSON *root, const char *path, int flags,
		    char **out, struct hook_result *);

/* 1 if s is a commit id made only of zeros (a created or deleted ref). */
int		 hookjson_commit_is_zero(const char *);
/* 1 if s is 40 or 64 hex digits. */
int		 hookjson_is_commit(const char *);

/* At most this many paths are kept per event; reaching it means "some
 * paths are unknown" (paths_complete must be 0). */
#define HOOKJSON_MAX_PATHS	1024

/*
 * Add the strings of the array commits[commit].<key> (added, modified,
 * removed) to the event's paths, skipping duplicates.  Returns 0, or -1
 * with 400 naming the field when it is not an array of strings.  (The
 * name is formatted only then: a push has three such arrays per commit.)
 */
struct hook_event;
int		 hookjson_add_paths(struct hook_event *, const cJSON *arr,
		    long commit, const char *key, struct hook_result *);

/* RFC 3339 / ISO 8601 UTC time ("2026-11-26T06:21:37Z", offsets and
 * fractions allowed) to unix ms; -1 if malformed. */
int64_t		 hookjson_time_ms(const char *);

/* xstrdup that passes NULL through. */
char		*hookjson_dup(const char *);

#endif
