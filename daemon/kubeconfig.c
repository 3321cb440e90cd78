/*
 * kubeconfig.c: kubeconfig files and in-cluster service accounts.
 *
 * The file is read through yaml_json (libyaml) into a tree; the named
 * context picks a cluster and a user entry.  Unknown keys are ignored, as
 * kubectl does, except those that change how to connect or authenticate
 * and that gitopsd cannot honour (exec, auth-provider, proxy-url,
 * tls-server-name, impersonation): those are refused by name, so a
 * kubeconfig never silently means something else.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "kubeconfig.h"
#include "util.h"
#include "yaml_json.h"

#define KC_MAX_FILE	(4u * 1024 * 1024)
#define KC_MAX_PEM	(1u * 1024 * 1024)

void
kubeconfig_free(struct kubeconfig *kc)
{
	if (kc == NULL)
		return;
	free(kc->server);
	free(kc->ca_file);
	free(kc->ca_data);
	free(kc->cert_file);
	free(kc->cert_data);
	if (kc->key_data != NULL)
		memset(kc->key_data, 0, kc->key_len);
	free(kc->key_file);
	free(kc->key_data);
	if (kc->token != NULL)
		memset(kc->token, 0, strlen(kc->token));
	free(kc->token);
	free(kc->username);
	if (kc->password != NULL)
		memset(kc->password, 0, strlen(kc->password));
	free(kc->password);
	free(kc->namespace);
	free(kc);
}

static int
kubeconfig_b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode standard base64 (whitespace ignored); malloc'd, NUL-terminated. */
static char *
kubeconfig_b64decode(const char *in, size_t *lenp)
{
	size_t		 n = strlen(in), o = 0, i;
	unsigned	 acc = 0;
	int		 bits = 0, v, pad = 0;
	char		*out;

	if (n > KC_MAX_PEM * 2)
		return NULL;
	out = xmalloc(n / 4 * 3 + 4);
	for (i = 0; i < n; i++) {
		if (in[i] == '\n' || in[i] == '\r' || in[i] == ' ' ||
		    in[i] == '\t')
			continue;
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = kubeconfig_b64val((unsigned char)in[i])) < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (o == 0) {
		free(out);
		return NULL;
	}
	out[o] = '\0';
	*lenp = o;
	return out;
}

/* A path inside a kubeconfig, made absolute against the file's directory. */
static char *
kubeconfig_path(const char *dir, const char *p)
{
	if (p[0] == '/' || dir == NULL)
		return xstrdup(p);
	return xasprintf("%s/%s", dir, p);
}

static const char *
kubeconfig_str(const cJSON *obj, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' ?
	    v->valuestring : NULL;
}

/* Find {name: N, <field>: {...}} in a named list ("clusters", "users"...). */
static const cJSON *
kubeconfig_named(const cJSON *root, const char *list, const char *field,
    const char *name)
{
	const cJSON	*arr = cJSON_GetObjectItemCaseSensitive(root, list);
	const cJSON	*e;
	const char	*n;

	cJSON_ArrayForEach(e, arr) {
		if ((n = kubeconfig_str(e, "name")) != NULL &&
		    strcmp(n, name) == 0)
			return cJSON_GetObjectItemCaseSensitive(e, field);
	}
	return NULL;
}

/* A file the kubeconfig names must exist and be readable now. */
static int
kubeconfig_readable(const char *what, const char *path, char *err,
    size_t errlen)
{
	if (access(path, R_OK) == -1) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* file or -data pair: exactly what kubectl accepts (data wins). */
static int
kubeconfig_pem(const cJSON *obj, const char *key, const char *dir,
    char **file, char **data, size_t *len, char *err, size_t errlen)
{
	char		 dkey[64];
	const char	*s;

	snprintf(dkey, sizeof(dkey), "%s-data", key);
	if ((s = kubeconfig_str(obj, dkey)) != NULL) {
		if ((*data = kubeconfig_b64decode(s, len)) == NULL) {
			snprintf(err, errlen, "%s is not valid base64", dkey);
			return -1;
		}
		return 0;
	}
	if ((s = kubeconfig_str(obj, key)) != NULL) {
		*file = kubeconfig_path(dir, s);
		return kubeconfig_readable(key, *file, err, errlen);
	}
	return 0;
}

static int
kubeconfig_refuse(const cJSON *obj, const char *const *keys, size_t n,
    const char *where, char *err, size_t errlen)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (cJSON_GetObjectItemCaseSensitive(obj, keys[i]) != NULL) {
			snprintf(err, errlen, "%s uses \"%s\", which gitopsd does "
			    "not support%s", where, keys[i],
			    strcmp(keys[i], "exec") == 0 ||
			    strcmp(keys[i], "auth-provider") == 0 ?
			    " (use a service account token: token or tokenFile,"
			    " or a client certificate)" : "");
			return -1;
		}
	}
	return 0;
}

static int
kubeconfig_server(struct kubeconfig *kc, const char *server, int insecure_ok,
    char *err, size_t errlen)
{
	size_t	 n, scheme;

	if (strncmp(server, "https://", 8) != 0 &&
	    !(strncmp(server, "http://", 7) == 0 && insecure_ok)) {
		snprintf(err, errlen, "server \"%.100s\" must be an https:// URL%s",
		    server, strncmp(server, "http://", 7) == 0 ?
		    " (plain http needs allow_insecure: true)" : "");
		return -1;
	}
	/*
	 * Trailing slashes go (paths are appended to the server), but not
	 * into the scheme: "https:///" has no host and is not "https:".
	 */
	scheme = server[4] == 's' ? 8 : 7;
	n = strlen(server);
	while (n > scheme && server[n - 1] == '/')
		n--;
	if (n == scheme || server[scheme] == '/') {
		snprintf(err, errlen, "server \"%.100s\" has no host", server);
		return -1;
	}
	kc->server = xstrndup(server, n);
	return 0;
}

static struct kubeconfig *
kubeconfig_from_tree(const cJSON *root, const char *dir, const char *context,
    int allow_insecure, char *err, size_t errlen)
{
	static const char *const user_refused[] = { "exec", "auth-provider",
		"as", "as-groups", "as-uid", "as-user-extra" };
	static const char *const cluster_refused[] = { "proxy-url",
		"tls-server-name" };
	struct kubeconfig	*kc = xcalloc(1, sizeof(*kc));
	const cJSON		*ctx, *cl, *user, *v;
	const char		*cname, *uname, *server, *s;
	char			 where[128], sub[256];

	if (context == NULL)
		context = kubeconfig_str(root, "current-context");
	if (context == NULL) {
		snprintf(err, errlen, "no context given and no current-context");
		goto fail;
	}
	if ((ctx = kubeconfig_named(root, "contexts", "context", context)) ==
	    NULL) {
		snprintf(err, errlen, "context \"%.100s\" not found", context);
		goto fail;
	}
	if ((cname = kubeconfig_str(ctx, "cluster")) == NULL ||
	    (cl = kubeconfig_named(root, "clusters", "cluster", cname)) == NULL) {
		snprintf(err, errlen, "context \"%.100s\": cluster \"%.100s\" not "
		    "found", context, cname != NULL ? cname : "");
		goto fail;
	}
	snprintf(where, sizeof(where), "cluster \"%.100s\"", cname);
	if (kubeconfig_refuse(cl, cluster_refused, nitems(cluster_refused),
	    where, err, errlen) == -1)
		goto fail;
	if ((server = kubeconfig_str(cl, "server")) == NULL) {
		snprintf(err, errlen, "%s has no server", where);
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify");
	kc->insecure = cJSON_IsTrue(v);
	if (kc->insecure && !allow_insecure) {
		snprintf(err, errlen, "%s sets insecure-skip-tls-verify; set "
		    "allow_insecure: true on the gitopsd cluster to accept an "
		    "unverified server", where);
		goto fail;
	}
	if (kubeconfig_server(kc, server, allow_insecure, err, errlen) == -1)
		goto fail;
	if (kubeconfig_pem(cl, "certificate-authority", dir, &kc->ca_file,
	    &kc->ca_data, &kc->ca_len, sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "%s: %.200s", where, sub);
		goto fail;
	}
	if ((s = kubeconfig_str(ctx, "namespace")) != NULL)
		kc->namespace = xstrdup(s);

	if ((uname = kubeconfig_str(ctx, "user")) == NULL)
		return kc;	/* anonymous */
	snprintf(where, sizeof(where), "user \"%.100s\"", uname);
	if ((user = kubeconfig_named(root, "users", "user", uname)) == NULL) {
		snprintf(err, errlen, "context \"%.100s\": %s not found",
		    context, where);
		goto fail;
	}
	if (kubeconfig_refuse(user, user_refused, nitems(user_refused), where,
	    err, errlen) == -1)
		goto fail;
	if (kubeconfig_pem(user, "client-certificate", dir, &kc->cert_file,
	    &kc->cert_data, &kc->cert_len, sub, sizeof(sub)) == -1 ||
	    kubeconfig_pem(user, "client-key", dir, &kc->key_file,
	    &kc->key_data, &kc->key_len, sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "%s: %.200s", where, sub);
		goto fail;
	}
	if ((kc->cert_file != NULL || kc->cert_data != NULL) !=
	    (kc->key_file != NULL || kc->key_data != NULL)) {
		snprintf(err, errlen, "%s: client-certificate and client-key go "
		    "together", where);
		goto fail;
	}
	if ((s = kubeconfig_str(user, "token")) != NULL)
		kc->token = xstrdup(s);
	else if ((s = kubeconfig_str(user, "tokenFile")) != NULL) {
		char	*path = kubeconfig_path(dir, s);

		kc->token = util_read_secret(path, sub, sizeof(sub));
		free(path);
		if (kc->token == NULL) {
			snprintf(err, errlen, "%s: tokenFile: %.200s", where, sub);
			goto fail;
		}
	}
	if ((s = kubeconfig_str(user, "username")) != NULL) {
		kc->username = xstrdup(s);
		s = kubeconfig_str(user, "password");
		kc->password = xstrdup(s != NULL ? s : "");
	}
	return kc;
fail:
	kubeconfig_free(kc);
	return NULL;
}

struct kubeconfig *
kubeconfig_load_file(const char *path, const char *context,
    int allow_insecure, char *err, size_t errlen)
{
	struct kubeconfig	*kc = NULL;
	cJSON			*root = NULL;
	char			*buf = NULL, *copy = NULL, sub[512];
	size_t			 len;

	if ((buf = util_read_file(path, KC_MAX_FILE, &len)) == NULL) {
		snprintf(err, errlen, "kubeconfig %s: %s", path, strerror(errno));
		goto out;
	}
	if ((root = yaml_json_parse_one(buf, len, sub, sizeof(sub))) == NULL) {
		snprintf(err, errlen, "kubeconfig %s: %s", path, sub);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "kubeconfig %s: not a mapping", path);
		goto out;
	}
	copy = xstrdup(path);
	kc = kubeconfig_from_tree(root, dirname(copy), context, allow_insecure,
	    sub, sizeof(sub));
	if (kc == NULL)
		snprintf(err, errlen, "kubeconfig %s: %s", path, sub);
out:
	if (buf != NULL) {
		/* Inline tokens and keys were in it. */
		memset(buf, 0, len);
		free(buf);
	}
	free(copy);
	cJSON_Delete(root);
	return kc;
}

struct kubeconfig *
kubeconfig_load_in_cluster(char *err, size_t errlen)
{
	struct kubeconfig	*kc;
	const char		*dir, *host, *port;
	char			*path, sub[256];
	char			*ns;
	size_t			 len;

	if ((dir = getenv(KUBECONFIG_SA_DIR_ENV)) == NULL || dir[0] == '\0')
		dir = KUBECONFIG_SA_DIR;
	host = getenv("KUBERNETES_SERVICE_HOST");
	port = getenv("KUBERNETES_SERVICE_PORT");
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
		snprintf(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST and "
		    "KUBERNETES_SERVICE_PORT are not set (not running in a pod?)");
		return NULL;
	}
	kc = xcalloc(1, sizeof(*kc));
	kc->server = xasprintf(strchr(host, ':') != NULL ? "https://[%s]:%s" :
	    "https://%s:%s", host, port);
	path = xasprintf("%s/token", dir);
	kc->token = util_read_secret(path, sub, sizeof(sub));
	free(path);
	if (kc->token == NULL) {
		snprintf(err, errlen, "in-cluster: %s", sub);
		goto fail;
	}
	kc->ca_file = xasprintf("%s/ca.crt", dir);
	if (kubeconfig_readable("in-cluster: CA", kc->ca_file, err, errlen) ==
	    -1)
		goto fail;
	path = xasprintf("%s/namespace", dir);
	if ((ns = util_read_file(path, 256, &len)) != NULL) {
		while (len > 0 && (ns[len - 1] == '\n' || ns[len - 1] == '\r'))
			ns[--len] = '\0';
		if (len > 0)
			kc->namespace = ns;
		else
			free(ns);
	}
	free(path);
	return kc;
fail:
	kubeconfig_free(kc);
	return NULL;
}

struct kubeconfig *
kubeconfig_load(const struct config_cluster *cl, char *err, size_t errlen)
{
	if (cl->kubeconfig == NULL) {
		snprintf(err, errlen, "cluster %s: no kubeconfig", cl->name);
		return NULL;
	}
	if (strcmp(cl->kubeconfig, "in-cluster") == 0)
		return kubeconfig_load_in_cluster(err, errlen);
	return kubeconfig_load_file(cl->kubeconfig, cl->context,
	    cl->allow_insecure, err, errlen);
}

int
kubeconfig_check(const struct config_cluster *cl, char *err, size_t errlen)
{
	struct kubeconfig	*kc;

	/* In-cluster settings only exist inside the pod; check the shape. */
	if (cl->kubeconfig != NULL && strcmp(cl->kubeconfig, "in-cluster") == 0)
		return 0;
	if ((kc = kubeconfig_load(cl, err, errlen)) == NULL)
		return -1;
	kubeconfig_free(kc);
	return 0;
}
