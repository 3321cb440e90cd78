/*
 * hookjson.c: cJSON lookups for the webhook handlers.  Each getter names the
 * field in its 400 reason, because a sender's delivery log shows our answer
 * and "field 'ref' must be a string" is what its operator needs to read.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "hookjson.h"
#include "util.h"

cJSON *
hookjson_parse(const char *body, size_t len, struct hook_result *res)
{
	cJSON	*root;
	char	 why[200];

	/* The shared strict parser: UTF-8, depth, duplicate keys, NULs. */
	if ((root = handler_json_parse(body, len, why, sizeof(why))) == NULL) {
		hook_result_setf(res, 400, "%s", why);
		return NULL;
	}
	return root;
}

cJSON *
hookjson_parse_object(const char *body, size_t len, struct hook_result *res)
{
	cJSON	*root;

	if ((root = hookjson_parse(body, len, res)) == NULL)
		return NULL;
	if (!cJSON_IsObject(root)) {
		handler_json_delete(root);
		hook_result_setf(res, 400, "body is not a JSON object");
		return NULL;
	}
	return root;
}

/*
 * cJSON_GetObjectItemCaseSensitive for the n bytes at key, without copying
 * them and testing the first byte before the rest: a push has objects of
 * about a hundred keys, looked up many times.
 */
static const cJSON *
hookjson_member(const cJSON *obj, const char *key, size_t n)
{
	const cJSON	*c;

	for (c = obj->child; c != NULL; c = c->next) {
		if (c->string == NULL || c->string[0] != key[0])
			continue;
		if (strncmp(c->string, key, n) == 0 && c->string[n] == '\0')
			return c;
	}
	return NULL;
}

const cJSON *
hookjson_get(const cJSON *root, const char *path)
{
	const cJSON	*cur = root;
	const char	*p = path, *dot;
	size_t		 n;

	while (cur != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (!cJSON_IsObject(cur))
			return NULL;
		cur = hookjson_member(cur, p, n);
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

/* Shared presence check: 1 present, 0 absent and allowed, -1 error set. */
static int
hookjson_present(const cJSON *it, const char *path, int flags,
    struct hook_result *res)
{
	if (it == NULL || cJSON_IsNull(it)) {
		if (flags & HOOKJSON_REQUIRED) {
			hook_result_setf(res, 400, "missing field '%s'", path);
			return -1;
		}
		return 0;
	}
	return 1;
}

int
hookjson_str(const cJSON *root, const char *path, int flags, const char **out,
    struct hook_result *res)
{
	const cJSON	*it = hookjson_get(root, path);
	int		 p;

	*out = NULL;
	if ((p = hookjson_present(it, path, flags, res)) <= 0)
		return p;
	if (!cJSON_IsString(it) || it->valuestring == NULL) {
		hook_result_setf(res, 400, "field '%s' must be a string", path);
		return -1;
	}
	*out = it->valuestring;
	return 0;
}

int
hookjson_str_nonempty(const cJSON *root, const char *path, int flags,
    const char **out, struct hook_result *res)
{
	if (hookjson_str(root, path, flags, out, res) == -1)
		return -1;
	if (*out != NULL && **out == '\0') {
		if (flags & HOOKJSON_REQUIRED) {
			hook_result_setf(res, 400, "field '%s' is empty", path);
			return -1;
		}
		*out = NULL;
	}
	return 0;
}

int
hookjson_bool(const cJSON *root, const char *path, int flags, int *out,
    struct hook_result *res)
{
	const cJSON	*it = hookjson_get(root, path);
	int		 p;

	*out = 0;
	if ((p = hookjson_present(it, path, flags, res)) <= 0)
		return p;
	if (!cJSON_IsBool(it)) {
		hook_result_setf(res, 400, "field '%s' must be a boolean", path);
		return -1;
	}
	*out = cJSON_IsTrue(it) ? 1 : 0;
	return 0;
}

int
hookjson_int(const cJSON *root, const char *path, int flags, int64_t *out,
    struct hook_result *res)
{
	const cJSON	*it = hookjson_get(root, path);
	double		 d;
	int		 p;

	*out = 0;
	if ((p = hookjson_present(it, path, flags, res)) <= 0)
		return p;
	if (!cJSON_IsNumber(it)) {
		hook_result_setf(res, 400, "field '%s' must be a number", path);
		return -1;
	}
	d = cJSON_GetNumberValue(it);
	/* 2^53: beyond it a double no longer holds every integer. */
	if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) {
		hook_result_setf(res, 400, "field '%s' must be an integer",
		    path);
		return -1;
	}
	*out = (int64_t)d;
	return 0;
}

int
hookjson_array(const cJSON *root, const char *path, int flags,
    const cJSON **out, struct hook_result *res)
{
	const cJSON	*it = hookjson_get(root, path);
	int		 p;

	*out = NULL;
	if ((p = hookjson_present(it, path, flags, res)) <= 0)
		return p;
	if (!cJSON_IsArray(it)) {
		hook_result_setf(res, 400, "field '%s' must be an array", path);
		return -1;
	}
	*out = it;
	return 0;
}

int
hookjson_object(const cJSON *root, const char *path, int flags,
    const cJSON **out, struct hook_result *res)
{
	const cJSON	*it = hookjson_get(root, path);
	int		 p;

	*out = NULL;
	if ((p = hookjson_present(it, path, flags, res)) <= 0)
		return p;
	if (!cJSON_IsObject(it)) {
		hook_result_setf(res, 400, "field '%s' must be an object", path);
		return -1;
	}
	*out = it;
	return 0;
}

int
hookjson_is_commit(const char *s)
{
	size_t	 i, n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n != 40 && n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
hookjson_commit_is_zero(const char *s)
{
	if (!hookjson_is_commit(s))
		return 0;
	return s[strspn(s, "0")] == '\0';
}

int
hookjson_commit(const cJSON *root, const char *path, int flags, char **out,
    struct hook_result *res)
{
	const char	*s;
	char		*c;
	size_t		 i;

	*out = NULL;
	if (hookjson_str(root, path, flags, &s, res) == -1)
		return -1;
	if (s == NULL)
		return 0;
	if (!hookjson_is_commit(s)) {
		hook_result_setf(res, 400, "field '%s' is not a commit id",
		    path);
		return -1;
	}
	c = xstrdup(s);
	for (i = 0; c[i] != '\0'; i++)
		c[i] = (char)tolower((unsigned char)c[i]);
	*out = c;
	return 0;
}

int
hookjson_add_paths(struct hook_event *ev, const cJSON *arr, long commit,
    const char *key, struct hook_result *res)
{
	const cJSON	*it;
	size_t		 i;
	int		 dup;

	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		hook_result_setf(res, 400,
		    "field 'commits[%ld].%s' must be an array", commit, key);
		return -1;
	}
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || it->valuestring == NULL) {
			hook_result_setf(res, 400,
			    "field 'commits[%ld].%s' must hold strings", commit,
			    key);
			return -1;
		}
		/* Past the cap the list is no longer complete (callers check
		 * npaths against it) and stops costing quadratic time. */
		if (ev->npaths >= HOOKJSON_MAX_PATHS)
			continue;
		dup = 0;
		for (i = 0; i < ev->npaths && !dup; i++)
			dup = strcmp(ev->paths[i], it->valuestring) == 0;
		if (!dup)
			hook_event_add_path(ev, it->valuestring);
	}
	return 0;
}

int64_t
hookjson_time_ms(const char *s)
{
	struct tm	 tm;
	const char	*p;
	char		*end;
	int64_t		 ms = 0, off = 0;
	time_t		 t;
	int		 sign, n, scale;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		p++;
		for (n = 0, scale = 100; isdigit((unsigned char)*p); p++, n++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
		if (n == 0)
			return -1;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		long hh = strtol(p + 1, &end, 10);
		if (end != p + 3 || *end != ':')
			return -1;
		long mm = strtol(end + 1, &end, 10);
		if (end != p + 6 || hh > 23 || mm > 59)
			return -1;
		off = sign * (hh * 3600 + mm * 60);
		p = end;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return ((int64_t)t - off) * 1000 + ms;
}

char *
hookjson_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}
