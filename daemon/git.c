/*
 * git.c: local bare clones of configured repositories with libgit2.
 *
 * DESIGN: one bare clone per repository under workdir, never checked out.
 * Every operation on a clone runs under that repository's mutex (a small
 * table keyed by repository name), so a sync reading while an update-image
 * job fetches and pushes never sees a half-written ref.  libgit2 objects
 * are not shared between threads: each call opens its own git_repository.
 * Errors: git_error_last() is thread-local, so its text is copied into the
 * caller's buffer before any other libgit2 call can replace it.  Secrets
 * (passwords, passphrases) are handed to libgit2 only; never to messages.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "gitnet.h"
#include "gitrepo.h"
#include "gitssh.h"
#include "log.h"
#include "util.h"


struct git_repo {
	git_repository		*repo;
	struct repo_lock		*lock;
	const struct config_repo *cfg;
	char			*path;
	char			*tracking;	/* refs/remotes/origin/<branch> */
	int			 timeout_s;	/* git.timeout_s */
};

/* Per-clone mutexes (keyed by path); entries live until shutdown. */
struct repo_lock {
	char			*name;
	pthread_mutex_t		 mutex;
	struct gitnet_op	*op;	/* holder's network operation, or NULL;
					   under repo_locks_mutex */
	struct repo_lock		*next;
};

static pthread_mutex_t	 repo_locks_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct repo_lock	*repo_locks;

static git_repo_push_hook *repo_push_hook;
static void		*repo_push_hook_arg;

/* State shared with libgit2's callbacks during one remote operation. */
struct repo_cb_state {
	const struct config_repo *cfg;
	int		 cred_tries;
	int		 auth_failed;		/* credentials refused or missing */
	int		 hostkey_failed;
	char		 reason[256];		/* why a callback refused */
	int		 rejected;		/* push_update_reference status */
	char		 reject_msg[256];
};

int
git_repo_global_init(void)
{
	char	 err[256];

	if (git_libgit2_init() < 0)
		return -1;
	if (gitnet_init(err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		git_libgit2_shutdown();
		return -1;
	}
	if (gitssh_init(err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		gitnet_shutdown();
		git_libgit2_shutdown();
		return -1;
	}
	return 0;
}

void
git_repo_global_shutdown(void)
{
	struct repo_lock	*l, *next;

	pthread_mutex_lock(&repo_locks_mutex);
	for (l = repo_locks; l != NULL; l = next) {
		next = l->next;
		pthread_mutex_destroy(&l->mutex);
		free(l->name);
		free(l);
	}
	repo_locks = NULL;
	pthread_mutex_unlock(&repo_locks_mutex);
	gitssh_shutdown();
	gitnet_shutdown();
	git_libgit2_shutdown();
}

void
git_repo_set_push_hook(git_repo_push_hook *hook, void *arg)
{
	repo_push_hook = hook;
	repo_push_hook_arg = arg;
}

static struct repo_lock *
repo_lock_get(const char *name)
{
	struct repo_lock	*l;

	pthread_mutex_lock(&repo_locks_mutex);
	for (l = repo_locks; l != NULL; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->name = xstrdup(name);
		pthread_mutex_init(&l->mutex, NULL);
		l->next = repo_locks;
		repo_locks = l;
	}
	pthread_mutex_unlock(&repo_locks_mutex);
	return l;
}

/* Publish (or withdraw, op NULL) the lock holder's network operation. */
static void
repo_lock_set_op(struct repo_lock *l, struct gitnet_op *op)
{
	pthread_mutex_lock(&repo_locks_mutex);
	l->op = op;
	pthread_mutex_unlock(&repo_locks_mutex);
}

/*
 * Take a clone's lock.  A job that waits behind another job's stalled
 * fetch or push would hold its worker for that operation's deadline and
 * then stall on the same remote itself, so that one stalled remote could
 * take every worker.  Once the holder has had no data for half its
 * deadline (1 to 10 s) the waiter gives up: its attempt fails and is
 * retried later, and its worker runs other repositories' jobs.
 */
static int
repo_lock_take(struct repo_lock *l, int timeout_s, char *err, size_t errlen)
{
	struct timespec	 ts;
	int64_t		 idle, limit;
	int		 e;

	limit = (int64_t)(timeout_s > 0 ? timeout_s : 120) * 500;
	limit = limit < 1000 ? 1000 : limit > 10000 ? 10000 : limit;
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if ((e = pthread_mutex_timedlock(&l->mutex, &ts)) == 0)
			return 0;
		if (e != ETIMEDOUT) {
			snprintf(err, errlen, "clone lock: %s", strerror(e));
			return -1;
		}
		pthread_mutex_lock(&repo_locks_mutex);
		idle = l->op != NULL ? gitnet_idle_ms(l->op) : 0;
		pthread_mutex_unlock(&repo_locks_mutex);
		if (idle >= limit) {
			snprintf(err, errlen, "busy: another job's fetch or push "
			    "of this repository has had no data from the remote "
			    "for %lld s", (long long)(idle / 1000));
			return -1;
		}
	}
}

/* Copy libgit2's thread-local error text (or a callback's reason). */
static void
repo_errcopy(char *err, size_t errlen, const char *what,
    const struct repo_cb_state *st)
{
	const git_error	*e = git_error_last();

	if (st != NULL && st->reason[0] != '\0')
		snprintf(err, errlen, "%s: %s", what, st->reason);
	else
		snprintf(err, errlen, "%s: %s", what,
		    e != NULL && e->message != NULL ? e->message :
		    "unknown libgit2 error");
}

/* Classify a failed libgit2 remote call. */
static enum git_repo_status
repo_classify(int error, const struct repo_cb_state *st)
{
	const git_error	*e = git_error_last();

	if (st != NULL && (st->auth_failed || st->hostkey_failed))
		return GIT_REPO_AUTH;
	if (error == GIT_EAUTH || error == GIT_ECERTIFICATE)
		return GIT_REPO_AUTH;
	if (error == GIT_ENONFASTFORWARD)
		return GIT_REPO_REJECTED;
	/*
	 * libgit2 1.5 reports a refused login or a forbidden push over
	 * HTTP only as text ("unexpected http status code: 403"); SSH
	 * login failures come as GIT_ERROR_SSH "authentication ...".
	 */
	if (e != NULL && e->message != NULL &&
	    ((e->klass == GIT_ERROR_HTTP &&
	    (strstr(e->message, "status code: 401") != NULL ||
	    strstr(e->message, "status code: 403") != NULL)) ||
	    (e->klass == GIT_ERROR_SSH &&
	    strstr(e->message, "authentication") != NULL)))
		return GIT_REPO_AUTH;
	return GIT_REPO_ERROR;
}

/* Does a known_hosts host pattern list ("a,b,[c]:2222") name host:port? */
static int
repo_kh_host_match(const char *pattern, size_t plen, const char *host, int port)
{
	char	 want[300];
	size_t	 i, start, n;

	if (port == 22)
		snprintf(want, sizeof(want), "%s", host);
	else
		snprintf(want, sizeof(want), "[%s]:%d", host, port);
	for (start = 0, i = 0; i <= plen; i++) {
		if (i < plen && pattern[i] != ',')
			continue;
		n = i - start;
		if (n > 0 && pattern[start] == '|') {
			/* |1|base64(salt)|base64(HMAC-SHA1(salt, host)) */
			unsigned char	 salt[64], hash[64], mac[EVP_MAX_MD_SIZE];
			unsigned int	 maclen = 0;
			const char	*s = pattern + start, *bar;
			char		 tmp[200];
			int		 sl, hl;

			if (n < 4 || strncmp(s, "|1|", 3) != 0)
				goto next;
			bar = memchr(s + 3, '|', n - 3);
			if (bar == NULL || (size_t)(bar - s - 3) >= sizeof(tmp) ||
			    (size_t)(s + n - bar - 1) >= sizeof(tmp))
				goto next;
			memcpy(tmp, s + 3, (size_t)(bar - s - 3));
			tmp[bar - s - 3] = '\0';
			sl = EVP_DecodeBlock(salt, (unsigned char *)tmp,
			    (int)strlen(tmp));
			memcpy(tmp, bar + 1, (size_t)(s + n - bar - 1));
			tmp[s + n - bar - 1] = '\0';
			hl = EVP_DecodeBlock(hash, (unsigned char *)tmp,
			    (int)strlen(tmp));
			if (sl < 20 || hl < 20)
				goto next;
			/* Base64 padding decodes to trailing zero bytes: 20. */
			if (HMAC(EVP_sha1(), salt, 20, (unsigned char *)want,
			    strlen(want), mac, &maclen) == NULL || maclen != 20)
				goto next;
			if (CRYPTO_memcmp(mac, hash, 20) == 0)
				return 1;
		} else if (n == strlen(want) &&
		    strncasecmp(pattern + start, want, n) == 0)
			return 1;
next:
		start = i + 1;
	}
	return 0;
}

int
git_repo_known_hosts_check(const char *file, const char *host, int port,
    const char *keytype, const unsigned char *key, size_t keylen, char *err,
    size_t errlen)
{
	char		*data, *line, *save = NULL, *fields[4];
	unsigned char	*blob = NULL;
	size_t		 len;
	int		 rc = -1, seen_host = 0, nf, revoked, bl;

	if (file == NULL) {
		snprintf(err, errlen, "no known_hosts_file configured: "
		    "refusing to trust the SSH host key of %s", host);
		return -1;
	}
	if ((data = util_read_file(file, 4 << 20, &len)) == NULL) {
		snprintf(err, errlen, "known_hosts_file %s: %s", file,
		    strerror(errno));
		return -1;
	}
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char	*p = line, *tok, *s2 = NULL;

		line[strcspn(line, "\r")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		revoked = 0;
		if (*p == '@') {
			if (strncmp(p, "@revoked", 8) == 0)
				revoked = 1;
			else
				continue;	/* @cert-authority: not supported */
			p += 8;
		}
		nf = 0;
		for (tok = strtok_r(p, " \t", &s2); tok != NULL && nf < 4;
		    tok = strtok_r(NULL, " \t", &s2))
			fields[nf++] = tok;
		if (nf < 3)
			continue;
		if (!repo_kh_host_match(fields[0], strlen(fields[0]), host, port))
			continue;
		if (strcmp(fields[1], keytype) != 0) {
			seen_host = 1;
			continue;
		}
		free(blob);
		len = strlen(fields[2]);
		blob = xmalloc(len + 1);
		bl = EVP_DecodeBlock(blob, (unsigned char *)fields[2], (int)len);
		if (bl < 0)
			continue;
		/* Strip the zero bytes that '=' padding decodes to. */
		if (len >= 1 && fields[2][len - 1] == '=')
			bl--;
		if (len >= 2 && fields[2][len - 2] == '=')
			bl--;
		seen_host = 1;
		if ((size_t)bl == keylen && memcmp(blob, key, keylen) == 0) {
			if (revoked) {
				snprintf(err, errlen, "SSH host key of %s is "
				    "marked @revoked in %s", host, file);
				goto out;
			}
			rc = 0;
			goto out;
		}
	}
	if (seen_host)
		snprintf(err, errlen, "SSH host key of %s (%s) does not match "
		    "%s: host key changed", host, keytype, file);
	else
		snprintf(err, errlen, "SSH host %s is unknown: no entry in %s",
		    host, file);
out:
	free(blob);
	free(data);
	return rc;
}

static const char *
repo_ssh_keytype(git_cert_ssh_raw_type_t t)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA:
		return "ssh-rsa";
	case GIT_CERT_SSH_RAW_TYPE_DSS:
		return "ssh-dss";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
		return "ssh-ed25519";
	default:
		return "unknown";
	}
}

/* libgit2 1.5 does not read known_hosts itself: check it here. */
static int
repo_certificate_check_cb(git_cert *cert, int valid, const char *host,
    void *payload)
{
	struct repo_cb_state	*st = payload;
	git_cert_hostkey	*hk;
	char			 h[256];
	int			 port;

	if (cert->cert_type == GIT_CERT_X509)
		return valid ? 0 : GIT_PASSTHROUGH;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
		snprintf(st->reason, sizeof(st->reason),
		    "unsupported certificate type from %s", host);
		st->hostkey_failed = 1;
		return GIT_ECERTIFICATE;
	}
	hk = (git_cert_hostkey *)cert;
	if ((hk->type & GIT_CERT_SSH_RAW) == 0) {
		snprintf(st->reason, sizeof(st->reason),
		    "no raw SSH host key from %s", host);
		st->hostkey_failed = 1;
		return GIT_ECERTIFICATE;
	}
	if (gitssh_url_host(st->cfg->url, h, sizeof(h), &port) == -1)
		snprintf(h, sizeof(h), "%s", host);
	if (git_repo_known_hosts_check(st->cfg->auth.known_hosts_file, h,
	    port, repo_ssh_keytype(hk->raw_type),
	    (const unsigned char *)hk->hostkey, hk->hostkey_len, st->reason,
	    sizeof(st->reason)) == 0)
		return 0;
	st->hostkey_failed = 1;
	return GIT_ECERTIFICATE;
}

static int
repo_credentials_cb(git_credential **out, const char *url,
    const char *username_from_url, unsigned int allowed, void *payload)
{
	struct repo_cb_state		*st = payload;
	const struct config_repo_auth	*a = &st->cfg->auth;
	const char			*user;

	(void)url;
	/* libgit2 asks again after a refusal: one try per operation. */
	if (st->cred_tries++ > 0) {
		st->auth_failed = 1;
		snprintf(st->reason, sizeof(st->reason),
		    "authentication refused by the remote");
		return GIT_EAUTH;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && a->ssh_key_file != NULL) {
		user = username_from_url != NULL ? username_from_url :
		    a->username != NULL ? a->username : "git";
		return git_credential_ssh_key_new(out, user,
		    a->ssh_pubkey_file, a->ssh_key_file, a->ssh_passphrase);
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) &&
	    a->password != NULL) {
		user = a->username != NULL ? a->username :
		    username_from_url != NULL ? username_from_url :
		    "x-access-token";
		return git_credential_userpass_plaintext_new(out, user,
		    a->password);
	}
	if ((allowed & GIT_CREDENTIAL_USERNAME) && a->username != NULL)
		return git_credential_username_new(out, a->username);
	st->auth_failed = 1;
	snprintf(st->reason, sizeof(st->reason),
	    "the remote asks for credentials and none are configured");
	return GIT_EAUTH;
}

/*
 * Progress restarts the stall clock of the operation's deadline: over SSH
 * libssh2 reads the socket itself, and these callbacks are what shows
 * that bytes are moving (see gitnet.c).
 */
static int
repo_progress_cb(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	(void)payload;
	gitnet_touch();
	return 0;
}

static int
repo_sideband_cb(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	(void)payload;
	gitnet_touch();
	return 0;
}

static int
repo_push_progress_cb(unsigned int current, unsigned int total, size_t bytes,
    void *payload)
{
	(void)current;
	(void)total;
	(void)bytes;
	(void)payload;
	gitnet_touch();
	return 0;
}

static void
repo_callbacks_init(git_remote_callbacks *cb, struct repo_cb_state *st,
    const struct config_repo *cfg)
{
	memset(st, 0, sizeof(*st));
	st->cfg = cfg;
	cb->credentials = repo_credentials_cb;
	cb->certificate_check = repo_certificate_check_cb;
	cb->transfer_progress = repo_progress_cb;
	cb->sideband_progress = repo_sideband_cb;
	cb->push_transfer_progress = repo_push_progress_cb;
	cb->payload = st;
}

/*
 * After a failed remote call: a timeout reported by the deadline's
 * watchdog wins over whatever libgit2 made of the closed socket.
 */
static enum git_repo_status
repo_remote_failed(int error, const struct repo_cb_state *st,
    struct gitnet_op *op, const char *what, char *err, size_t errlen)
{
	char	 why[128];

	if (gitnet_end(op, why, sizeof(why))) {
		snprintf(err, errlen, "%s: timed out: %s", what, why);
		return GIT_REPO_ERROR;
	}
	repo_errcopy(err, errlen, what, st);
	return repo_classify(error, st);
}

static char *
repo_clone_path(const struct config *cfg, const struct config_repo *r)
{
	return xasprintf("%s/%s.git", cfg->workdir, r->name);
}

/*
 * Create the bare clone under a temporary name and rename it into place,
 * so that a failed init (a full disk, a crash) never leaves a half-made
 * directory at path that every later job would fail to open.
 */
static int
repo_init_clone(const char *path, git_repository **out, char *err,
    size_t errlen)
{
	char	*slash, *parent = xstrdup(path), *tmp = NULL;
	int	 rc = -1;

	if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
		*slash = '\0';
		if (util_mkdirs(parent, 0750) == -1) {
			snprintf(err, errlen, "workdir %s: %s", parent,
			    strerror(errno));
			goto out;
		}
	}
	tmp = xasprintf("%s.init-XXXXXX", path);
	if (mkdtemp(tmp) == NULL) {
		snprintf(err, errlen, "init clone: %s: %s", tmp,
		    strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (git_repository_init(out, tmp, 1) < 0) {
		repo_errcopy(err, errlen, "init clone", NULL);
		goto out;
	}
	git_repository_free(*out);
	*out = NULL;
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "init clone: rename to %s: %s", path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (git_repository_open_bare(out, path) < 0) {
		repo_errcopy(err, errlen, "open clone", NULL);
		goto out;
	}
	rc = 0;
out:
	if (tmp != NULL) {
		util_rmtree(tmp);
		free(tmp);
	}
	free(parent);
	return rc;
}

/*
 * Point remote.origin at the configured URL in the clone's config, for
 * people who inspect the clone with git.  Written as plain config keys:
 * git_remote_lookup and git_remote_create would leak (see repo_remote_new).
 */
static int
repo_set_origin(git_repository *repo, const char *url)
{
	git_config	*cfg = NULL;
	git_buf		 cur = { 0 };
	int		 error;

	if ((error = git_repository_config(&cfg, repo)) < 0)
		return error;
	error = git_config_get_string_buf(&cur, cfg, "remote.origin.url");
	if (error == 0 && strcmp(cur.ptr, url) == 0)
		goto out;
	if (error < 0 && error != GIT_ENOTFOUND)
		goto out;
	if ((error = git_config_set_string(cfg, "remote.origin.url", url)) < 0)
		goto out;
	error = git_config_set_string(cfg, "remote.origin.fetch",
	    "+refs/heads/*:refs/remotes/origin/*");
out:
	git_buf_dispose(&cur);
	git_config_free(cfg);
	return error;
}

/*
 * The remote for one fetch or push: an in-memory remote with the
 * configured URL, not a lookup of "origin".  libgit2 1.5 applies
 * url.<base>.insteadOf in git_remote_lookup and git_remote_create by
 * matching a regex against every config entry, and its regex search leaks
 * the pcre2 match data of every entry that does not match (src/util/
 * regexp.c, fixed in libgit2 1.6): about 10 KB per config entry per
 * lookup, 0.2 MB per job.  An anonymous remote created with
 * GIT_REMOTE_CREATE_SKIP_INSTEADOF reads no such config, so insteadOf
 * rewrites are not applied: the configured URL is used as written.
 */
static int
repo_remote_new(git_remote **out, git_repository *repo, const char *url)
{
	git_remote_create_options	 o;

	if (git_remote_create_options_init(&o,
	    GIT_REMOTE_CREATE_OPTIONS_VERSION) < 0)
		return -1;
	o.repository = repo;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF |
	    GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(out, url, &o);
}

/* Open (or create) the bare clone and point origin at the configured URL. */
static int
repo_open_clone(const char *path, const struct config_repo *r,
    git_repository **out, char *err, size_t errlen)
{
	git_repository	*repo = NULL;
	struct stat	 sb;

	if (stat(path, &sb) == 0) {
		if (git_repository_open_bare(&repo, path) < 0) {
			repo_errcopy(err, errlen, "open clone", NULL);
			return -1;
		}
	} else if (repo_init_clone(path, &repo, err, errlen) == -1)
		return -1;
	if (repo_set_origin(repo, r->url) < 0) {
		repo_errcopy(err, errlen, "configure remote", NULL);
		git_repository_free(repo);
		return -1;
	}
	*out = repo;
	return 0;
}

/*
 * Fetch the configured branch and `extra` (else a push_branch that is not
 * a template: those name one branch per update) into refs/remotes/origin.
 */
static enum git_repo_status
repo_do_fetch(git_repository *repo, const struct config_repo *r,
    const char *extra, struct repo_lock *lk, int timeout_s, char *err,
    size_t errlen)
{
	git_fetch_options	 opts;
	struct repo_cb_state	 st;
	git_remote		*remote = NULL;
	struct gitnet_op	*op = NULL;
	char			*specs[2];
	git_strarray		 refspecs;
	const char		*branch = r->branch;
	enum git_repo_status	 rc;
	int			 error;

	specs[0] = xasprintf("+refs/heads/%s:refs/remotes/origin/%s", branch,
	    branch);
	refspecs.strings = specs;
	refspecs.count = 1;
	if (extra == NULL && r->push_branch != NULL &&
	    strstr(r->push_branch, "{{") == NULL)
		extra = r->push_branch;
	if (extra != NULL && strcmp(extra, branch) != 0) {
		specs[1] = xasprintf("+refs/heads/%s:refs/remotes/origin/%s",
		    extra, extra);
		refspecs.count = 2;
	}
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	repo_callbacks_init(&opts.callbacks, &st, r);
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	if (repo_remote_new(&remote, repo, r->url) < 0) {
		repo_errcopy(err, errlen, "fetch", NULL);
		rc = GIT_REPO_ERROR;
		goto out;
	}
	op = gitnet_begin(timeout_s);
	repo_lock_set_op(lk, op);
	error = git_remote_fetch(remote, &refspecs, &opts, "fetch");
	/* The remote's sockets go before the operation that owns them. */
	git_remote_free(remote);
	remote = NULL;
	repo_lock_set_op(lk, NULL);
	if (error < 0) {
		rc = repo_remote_failed(error, &st, op, "fetch", err, errlen);
		op = NULL;
		goto out;
	}
	rc = GIT_REPO_OK;
out:
	gitnet_end(op, NULL, 0);
	git_remote_free(remote);
	free(specs[0]);
	if (refspecs.count == 2)
		free(specs[1]);
	return rc;
}

static int
repo_head_of(git_repository *repo, const char *tracking, char out[41])
{
	git_oid	 oid;

	if (git_reference_name_to_id(&oid, repo, tracking) < 0)
		return -1;
	git_oid_tostr(out, 41, &oid);
	return 0;
}

static enum git_repo_status
repo_open_ext(const struct config *cfg, const struct config_repo *r,
    int fetch, struct git_repo **out, char *err, size_t errlen)
{
	struct git_repo		*g;
	enum git_repo_status	 rc;

	*out = NULL;
	g = xcalloc(1, sizeof(*g));
	g->cfg = r;
	g->path = repo_clone_path(cfg, r);
	g->tracking = xasprintf("refs/remotes/origin/%s", r->branch);
	g->timeout_s = cfg->git.timeout_s;
	g->lock = repo_lock_get(g->path);
	if (repo_lock_take(g->lock, g->timeout_s, err, errlen) == -1) {
		free(g->path);
		free(g->tracking);
		free(g);
		return GIT_REPO_ERROR;
	}
	if (repo_open_clone(g->path, r, &g->repo, err, errlen) == -1) {
		rc = GIT_REPO_ERROR;
		goto fail;
	}
	if (fetch && (rc = repo_do_fetch(g->repo, r, NULL, g->lock,
	    g->timeout_s, err, errlen)) != GIT_REPO_OK)
		goto fail;
	*out = g;
	return GIT_REPO_OK;
fail:
	git_repo_close(g);
	return rc;
}

enum git_repo_status
git_repo_open(const struct config *cfg, const struct config_repo *r,
    struct git_repo **out, char *err, size_t errlen)
{
	return repo_open_ext(cfg, r, 1, out, err, errlen);
}

enum git_repo_status
git_repo_open_nofetch(const struct config *cfg, const struct config_repo *r,
    struct git_repo **out, char *err, size_t errlen)
{
	return repo_open_ext(cfg, r, 0, out, err, errlen);
}

/*
 * A poll's question: connect and list the remote's refs (over smart HTTP
 * the one GET of info/refs, no upload-pack request), as a fetch would
 * begin, with its deadline, credentials and host key check, then hang up.
 */
enum git_repo_status
git_repo_remote_head(const struct config *cfg, const struct config_repo *r,
    char remote_out[41], char local_out[41], char *err, size_t errlen)
{
	git_remote_callbacks	 cb;
	struct repo_cb_state	 st;
	git_repository		*repo = NULL;
	git_remote		*remote = NULL;
	struct gitnet_op	*op = NULL;
	struct repo_lock		*lk;
	const git_remote_head	**heads;
	char			*path, *want;
	size_t			 i, n;
	enum git_repo_status	 rc = GIT_REPO_ERROR;
	int			 error;

	remote_out[0] = local_out[0] = '\0';
	path = repo_clone_path(cfg, r);
	want = xasprintf("refs/heads/%s", r->branch);
	lk = repo_lock_get(path);
	if (repo_lock_take(lk, cfg->git.timeout_s, err, errlen) == -1) {
		free(path);
		free(want);
		return GIT_REPO_ERROR;
	}
	if (repo_open_clone(path, r, &repo, err, errlen) == -1)
		goto out;
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	repo_callbacks_init(&cb, &st, r);
	if (repo_remote_new(&remote, repo, r->url) < 0) {
		repo_errcopy(err, errlen, "ls-remote", NULL);
		goto out;
	}
	op = gitnet_begin(cfg->git.timeout_s);
	repo_lock_set_op(lk, op);
	if ((error = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb,
	    NULL, NULL)) < 0 ||
	    (error = git_remote_ls(&heads, &n, remote)) < 0) {
		git_remote_free(remote);
		remote = NULL;
		repo_lock_set_op(lk, NULL);
		rc = repo_remote_failed(error, &st, op, "ls-remote", err,
		    errlen);
		op = NULL;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (strcmp(heads[i]->name, want) == 0)
			git_oid_tostr(remote_out, 41, &heads[i]->oid);
	git_remote_disconnect(remote);
	git_remote_free(remote);
	remote = NULL;
	repo_lock_set_op(lk, NULL);
	if (remote_out[0] == '\0') {
		snprintf(err, errlen, "ls-remote: the remote has no branch %s",
		    r->branch);
		goto out;
	}
	/* Already here (a job fetched it, or gitopsd pushed it): the
	 * caller need not fetch. */
	free(want);
	want = xasprintf("refs/remotes/origin/%s", r->branch);
	if (repo_head_of(repo, want, local_out) == -1)
		local_out[0] = '\0';
	rc = GIT_REPO_OK;
out:
	gitnet_end(op, NULL, 0);
	git_remote_free(remote);
	git_repository_free(repo);
	pthread_mutex_unlock(&lk->mutex);
	free(path);
	free(want);
	return rc;
}

/* Both sides of each delta (a rename is a deletion and an addition). */
static int
repo_diff_path_cb(const git_diff_delta *d, float progress, void *payload)
{
	struct git_repo_paths	*p = payload;
	const char		*side[2];
	size_t			 i;

	(void)progress;
	side[0] = d->old_file.path;
	side[1] = d->new_file.path;
	for (i = 0; i < 2; i++) {
		if (side[i] == NULL || (i == 1 && side[0] != NULL &&
		    strcmp(side[0], side[1]) == 0))
			continue;
		if (p->n == p->max) {
			p->complete = 0;
			return 1;
		}
		p->paths = xreallocarray(p->paths, p->n + 1,
		    sizeof(*p->paths));
		p->paths[p->n++] = xstrdup(side[i]);
	}
	return 0;
}

int
git_repo_changed_paths(struct git_repo *g, const char *from, const char *to,
    struct git_repo_paths *out, char *err, size_t errlen)
{
	git_oid		 a, b;
	git_commit	*ca = NULL, *cb = NULL;
	git_tree	*ta = NULL, *tb = NULL;
	git_diff	*diff = NULL;
	int		 rc = -1, error;

	out->complete = 0;
	/* A commit this clone never saw (a force push and a fresh clone):
	 * no diff to filter by. */
	if (git_oid_fromstr(&a, from) < 0 ||
	    git_commit_lookup(&ca, g->repo, &a) < 0)
		return 0;
	if (git_oid_fromstr(&b, to) < 0 ||
	    git_commit_lookup(&cb, g->repo, &b) < 0 ||
	    git_commit_tree(&ta, ca) < 0 || git_commit_tree(&tb, cb) < 0 ||
	    git_diff_tree_to_tree(&diff, g->repo, ta, tb, NULL) < 0) {
		repo_errcopy(err, errlen, "diff", NULL);
		goto out;
	}
	out->complete = 1;
	error = git_diff_foreach(diff, repo_diff_path_cb, NULL, NULL, NULL,
	    out);
	/* A callback's 1 (too many paths) comes back as 1, not an error. */
	if (error < 0) {
		repo_errcopy(err, errlen, "diff", NULL);
		out->complete = 0;
		goto out;
	}
	rc = 0;
out:
	git_diff_free(diff);
	git_tree_free(ta);
	git_tree_free(tb);
	git_commit_free(ca);
	git_commit_free(cb);
	return rc;
}

void
git_repo_paths_clear(struct git_repo_paths *p)
{
	size_t	 i;

	for (i = 0; i < p->n; i++)
		free(p->paths[i]);
	free(p->paths);
	p->paths = NULL;
	p->n = 0;
}

void
git_repo_close(struct git_repo *g)
{
	if (g == NULL)
		return;
	git_repository_free(g->repo);
	pthread_mutex_unlock(&g->lock->mutex);
	free(g->path);
	free(g->tracking);
	free(g);
}

enum git_repo_status
git_repo_fetch(struct git_repo *g, char *err, size_t errlen)
{
	return repo_do_fetch(g->repo, g->cfg, NULL, g->lock, g->timeout_s, err,
	    errlen);
}

enum git_repo_status
git_repo_fetch_branch(struct git_repo *g, const char *branch, char *err,
    size_t errlen)
{
	git_reference	*ref = NULL;
	char		*name = xasprintf("refs/remotes/origin/%s", branch);
	int		 error;

	/* A branch deleted on the remote (merged, declined) must not be
	 * found again from an earlier fetch. */
	if (git_reference_lookup(&ref, g->repo, name) == 0) {
		error = git_reference_delete(ref);
		git_reference_free(ref);
		if (error < 0) {
			repo_errcopy(err, errlen, "fetch", NULL);
			free(name);
			return GIT_REPO_ERROR;
		}
	}
	free(name);
	return repo_do_fetch(g->repo, g->cfg, branch, g->lock, g->timeout_s,
	    err, errlen);
}

int
git_repo_head(struct git_repo *g, char out[41])
{
	return repo_head_of(g->repo, g->tracking, out);
}

int
git_repo_head_of(struct git_repo *g, const char *branch, char out[41])
{
	char	*ref = xasprintf("refs/remotes/origin/%s", branch);
	int	 rc = repo_head_of(g->repo, ref, out);

	free(ref);
	return rc;
}

const char *
git_repo_path(const struct git_repo *g)
{
	return g->path;
}

int
git_repo_prepare(const struct config *cfg, const struct config_repo *r,
    char **path_out, char **head_out, char *err, size_t errlen)
{
	struct git_repo	*g;
	char		 head[41];

	*path_out = NULL;
	if (head_out != NULL)
		*head_out = NULL;
	if (git_repo_open(cfg, r, &g, err, errlen) != GIT_REPO_OK)
		return -1;
	*path_out = xstrdup(g->path);
	if (head_out != NULL && git_repo_head(g, head) == 0)
		*head_out = xstrdup(head);
	git_repo_close(g);
	return 0;
}

static int
repo_has_yaml_suffix(const char *name)
{
	size_t	 n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

int
git_repo_commit(struct git_repo *g, const char *parent,
    const struct git_repo_change *ch, size_t nch, const char *author_name,
    const char *author_email, const char *message, char out[41], char *err,
    size_t errlen)
{
	git_oid			 poid, toid, coid;
	git_commit		*pc = NULL;
	git_tree		*ptree = NULL, *ntree = NULL;
	git_signature		*sig = NULL;
	git_tree_update		*up;
	git_oid			*blobs;
	git_tree_entry		*e;
	const git_commit	*parents[1];
	size_t			 i;
	int			 rc = -1;

	up = xcalloc(nch > 0 ? nch : 1, sizeof(*up));
	blobs = xcalloc(nch > 0 ? nch : 1, sizeof(*blobs));
	if (git_oid_fromstr(&poid, parent) < 0 ||
	    git_commit_lookup(&pc, g->repo, &poid) < 0 ||
	    git_commit_tree(&ptree, pc) < 0) {
		repo_errcopy(err, errlen, "read parent commit", NULL);
		goto out;
	}
	for (i = 0; i < nch; i++) {
		if (git_blob_create_from_buffer(&blobs[i], g->repo, ch[i].data,
		    ch[i].len) < 0) {
			repo_errcopy(err, errlen, "write blob", NULL);
			goto out;
		}
		up[i].action = GIT_TREE_UPDATE_UPSERT;
		up[i].id = blobs[i];
		up[i].path = ch[i].path;
		up[i].filemode = GIT_FILEMODE_BLOB;
		if (git_tree_entry_bypath(&e, ptree, ch[i].path) == 0) {
			if (git_tree_entry_filemode(e) ==
			    GIT_FILEMODE_BLOB_EXECUTABLE)
				up[i].filemode = GIT_FILEMODE_BLOB_EXECUTABLE;
			git_tree_entry_free(e);
		}
	}
	if (git_tree_create_updated(&toid, g->repo, ptree, nch, up) < 0 ||
	    git_tree_lookup(&ntree, g->repo, &toid) < 0) {
		repo_errcopy(err, errlen, "write tree", NULL);
		goto out;
	}
	if (git_signature_now(&sig, author_name, author_email) < 0) {
		repo_errcopy(err, errlen, "author", NULL);
		goto out;
	}
	parents[0] = pc;
	if (git_commit_create(&coid, g->repo, NULL, sig, sig, NULL, message,
	    ntree, 1, parents) < 0) {
		repo_errcopy(err, errlen, "write commit", NULL);
		goto out;
	}
	git_oid_tostr(out, 41, &coid);
	rc = 0;
out:
	git_signature_free(sig);
	git_tree_free(ntree);
	git_tree_free(ptree);
	git_commit_free(pc);
	free(blobs);
	free(up);
	return rc;
}

static int
repo_push_ref_cb(const char *refname, const char *status,
    void *data)
{
	struct repo_cb_state	*st = data;

	if (status != NULL) {
		st->rejected = 1;
		snprintf(st->reject_msg, sizeof(st->reject_msg),
		    "%s rejected: %s", refname, status);
	}
	return 0;
}

static int
repo_push_neg_cb(const git_push_update **updates, size_t len,
    void *payload)
{
	(void)updates;
	(void)len;
	(void)payload;
	if (repo_push_hook != NULL)
		repo_push_hook(repo_push_hook_arg);
	return 0;
}

/* Copy obj and whatever it needs that dst lacks (trees recursively). */
static int
repo_copy_missing(git_odb *src, git_odb *dst, git_repository *repo,
    const git_oid *oid)
{
	git_odb_object	*o = NULL;
	git_tree	*tree = NULL;
	git_commit	*c = NULL;
	git_oid		 written;
	size_t		 i;
	int		 rc = -1;

	if (git_odb_exists(dst, oid))
		return 0;
	if (git_odb_read(&o, src, oid) < 0)
		return -1;
	switch (git_odb_object_type(o)) {
	case GIT_OBJECT_COMMIT:
		if (git_commit_lookup(&c, repo, oid) < 0 ||
		    repo_copy_missing(src, dst, repo, git_commit_tree_id(c)) < 0)
			goto out;
		for (i = 0; i < git_commit_parentcount(c); i++)
			if (repo_copy_missing(src, dst, repo,
			    git_commit_parent_id(c, (unsigned)i)) < 0)
				goto out;
		break;
	case GIT_OBJECT_TREE:
		if (git_tree_lookup(&tree, repo, oid) < 0)
			goto out;
		for (i = 0; i < git_tree_entrycount(tree); i++) {
			const git_tree_entry *e = git_tree_entry_byindex(tree, i);

			if (git_tree_entry_filemode(e) == GIT_FILEMODE_COMMIT)
				continue;	/* submodule: not ours */
			if (repo_copy_missing(src, dst, repo,
			    git_tree_entry_id(e)) < 0)
				goto out;
		}
		break;
	default:
		break;
	}
	if (git_odb_write(&written, dst, git_odb_object_data(o),
	    git_odb_object_size(o), git_odb_object_type(o)) < 0)
		goto out;
	rc = 0;
out:
	git_commit_free(c);
	git_tree_free(tree);
	git_odb_object_free(o);
	return rc;
}

/*
 * Local remotes (file:// or a path): libgit2's local transport moves the
 * remote ref without checking its old value, which could drop a commit
 * pushed meanwhile.  So write the objects and move the ref ourselves, with
 * a compare-and-swap against the commit's parent (the head we built on).
 */
static enum git_repo_status
repo_push_local(struct git_repo *g, const char *url, const git_oid *oid,
    const char *branch, char *err, size_t errlen)
{
	git_repository		*remote = NULL;
	git_odb			*src = NULL, *dst = NULL;
	git_commit		*c = NULL;
	git_reference		*ref = NULL, *cur = NULL;
	char			*refname = NULL;
	const char		*path = url;
	enum git_repo_status	 rc = GIT_REPO_ERROR;
	int			 error;

	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	refname = xasprintf("refs/heads/%s", branch);
	if (git_repository_open_ext(&remote, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
	    NULL) < 0 || git_repository_odb(&src, g->repo) < 0 ||
	    git_repository_odb(&dst, remote) < 0 ||
	    git_commit_lookup(&c, g->repo, oid) < 0) {
		repo_errcopy(err, errlen, "push", NULL);
		goto out;
	}
	if (repo_copy_missing(src, dst, g->repo, oid) < 0) {
		repo_errcopy(err, errlen, "push: copy objects", NULL);
		goto out;
	}
	if (repo_push_hook != NULL)
		repo_push_hook(repo_push_hook_arg);
	if (git_commit_parentcount(c) == 0) {
		snprintf(err, errlen, "push: refusing a root commit");
		goto out;
	}
	if (git_reference_lookup(&cur, remote, refname) == GIT_ENOTFOUND)
		/* A new branch (push_branch): create it, unless it appeared. */
		error = git_reference_create(&ref, remote, refname, oid, 0,
		    "gitopsd: push");
	else
		error = git_reference_create_matching(&ref, remote, refname,
		    oid, 1, git_commit_parent_id(c, 0), "gitopsd: push");
	if (error == GIT_EMODIFIED || error == GIT_ENOTFOUND ||
	    error == GIT_EEXISTS) {
		snprintf(err, errlen, "push: %s rejected: the branch moved "
		    "(non-fast-forward)", refname);
		rc = GIT_REPO_REJECTED;
		goto out;
	}
	if (error < 0) {
		repo_errcopy(err, errlen, "push", NULL);
		goto out;
	}
	rc = GIT_REPO_OK;
out:
	git_reference_free(cur);
	git_reference_free(ref);
	git_commit_free(c);
	git_odb_free(dst);
	git_odb_free(src);
	git_repository_free(remote);
	free(refname);
	return rc;
}

enum git_repo_status
git_repo_push(struct git_repo *g, const char *commit, const char *branch,
    char *err, size_t errlen)
{
	git_push_options	 opts;
	struct repo_cb_state	 st;
	git_remote		*remote = NULL;
	struct gitnet_op	*op = NULL;
	git_reference		*ref = NULL;
	git_oid			 oid;
	git_strarray		 specs;
	char			*spec = NULL;
	enum git_repo_status	 rc = GIT_REPO_ERROR;
	int			 error;

	if (strncmp(g->cfg->url, "file://", 7) == 0 || g->cfg->url[0] == '/') {
		if (git_oid_fromstr(&oid, commit) < 0) {
			snprintf(err, errlen, "push: bad commit id");
			return GIT_REPO_ERROR;
		}
		return repo_push_local(g, g->cfg->url, &oid, branch, err,
		    errlen);
	}
	/* A local ref to push from; "+" is never used: no force. */
	if (git_oid_fromstr(&oid, commit) < 0 ||
	    git_reference_create(&ref, g->repo, "refs/gitopsd/push", &oid, 1,
	    "gitopsd push") < 0) {
		repo_errcopy(err, errlen, "push", NULL);
		goto out;
	}
	spec = xasprintf("refs/gitopsd/push:refs/heads/%s", branch);
	specs.strings = &spec;
	specs.count = 1;
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	repo_callbacks_init(&opts.callbacks, &st, g->cfg);
	opts.callbacks.push_update_reference = repo_push_ref_cb;
	opts.callbacks.push_negotiation = repo_push_neg_cb;
	if (repo_remote_new(&remote, g->repo, g->cfg->url) < 0) {
		repo_errcopy(err, errlen, "push", NULL);
		goto out;
	}
	op = gitnet_begin(g->timeout_s);
	repo_lock_set_op(g->lock, op);
	error = git_remote_push(remote, &specs, &opts);
	git_remote_free(remote);
	remote = NULL;
	repo_lock_set_op(g->lock, NULL);
	if (error < 0) {
		rc = repo_remote_failed(error, &st, op, "push", err, errlen);
		op = NULL;
		goto out;
	}
	if (st.rejected) {
		snprintf(err, errlen, "push: %s", st.reject_msg);
		rc = GIT_REPO_REJECTED;
		goto out;
	}
	rc = GIT_REPO_OK;
out:
	gitnet_end(op, NULL, 0);
	free(spec);
	git_remote_free(remote);
	git_reference_free(ref);
	return rc;
}


/* ---- reading trees ------------------------------------------------------
 *
 * Every path taken from a tree goes through git_repo_name_ok before it is
 * joined to anything: a bare clone fetches whatever a server sends, and
 * git's own refusal of "..", ".git" and the like happens only at checkout,
 * which never happens here.  A symlink is never followed on disk nor
 * written as one: its target is normalized inside the commit's tree and
 * must name a regular file under the reader's base (the app path); that
 * file's content then stands in for the link.  Anything else is an error
 * naming the link, as Argo CD fails on out-of-bounds symlinks.
 */

#define GIT_TREE_MAX_DEPTH	128

int
git_repo_name_ok(const char *name, size_t len)
{
	if (len == 0 || memchr(name, '\0', len) != NULL ||
	    memchr(name, '/', len) != NULL || memchr(name, '\\', len) != NULL)
		return 0;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	/* Any case: a case-insensitive file system folds .GIT into .git. */
	return !(len == 4 && strncasecmp(name, ".git", 4) == 0);
}

/*
 * Append the components of s[0, len) to the normalized path out (*olen
 * bytes, "" is the root; out has room for *olen + len + 2).  "" and "."
 * components are dropped; ".." removes one when dots is set and is refused
 * otherwise, as is going above the root or a refused name.
 */
static int
repo_path_append(char *out, size_t *olen, const char *s, size_t len, int dots)
{
	const char	*c;
	size_t		 i = 0, j, clen;

	while (i < len) {
		for (j = i; j < len && s[j] != '/'; j++)
			;
		c = s + i;
		clen = j - i;
		i = j + 1;
		if (clen == 0 || (clen == 1 && c[0] == '.'))
			continue;
		if (clen == 2 && c[0] == '.' && c[1] == '.') {
			if (!dots || *olen == 0)
				return -1;
			while (*olen > 0 && out[*olen - 1] != '/')
				(*olen)--;
			if (*olen > 0)
				(*olen)--;
			continue;
		}
		if (!git_repo_name_ok(c, clen))
			return -1;
		if (*olen > 0)
			out[(*olen)++] = '/';
		memcpy(out + *olen, c, clen);
		*olen += clen;
	}
	out[*olen] = '\0';
	return 0;
}

/* dir as a tree path: "./apps/web/" is "apps/web", "." and NULL are "". */
static int
repo_norm_dir(const char *dir, char **out, char *err, size_t errlen)
{
	size_t	 n = 0, len = dir != NULL ? strlen(dir) : 0;
	char	 esc[256];

	*out = xmalloc(len + 2);
	if (repo_path_append(*out, &n, dir != NULL ? dir : "", len, 0) == -1) {
		log_escape(dir, len, esc, sizeof(esc));
		snprintf(err, errlen, "path %s refused", esc);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
git_repo_link_target(const char *base, const char *linkdir,
    const char *target, size_t tlen, char **out, char *err, size_t errlen)
{
	size_t	 n = 0, blen = strlen(base), dlen = strlen(linkdir);
	char	*p, esc[256];

	*out = NULL;
	log_escape(target, tlen, esc, sizeof(esc));
	if (tlen == 0 || target[0] == '/' || memchr(target, '\0', tlen) !=
	    NULL) {
		snprintf(err, errlen, "target \"%s\" is absolute or empty", esc);
		return -1;
	}
	p = xmalloc(dlen + tlen + 2);
	p[0] = '\0';
	if (repo_path_append(p, &n, linkdir, dlen, 0) == -1 ||
	    repo_path_append(p, &n, target, tlen, 1) == -1 || n == 0 ||
	    (blen > 0 && (strncmp(p, base, blen) != 0 || p[blen] != '/'))) {
		snprintf(err, errlen, "target \"%s\" leaves %s", esc,
		    blen > 0 ? base : "the repository");
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

enum git_repo_status
git_repo_open_path(const char *path, struct git_repo **out, char *err,
    size_t errlen)
{
	struct git_repo	*g;

	*out = NULL;
	g = xcalloc(1, sizeof(*g));
	g->path = xstrdup(path);
	g->lock = repo_lock_get(g->path);
	/* Behind a stalled fetch or push, give up as a job would (0: the
	 * default deadline). */
	if (repo_lock_take(g->lock, 0, err, errlen) == -1) {
		free(g->path);
		free(g);
		return GIT_REPO_ERROR;
	}
	/* Tests hand in non-bare repositories; the daemon's clones are bare. */
	if (git_repository_open_bare(&g->repo, path) < 0 &&
	    git_repository_open(&g->repo, path) < 0) {
		repo_errcopy(err, errlen, path, NULL);
		git_repo_close(g);
		return GIT_REPO_ERROR;
	}
	*out = g;
	return GIT_REPO_OK;
}

int
git_repo_resolve(struct git_repo *g, const char *revision, const char *branch,
    char out[41], char *err, size_t errlen)
{
	git_object	*obj = NULL, *c = NULL;
	char		*ref, esc[256];
	int		 rc = -1;

	if (revision != NULL) {
		if (git_revparse_single(&obj, g->repo, revision) < 0) {
			log_escape(revision, strlen(revision), esc, sizeof(esc));
			snprintf(err, errlen, "revision %.64s not found in the "
			    "repository (not fetched yet?)", esc);
			return -1;
		}
	} else if (branch == NULL) {
		/* No branch named (a bare path): whatever HEAD is. */
		if (git_revparse_single(&obj, g->repo, "HEAD") < 0) {
			snprintf(err, errlen, "no HEAD commit");
			return -1;
		}
	} else {
		ref = xasprintf("refs/remotes/origin/%s", branch);
		if (git_revparse_single(&obj, g->repo, ref) < 0) {
			free(ref);
			ref = xasprintf("refs/heads/%s", branch);
			if (git_revparse_single(&obj, g->repo, ref) < 0 &&
			    git_revparse_single(&obj, g->repo, "HEAD") < 0) {
				snprintf(err, errlen, "branch %.100s not found",
				    branch);
				free(ref);
				return -1;
			}
		}
		free(ref);
	}
	if (git_object_peel(&c, obj, GIT_OBJECT_COMMIT) < 0) {
		repo_errcopy(err, errlen, "not a commit", NULL);
		goto out;
	}
	git_oid_tostr(out, 41, git_object_id(c));
	rc = 0;
out:
	git_object_free(c);
	git_object_free(obj);
	return rc;
}

/* One walk or export over a commit's tree. */
struct repo_tw {
	git_repository		*repo;
	git_tree		*root;		/* the commit's: link targets */
	const char		*base;		/* normalized; links stay inside */
	size_t			 skip;		/* of base + "/" in walk paths */
	const struct git_repo_walk *opt;	/* walk; NULL: export */
	const char		*destdir;	/* export */
	size_t			 total, max_total;
	char			*err;
	size_t			 errlen;
	int			 cbrc;
};

/* The tree at dir (normalized) of commit: 0, 1 when dir is absent, -1. */
static int
repo_tw_open(struct repo_tw *t, const char *commit, const char *dir,
    git_tree **out)
{
	git_oid		 oid;
	git_commit	*c = NULL;
	git_tree_entry	*e = NULL;
	int		 rc = -1;

	*out = NULL;
	if (git_oid_fromstr(&oid, commit) < 0 ||
	    git_commit_lookup(&c, t->repo, &oid) < 0 ||
	    git_commit_tree(&t->root, c) < 0) {
		repo_errcopy(t->err, t->errlen, "read commit", NULL);
		goto out;
	}
	if (*dir == '\0') {
		if (git_tree_dup(out, t->root) < 0) {
			repo_errcopy(t->err, t->errlen, "read commit", NULL);
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (git_tree_entry_bypath(&e, t->root, dir) < 0) {
		rc = 1;
		goto out;
	}
	if (git_tree_entry_type(e) != GIT_OBJECT_TREE ||
	    git_tree_lookup(out, t->repo, git_tree_entry_id(e)) < 0) {
		snprintf(t->err, t->errlen, "path %.200s is not a directory at "
		    "this revision", dir);
		goto out;
	}
	rc = 0;
out:
	git_tree_entry_free(e);
	git_commit_free(c);
	return rc;
}

/* The regular file the link at path (in dir) stands for. */
static int
repo_tw_link(struct repo_tw *t, const char *path, const char *dir,
    const git_blob *link, git_blob **out)
{
	git_tree_entry	*e = NULL;
	char		*target = NULL, why[400];
	int		 rc = -1;

	*out = NULL;
	if (git_repo_link_target(t->base, dir, git_blob_rawcontent(link),
	    (size_t)git_blob_rawsize(link), &target, why, sizeof(why)) == -1) {
		snprintf(t->err, t->errlen, "%s: symlink refused: %s", path, why);
		return -1;
	}
	if (git_tree_entry_bypath(&e, t->root, target) < 0 ||
	    (git_tree_entry_filemode(e) != GIT_FILEMODE_BLOB &&
	    git_tree_entry_filemode(e) != GIT_FILEMODE_BLOB_EXECUTABLE)) {
		snprintf(t->err, t->errlen, "%s: symlink refused: %s is not a "
		    "regular file in this commit", path, target);
		goto out;
	}
	if (git_blob_lookup(out, t->repo, git_tree_entry_id(e)) < 0) {
		repo_errcopy(t->err, t->errlen, target, NULL);
		goto out;
	}
	rc = 0;
out:
	git_tree_entry_free(e);
	free(target);
	return rc;
}

/* Export: create destdir/path, never through an existing entry. */
static int
repo_tw_write(struct repo_tw *t, const char *path, const git_blob *b, int exec)
{
	const char	*p = git_blob_rawcontent(b);
	size_t		 len = (size_t)git_blob_rawsize(b), off = 0;
	char		*full;
	ssize_t		 n;
	int		 fd, rc = -1;

	if (len > t->max_total - t->total) {
		snprintf(t->err, t->errlen, "%s: export over %zu bytes", path,
		    t->max_total);
		return -1;
	}
	t->total += len;
	full = xasprintf("%s/%s", t->destdir, path);
	fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    exec ? 0700 : 0600);
	if (fd == -1) {
		snprintf(t->err, t->errlen, "create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, p + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(t->err, t->errlen, "write %s: %s", path,
			    strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(full);
	return rc;
}

static int	repo_tw_tree(struct repo_tw *, const git_tree *, const char *,
		    int);

static int
repo_tw_entry(struct repo_tw *t, const git_tree_entry *e, const char *dir,
    int depth)
{
	const char	*name = git_tree_entry_name(e), *rel;
	git_filemode_t	 mode = git_tree_entry_filemode(e);
	git_tree	*sub = NULL;
	git_blob	*blob = NULL, *target = NULL;
	const git_blob	*b;
	char		*path, *full, esc[256];
	size_t		 size;
	int		 rc = -1;

	if (!git_repo_name_ok(name, strlen(name))) {
		log_escape(name, strlen(name), esc, sizeof(esc));
		snprintf(t->err, t->errlen, "%s%s\"%s\": tree entry name refused",
		    dir, *dir != '\0' ? "/" : "", esc);
		return -1;
	}
	path = *dir != '\0' ? xasprintf("%s/%s", dir, name) : xstrdup(name);
	rel = path + t->skip;
	if (mode == GIT_FILEMODE_TREE) {
		if (depth >= GIT_TREE_MAX_DEPTH) {
			snprintf(t->err, t->errlen, "%s: directories nested "
			    "deeper than %d", path, GIT_TREE_MAX_DEPTH);
			goto out;
		}
		if (t->opt == NULL) {
			full = xasprintf("%s/%s", t->destdir, path);
			if (mkdir(full, 0700) == -1) {
				snprintf(t->err, t->errlen, "mkdir %s: %s", path,
				    strerror(errno));
				free(full);
				goto out;
			}
			free(full);
		}
		if (git_tree_lookup(&sub, t->repo, git_tree_entry_id(e)) < 0) {
			repo_errcopy(t->err, t->errlen, path, NULL);
			goto out;
		}
		rc = repo_tw_tree(t, sub, path, depth + 1);
		goto out;
	}
	if ((mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	    mode != GIT_FILEMODE_LINK) || (t->opt != NULL &&
	    ((mode == GIT_FILEMODE_LINK && !t->opt->links) ||
	    (t->opt->want != NULL && !t->opt->want(rel, t->opt->arg))))) {
		rc = 0;		/* submodules, unwanted files */
		goto out;
	}
	if (git_blob_lookup(&blob, t->repo, git_tree_entry_id(e)) < 0) {
		repo_errcopy(t->err, t->errlen, path, NULL);
		goto out;
	}
	b = blob;
	if (mode == GIT_FILEMODE_LINK) {
		if (repo_tw_link(t, path, dir, blob, &target) == -1)
			goto out;
		b = target;
	}
	if (t->opt == NULL) {
		rc = repo_tw_write(t, path, b, mode ==
		    GIT_FILEMODE_BLOB_EXECUTABLE);
		goto out;
	}
	size = (size_t)git_blob_rawsize(b);
	t->cbrc = t->opt->cb(rel, size > t->opt->max_bytes ? NULL :
	    git_blob_rawcontent(b), size, t->opt->arg);
	rc = t->cbrc != 0 ? -1 : 0;
out:
	git_blob_free(target);
	git_blob_free(blob);
	git_tree_free(sub);
	free(path);
	return rc;
}

static int
repo_tw_tree(struct repo_tw *t, const git_tree *tree, const char *dir,
    int depth)
{
	size_t	 i, n = git_tree_entrycount(tree);

	for (i = 0; i < n; i++)
		if (repo_tw_entry(t, git_tree_entry_byindex(tree, i), dir,
		    depth) == -1)
			return -1;
	return 0;
}

int
git_repo_walk(struct git_repo *g, const char *commit,
    const struct git_repo_walk *opt, char *err, size_t errlen)
{
	struct repo_tw	 t;
	git_tree	*tree = NULL;
	char		*base = NULL;
	int		 rc = -1, r;

	memset(&t, 0, sizeof(t));
	if (repo_norm_dir(opt->dir, &base, err, errlen) == -1)
		return -1;
	t.repo = g->repo;
	t.base = base;
	t.skip = *base != '\0' ? strlen(base) + 1 : 0;
	t.opt = opt;
	t.err = err;
	t.errlen = errlen;
	if ((r = repo_tw_open(&t, commit, base, &tree)) != 0) {
		if (r == 1 && opt->missing_ok)
			rc = 0;
		else if (r == 1)
			snprintf(err, errlen, "path %.200s is not a directory "
			    "at this revision", base);
		goto out;
	}
	if (repo_tw_tree(&t, tree, base, 0) == -1) {
		rc = t.cbrc != 0 ? t.cbrc : -1;
		goto out;
	}
	rc = 0;
out:
	git_tree_free(tree);
	git_tree_free(t.root);
	free(base);
	return rc;
}

/* git_repo_read_files on git_repo_walk: repository-relative YAML paths. */
struct git_read {
	const char	*prefix;
	git_repo_file_cb *cb;
	void		*arg;
};

static int
repo_read_want(const char *rel, void *arg)
{
	const char	*slash = strrchr(rel, '/');

	(void)arg;
	return repo_has_yaml_suffix(slash != NULL ? slash + 1 : rel);
}

static int
repo_read_cb(const char *rel, const char *data, size_t len, void *arg)
{
	struct git_read	*r = arg;
	char		*path;
	int		 rc;

	path = *r->prefix != '\0' ? xasprintf("%s/%s", r->prefix, rel) :
	    xstrdup(rel);
	rc = r->cb(path, data, len, r->arg);
	free(path);
	return rc;
}

int
git_repo_read_files(struct git_repo *g, const char *commit, const char *dir,
    size_t max_bytes, git_repo_file_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct git_repo_walk	 w;
	struct git_read		 r;
	char			*prefix;
	int			 rc;

	if (repo_norm_dir(dir, &prefix, err, errlen) == -1)
		return -1;
	r.prefix = prefix;
	r.cb = cb;
	r.arg = arg;
	memset(&w, 0, sizeof(w));
	w.dir = prefix;
	w.max_bytes = max_bytes;
	w.missing_ok = 1;	/* no such directory: nothing to update */
	w.want = repo_read_want;
	w.cb = repo_read_cb;
	w.arg = &r;
	rc = git_repo_walk(g, commit, &w, err, errlen);
	free(prefix);
	return rc;
}

int
git_repo_export(struct git_repo *g, const char *commit, const char *base,
    const char *destdir, size_t max_total, char *err, size_t errlen)
{
	struct repo_tw	 t;
	git_tree	*tree = NULL;
	char		*nbase = NULL;
	int		 rc = -1;

	memset(&t, 0, sizeof(t));
	if (repo_norm_dir(base, &nbase, err, errlen) == -1)
		return -1;
	t.repo = g->repo;
	t.base = nbase;
	t.destdir = destdir;
	t.max_total = max_total;
	t.err = err;
	t.errlen = errlen;
	if (repo_tw_open(&t, commit, "", &tree) != 0)
		goto out;
	if (mkdir(destdir, 0700) == -1) {
		snprintf(err, errlen, "mkdir %s: %s", destdir, strerror(errno));
		goto out;
	}
	rc = repo_tw_tree(&t, tree, "", 0);
out:
	git_tree_free(tree);
	git_tree_free(t.root);
	free(nbase);
	return rc;
}
