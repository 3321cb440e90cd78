/*
 * gitssh.c: the SSH transport gitopsd gives libgit2 in place of its own.
 *
 * DESIGN
 * - Why: libgit2 1.5.1's SSH transport (Debian 12) leaks on every
 *   connection, whatever the caller does: it loads ~/.ssh/known_hosts into
 *   a libssh2 known-hosts handle that it frees only when the connection
 *   fails (libgit2 issue 6598, fixed in 1.7), and it clears instead of
 *   freeing the two strings that built that file's path from $HOME.
 *   gitopsd never wanted that file (host keys are checked against
 *   repos[].auth.known_hosts_file), so this transport does not read it.
 * - What: libgit2's smart protocol stays libgit2's (git_transport_smart);
 *   this file is the subtransport under it, as libgit2's ssh.c is: one
 *   libssh2 session and one channel running git-upload-pack or
 *   git-receive-pack.  The host key goes to the remote's certificate_check
 *   callback and the credentials come from its credentials callback, with
 *   the same arguments, return codes and (where libgit2 has one) error text
 *   as libgit2's transport, so git.c's checks and classes stay as they
 *   were.  A host key the callback does not accept is refused: nothing
 *   here trusts a key by itself.  Methods are listed once per session
 *   (see gitssh_authenticate).
 * - Deadlines: the TCP connection is gitnet's (gitnet_connect), so its
 *   connect is bounded and the watchdog shuts it down when it stalls;
 *   libssh2 then fails the blocked read.  Every channel read and write
 *   that moves bytes restarts the stall clock.
 * - Threads: libgit2 runs a transport on the thread that called it; a
 *   session is never shared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <git2/sys/credential.h>
#include <git2/sys/stream.h>
#include <git2/sys/transport.h>
#include <libssh2.h>

#include "gitnet.h"
#include "gitssh.h"
#include "util.h"

/* libgit2 sends scp-like URLs (no "://") to whatever handles "ssh". */
static const char *const gitssh_schemes[] = { "ssh", "ssh+git", "git+ssh" };
#define GITSSH_NSCHEMES	(sizeof(gitssh_schemes) / sizeof(gitssh_schemes[0]))

struct gitssh_url {
	char	*user;		/* NULL: ask the credentials callback */
	char	*password;	/* NULL unless the URL has user:password */
	char	*host;
	char	*port;
	char	*path;		/* as the server's shell gets it */
};

struct gitssh_sub;

struct gitssh_stream {
	git_smart_subtransport_stream	 parent;	/* first: cast */
	struct gitssh_sub		*sub;
	git_stream			*io;
	LIBSSH2_SESSION			*session;
	LIBSSH2_CHANNEL			*channel;
};

struct gitssh_sub {
	git_smart_subtransport		 parent;	/* first: cast */
	git_transport			*owner;
	struct gitssh_stream		*cur;
};

/* A GIT_ERROR_SSH "what: libssh2's last error". */
static void
gitssh_error(LIBSSH2_SESSION *session, const char *what)
{
	char	 msg[512], *why = NULL;

	if (session != NULL)
		libssh2_session_last_error(session, &why, NULL, 0);
	snprintf(msg, sizeof(msg), "%s: %s", what,
	    why != NULL && why[0] != '\0' ? why : "unknown error");
	git_error_set_str(GIT_ERROR_SSH, msg);
}

/* n bytes of s with %XX escapes decoded (kept as written if malformed). */
static char *
gitssh_unescape(const char *s, size_t n)
{
	char	*out = xmalloc(n + 1);

	if (util_urldecode(s, n, out, 0) == -1) {
		memcpy(out, s, n);
		out[n] = '\0';
	}
	return out;
}

static void
gitssh_url_free(struct gitssh_url *u)
{
	free(u->user);
	free(u->password);
	free(u->host);
	free(u->port);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

/*
 * Split "host", "host:port", "[host]" or "[host]:port" (n bytes of s);
 * brackets allow a port in scp-like URLs and IPv6 addresses in both forms.
 */
static int
gitssh_url_hostport(struct gitssh_url *u, const char *s, size_t n)
{
	const char	*rb, *colon;

	if (n > 0 && s[0] == '[') {
		if ((rb = memchr(s, ']', n)) == NULL)
			return -1;
		u->host = gitssh_unescape(s + 1, (size_t)(rb - s - 1));
		if ((size_t)(rb - s) + 1 < n) {
			if (rb[1] != ':')
				return -1;
			u->port = xstrndup(rb + 2, n - (size_t)(rb - s) - 2);
		}
	} else {
		colon = memchr(s, ':', n);
		u->host = gitssh_unescape(s, colon != NULL ?
		    (size_t)(colon - s) : n);
		if (colon != NULL)
			u->port = xstrndup(colon + 1,
			    n - (size_t)(colon - s) - 1);
	}
	if (u->port != NULL && u->port[0] == '\0') {
		free(u->port);
		u->port = NULL;
	}
	if (u->port == NULL)
		u->port = xstrdup("22");
	return u->host[0] == '\0' ? -1 : 0;
}

/*
 * ssh://[user[:password]@]host[:port]/path (also ssh+git://, git+ssh://)
 * or scp-like [user@]host:path, [user@][host:port]:path, as libgit2 1.5
 * reads them: the path of a URL keeps its leading '/' except before '~';
 * an scp-like path is sent as written (relative to the login's home).
 */
static int
gitssh_url_parse(struct gitssh_url *u, const char *url)
{
	const char	*p, *end, *at, *colon, *rb;
	int		 rc;

	memset(u, 0, sizeof(*u));
	if ((p = strstr(url, "://")) != NULL && p > url &&
	    strspn(url, "abcdefghijklmnopqrstuvwxyz+") == (size_t)(p - url)) {
		p += 3;
		end = p + strcspn(p, "/");
		if (*end != '/' || end[1] == '\0')
			goto bad;
		if ((at = memrchr(p, '@', (size_t)(end - p))) != NULL) {
			colon = memchr(p, ':', (size_t)(at - p));
			u->user = gitssh_unescape(p, (size_t)((colon != NULL ?
			    colon : at) - p));
			if (colon != NULL)
				u->password = gitssh_unescape(colon + 1,
				    (size_t)(at - colon - 1));
			p = at + 1;
		}
		if (gitssh_url_hostport(u, p, (size_t)(end - p)) == -1)
			goto bad;
		u->path = xstrdup(end[1] == '~' ? end + 1 : end);
		return 0;
	}
	p = url;
	if ((at = strchr(url, '@')) != NULL && at < url + strcspn(url, ":[")) {
		u->user = xstrndup(url, (size_t)(at - url));
		p = at + 1;
	}
	if (*p == '[') {
		/* [host:port]:path, or [IPv6]:path (more than one ':'). */
		if ((rb = strchr(p, ']')) == NULL || rb[1] != ':' ||
		    rb[2] == '\0')
			goto bad;
		colon = memchr(p, ':', (size_t)(rb - p));
		if (colon != NULL && memchr(colon + 1, ':',
		    (size_t)(rb - colon - 1)) == NULL)
			rc = gitssh_url_hostport(u, p + 1, (size_t)(rb - p - 1));
		else
			rc = gitssh_url_hostport(u, p, (size_t)(rb + 1 - p));
		end = rb + 1;
	} else if ((end = strchr(p, ':')) == NULL || end[1] == '\0')
		goto bad;
	else
		rc = gitssh_url_hostport(u, p, (size_t)(end - p));
	if (rc == -1)
		goto bad;
	u->path = xstrdup(end + 1);
	return 0;
bad:
	gitssh_url_free(u);
	return -1;
}

int
gitssh_url_host(const char *url, char *host, size_t hostlen, int *port)
{
	struct gitssh_url	 u;
	char			*end;
	long			 v;
	int			 rc = -1;

	host[0] = '\0';
	*port = 0;
	if (gitssh_url_parse(&u, url) == -1)
		return -1;
	errno = 0;
	v = strtol(u.port, &end, 10);
	if (end != u.port && *end == '\0' && errno == 0 && v >= 1 &&
	    v <= 65535)
		*port = (int)v;
	if (strlen(u.host) < hostlen) {
		memcpy(host, u.host, strlen(u.host) + 1);
		rc = 0;
	}
	gitssh_url_free(&u);
	return rc;
}

/* "cmd 'path'" with the path quoted for the server's shell, as git does. */
static char *
gitssh_command(const char *cmd, const char *path)
{
	size_t	 n = strlen(cmd) + 4, i, o;
	char	*out;

	for (i = 0; path[i] != '\0'; i++)
		n += path[i] == '\'' ? 4 : 1;
	out = xmalloc(n);
	o = (size_t)snprintf(out, n, "%s '", cmd);
	for (i = 0; path[i] != '\0'; i++) {
		if (path[i] == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else
			out[o++] = path[i];
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

static git_cert_ssh_raw_type_t
gitssh_raw_type(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return GIT_CERT_SSH_RAW_TYPE_RSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return GIT_CERT_SSH_RAW_TYPE_DSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return GIT_CERT_SSH_RAW_TYPE_KEY_ED25519;
	default:
		return GIT_CERT_SSH_RAW_TYPE_UNKNOWN;
	}
}

/* The server's host key to the certificate_check callback: 0 if accepted. */
static int
gitssh_check_hostkey(struct gitssh_sub *t, LIBSSH2_SESSION *session,
    const char *host)
{
	git_cert_hostkey	 cert;
	const char		*key, *hash;
	size_t			 len;
	int			 type, rc;

	if ((key = libssh2_session_hostkey(session, &len, &type)) == NULL) {
		gitssh_error(session, "failed to retrieve hostkey");
		return -1;
	}
	memset(&cert, 0, sizeof(cert));
	cert.parent.cert_type = GIT_CERT_HOSTKEY_LIBSSH2;
	cert.type = GIT_CERT_SSH_RAW;
	cert.hostkey = key;
	cert.hostkey_len = len;
	cert.raw_type = gitssh_raw_type(type);
	if ((hash = libssh2_hostkey_hash(session,
	    LIBSSH2_HOSTKEY_HASH_SHA256)) != NULL) {
		cert.type |= GIT_CERT_SSH_SHA256;
		memcpy(cert.hash_sha256, hash, sizeof(cert.hash_sha256));
	}
	if ((hash = libssh2_hostkey_hash(session,
	    LIBSSH2_HOSTKEY_HASH_SHA1)) != NULL) {
		cert.type |= GIT_CERT_SSH_SHA1;
		memcpy(cert.hash_sha1, hash, sizeof(cert.hash_sha1));
	}
	if ((hash = libssh2_hostkey_hash(session,
	    LIBSSH2_HOSTKEY_HASH_MD5)) != NULL) {
		cert.type |= GIT_CERT_SSH_MD5;
		memcpy(cert.hash_md5, hash, sizeof(cert.hash_md5));
	}
	git_error_clear();
	rc = git_transport_smart_certificate_check(t->owner, &cert.parent, 0,
	    host);
	if (rc == 0)
		return 0;
	if (rc == GIT_PASSTHROUGH) {
		git_error_set_str(GIT_ERROR_SSH,
		    "invalid or unknown remote ssh hostkey");
		return GIT_ECERTIFICATE;
	}
	if (git_error_last() == NULL)
		git_error_set_str(GIT_ERROR_NET, "user canceled hostkey check");
	return rc;
}

/* The credential types the server offers user (0: none, or it said yes). */
static int
gitssh_methods(LIBSSH2_SESSION *session, const char *user, int *methods)
{
	const char	*list, *p;
	size_t		 n;

	*methods = 0;
	list = libssh2_userauth_list(session, user, (unsigned int)strlen(user));
	if (list == NULL) {
		if (libssh2_userauth_authenticated(session))
			return 0;
		gitssh_error(session, "Failed to retrieve list of SSH "
		    "authentication methods");
		return GIT_EAUTH;
	}
	for (p = list; *p != '\0'; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n == 9 && strncmp(p, "publickey", n) == 0)
			*methods |= GIT_CREDENTIAL_SSH_KEY |
			    GIT_CREDENTIAL_SSH_CUSTOM;
		else if (n == 8 && strncmp(p, "password", n) == 0)
			*methods |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		else if (n == 20 && strncmp(p, "keyboard-interactive", n) == 0)
			*methods |= GIT_CREDENTIAL_SSH_INTERACTIVE;
	}
	return 0;
}

/* Log in with cred: 0, GIT_EAUTH when refused (try again), -1 on error. */
static int
gitssh_login(LIBSSH2_SESSION *session, git_credential *cred)
{
	git_credential_ssh_key			*k;
	git_credential_userpass_plaintext	*up;
	int					 rc;

	switch (cred->credtype) {
	case GIT_CREDENTIAL_SSH_KEY:
		k = (git_credential_ssh_key *)cred;
		if (k->privatekey == NULL) {
			git_error_set_str(GIT_ERROR_SSH, "SSH agent "
			    "credentials are not supported");
			return -1;
		}
		rc = libssh2_userauth_publickey_fromfile(session, k->username,
		    k->publickey, k->privatekey, k->passphrase);
		break;
	case GIT_CREDENTIAL_USERPASS_PLAINTEXT:
		up = (git_credential_userpass_plaintext *)cred;
		rc = libssh2_userauth_password(session, up->username,
		    up->password);
		break;
	default:
		rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED;
		break;
	}
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
	    rc == LIBSSH2_ERROR_PASSWORD_EXPIRED)
		return GIT_EAUTH;
	if (rc != 0) {
		gitssh_error(session, "Failed to authenticate SSH session");
		return -1;
	}
	return 0;
}

/* Ask the credentials callback; GIT_EAUTH when there is none. */
static int
gitssh_ask(struct gitssh_sub *t, git_credential **cred, const char *user,
    int methods)
{
	int	 rc;

	*cred = NULL;
	rc = git_transport_smart_credentials(cred, t->owner, user, methods);
	if (rc == GIT_PASSTHROUGH) {
		git_error_set_str(GIT_ERROR_SSH,
		    "authentication required but no callback set");
		return GIT_EAUTH;
	}
	if (rc < 0)
		return rc;
	if (*cred == NULL) {
		git_error_set_str(GIT_ERROR_SSH,
		    "callback failed to initialize SSH credentials");
		return -1;
	}
	if (((*cred)->credtype & (unsigned int)methods) == 0) {
		git_credential_free(*cred);
		*cred = NULL;
		git_error_set_str(GIT_ERROR_SSH, "authentication callback "
		    "returned unsupported credentials type");
		return GIT_EAUTH;
	}
	return 0;
}

/*
 * Authenticate the session as the URL's user (or the one the callback
 * names), asking the callback again after each refusal until it gives up,
 * as libgit2's transport does.  The methods are listed once: libssh2 1.10
 * drops the previous list unfreed when asked again on the same session.
 */
static int
gitssh_authenticate(struct gitssh_sub *t, LIBSSH2_SESSION *session,
    struct gitssh_url *u)
{
	git_credential	*cred = NULL;
	const char	*name;
	int		 methods, rc;

	if (u->user == NULL) {
		if ((rc = gitssh_ask(t, &cred, NULL,
		    GIT_CREDENTIAL_USERNAME)) < 0)
			return rc;
		name = git_credential_get_username(cred);
		u->user = xstrdup(name != NULL ? name : "");
		git_credential_free(cred);
		cred = NULL;
	}
	if ((rc = gitssh_methods(session, u->user, &methods)) < 0)
		return rc;
	if (libssh2_userauth_authenticated(session))
		return 0;
	rc = GIT_EAUTH;
	if (u->password != NULL &&
	    (methods & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
		if (git_credential_userpass_plaintext_new(&cred, u->user,
		    u->password) < 0)
			return -1;
		rc = gitssh_login(session, cred);
		git_credential_free(cred);
		cred = NULL;
	}
	while (rc == GIT_EAUTH) {
		if ((rc = gitssh_ask(t, &cred, u->user, methods)) < 0)
			return rc;
		name = git_credential_get_username(cred);
		if (name == NULL || strcmp(name, u->user) != 0) {
			git_credential_free(cred);
			git_error_set_str(GIT_ERROR_SSH,
			    "username does not match previous request");
			return -1;
		}
		rc = gitssh_login(session, cred);
		git_credential_free(cred);
		cred = NULL;
	}
	return rc;
}

static int
gitssh_stream_read(git_smart_subtransport_stream *stream, char *buf,
    size_t size, size_t *n)
{
	struct gitssh_stream	*s = (struct gitssh_stream *)stream;
	char			 msg[512];
	ssize_t			 r;

	*n = 0;
	if ((r = libssh2_channel_read(s->channel, buf, size)) < 0) {
		gitssh_error(s->session, "SSH could not read data");
		return -1;
	}
	/* Nothing on stdout: the server's reason, if any, is on stderr. */
	if (r == 0) {
		r = libssh2_channel_read_stderr(s->channel, buf, size);
		if (r < 0) {
			gitssh_error(s->session, "SSH could not read stderr");
			return -1;
		}
		if (r > 0) {
			while (r > 0 && (buf[r - 1] == '\n' ||
			    buf[r - 1] == '\r'))
				r--;
			snprintf(msg, sizeof(msg), "%.*s", (int)r, buf);
			git_error_set_str(GIT_ERROR_SSH, msg);
			return GIT_EEOF;
		}
	}
	if (r > 0)
		gitnet_touch();
	*n = (size_t)r;
	return 0;
}

static int
gitssh_stream_write(git_smart_subtransport_stream *stream, const char *buf,
    size_t len)
{
	struct gitssh_stream	*s = (struct gitssh_stream *)stream;
	size_t			 off = 0;
	ssize_t			 r;

	while (off < len) {
		if ((r = libssh2_channel_write(s->channel, buf + off,
		    len - off)) < 0) {
			gitssh_error(s->session, "SSH could not write data");
			return -1;
		}
		off += (size_t)r;
		gitnet_touch();
	}
	return 0;
}

static void
gitssh_stream_free(git_smart_subtransport_stream *stream)
{
	struct gitssh_stream	*s = (struct gitssh_stream *)stream;

	if (s == NULL)
		return;
	if (s->sub != NULL && s->sub->cur == s)
		s->sub->cur = NULL;
	if (s->channel != NULL) {
		libssh2_channel_close(s->channel);
		libssh2_channel_free(s->channel);
	}
	if (s->session != NULL) {
		libssh2_session_disconnect(s->session, "closing transport");
		libssh2_session_free(s->session);
	}
	if (s->io != NULL) {
		s->io->close(s->io);
		s->io->free(s->io);
	}
	free(s);
}

/* Connect, check the host key, log in and start cmd on the server. */
static int
gitssh_open(struct gitssh_sub *t, const char *url, const char *cmd,
    git_smart_subtransport_stream **out)
{
	struct gitssh_stream	*s;
	struct gitssh_url	 u;
	char			*line = NULL;
	int			 rc = -1;

	*out = NULL;
	if (gitssh_url_parse(&u, url) == -1) {
		git_error_set_str(GIT_ERROR_NET, "malformed SSH URL");
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->parent.subtransport = &t->parent;
	s->parent.read = gitssh_stream_read;
	s->parent.write = gitssh_stream_write;
	s->parent.free = gitssh_stream_free;
	s->sub = t;
	if (gitnet_connect(&s->io, u.host, u.port) == -1)
		goto out;
	if ((s->session = libssh2_session_init()) == NULL) {
		git_error_set_str(GIT_ERROR_NET,
		    "failed to initialize SSH session");
		goto out;
	}
	libssh2_session_set_blocking(s->session, 1);
	if (libssh2_session_handshake(s->session, gitnet_fd(s->io)) != 0) {
		gitssh_error(s->session, "failed to start SSH session");
		goto out;
	}
	if ((rc = gitssh_check_hostkey(t, s->session, u.host)) < 0 ||
	    (rc = gitssh_authenticate(t, s->session, &u)) < 0)
		goto out;
	rc = -1;
	if ((s->channel = libssh2_channel_open_session(s->session)) == NULL) {
		gitssh_error(s->session, "Failed to open SSH channel");
		goto out;
	}
	line = gitssh_command(cmd, u.path);
	if (libssh2_channel_exec(s->channel, line) != 0) {
		gitssh_error(s->session, "SSH could not execute request");
		goto out;
	}
	t->cur = s;
	*out = &s->parent;
	rc = 0;
out:
	if (rc != 0)
		gitssh_stream_free(&s->parent);
	free(line);
	gitssh_url_free(&u);
	return rc;
}

static int
gitssh_action(git_smart_subtransport_stream **out,
    git_smart_subtransport *sub, const char *url, git_smart_service_t action)
{
	struct gitssh_sub	*t = (struct gitssh_sub *)sub;

	*out = NULL;
	switch (action) {
	case GIT_SERVICE_UPLOADPACK_LS:
		return gitssh_open(t, url, "git-upload-pack", out);
	case GIT_SERVICE_RECEIVEPACK_LS:
		return gitssh_open(t, url, "git-receive-pack", out);
	case GIT_SERVICE_UPLOADPACK:
	case GIT_SERVICE_RECEIVEPACK:
		/* The same channel that listed the refs carries the pack. */
		if (t->cur != NULL) {
			*out = &t->cur->parent;
			return 0;
		}
		git_error_set_str(GIT_ERROR_NET,
		    "SSH: the refs must be listed before the pack is sent");
		return -1;
	}
	git_error_set_str(GIT_ERROR_NET, "SSH: unknown service");
	return -1;
}

static int
gitssh_close(git_smart_subtransport *sub)
{
	(void)sub;
	return 0;
}

static void
gitssh_free(git_smart_subtransport *sub)
{
	free(sub);
}

static int
gitssh_sub_new(git_smart_subtransport **out, git_transport *owner,
    void *param)
{
	struct gitssh_sub	*t = xcalloc(1, sizeof(*t));

	(void)param;
	t->owner = owner;
	t->parent.action = gitssh_action;
	t->parent.close = gitssh_close;
	t->parent.free = gitssh_free;
	*out = &t->parent;
	return 0;
}

/* One SSH connection per ls/pack pair: not stateless RPC, like git://. */
static git_smart_subtransport_definition gitssh_definition = {
	gitssh_sub_new, 0, NULL
};

static int
gitssh_transport_new(git_transport **out, git_remote *owner, void *param)
{
	(void)param;
	return git_transport_smart(out, owner, &gitssh_definition);
}

int
gitssh_init(char *err, size_t errlen)
{
	size_t	 i;

	for (i = 0; i < GITSSH_NSCHEMES; i++)
		if (git_transport_register(gitssh_schemes[i],
		    gitssh_transport_new, NULL) < 0) {
			snprintf(err, errlen, "git %s transport: %s",
			    gitssh_schemes[i], git_error_last() != NULL ?
			    git_error_last()->message : "cannot register");
			while (i-- > 0)
				git_transport_unregister(gitssh_schemes[i]);
			return -1;
		}
	return 0;
}

void
gitssh_shutdown(void)
{
	size_t	 i;

	for (i = 0; i < GITSSH_NSCHEMES; i++)
		git_transport_unregister(gitssh_schemes[i]);
}
