/*
 * libFuzzer target: the kubeconfig reader (daemon/kubeconfig.c) on
 * arbitrary files.  kubeconfig_load_file reads a path, so the input is
 * written to a file in a private directory that also holds the files a
 * kubeconfig names by relative path (ca.crt, token.txt, client.crt,
 * client.key), so those branches are reached too.
 *
 * Input: byte 0 chooses allow_insecure (bit 0) and the context (bits 1-3:
 * the file's current-context or one of a few common names); the rest is
 * the file.  Invariants: a kubeconfig or a reason, never both; a loaded
 * server is an https:// URL (http:// only when insecure is allowed)
 * without a trailing slash; insecure only when allowed; a client
 * certificate only with its key; a secret of the file never in the reason.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "log.h"
#include "util.h"

static const char *const fuzz_contexts[] = {
	NULL, "prod", "staging", "lab", "certs", "broken", "default", "c",
};

static char	*fuzz_kc_path;

/* Replace the kubeconfig's bytes (no fsync: speed, not durability). */
static void
fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	ssize_t	 w;
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	while (size > 0) {
		if ((w = write(fd, data, size)) <= 0)
			abort();
		data += w;
		size -= (size_t)w;
	}
	close(fd);
}

static void
fuzz_put(const char *dir, const char *name, const char *text)
{
	char	*p = xasprintf("%s/%s", dir, name);

	if (util_write_file_atomic(p, text, strlen(text)) == -1)
		abort();
	free(p);
}

static void
fuzz_setup(void)
{
	static char	 dir[] = "/tmp/gitopsd-fuzz-kc-XXXXXX";

	log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	if (mkdtemp(dir) == NULL)
		abort();
	fuzz_put(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\nfake\n"
	    "-----END CERTIFICATE-----\n");
	fuzz_put(dir, "client.crt", "-----BEGIN CERTIFICATE-----\nfake\n"
	    "-----END CERTIFICATE-----\n");
	fuzz_put(dir, "client.key", "-----BEGIN PRIVATE KEY-----\nfake\n"
	    "-----END PRIVATE KEY-----\n");
	fuzz_put(dir, "token.txt", "file-token-0123456789\n");
	fuzz_kc_path = xasprintf("%s/kubeconfig", dir);
}

/* Does err hold word as a whole word (not inside "kubeconfig")? */
static int
fuzz_has_word(const char *err, const char *word)
{
	const char	*p = err;
	size_t		 n = strlen(word);

	while ((p = strstr(p, word)) != NULL) {
		if ((p == err || !isalnum((unsigned char)p[-1])) &&
		    !isalnum((unsigned char)p[n]))
			return 1;
		p++;
	}
	return 0;
}

/* Is the value of key (a "key: value" line of the input) in err? */
static int
fuzz_leaks(const char *in, const char *key, const char *err)
{
	const char	*p = in, *v, *e;
	char		*val;
	size_t		 klen = strlen(key);
	int		 leak = 0;

	while (!leak && (p = strstr(p, key)) != NULL) {
		v = p + klen;
		/* A key: at a line start or after indentation, '{' or ','. */
		if ((p != in && p[-1] != '\n' && p[-1] != ' ' && p[-1] != '{' &&
		    p[-1] != ',') || v[0] != ':' || (v[1] != ' ' && v[1] != '\n')) {
			p = v;
			continue;
		}
		p = v;
		v++;
		while (*v == ' ')
			v++;
		/* An alias, anchor or tag is YAML syntax, not the value. */
		if (*v == '*' || *v == '&' || *v == '!')
			continue;
		for (e = v; *e != '\0' && *e != '\n' && *e != '\r' &&
		    *e != ' ' && *e != ',' && *e != '}' && *e != '"' &&
		    *e != '\''; e++)
			;
		/* Short values appear in ordinary words; real secrets do not. */
		if (e - v < 8)
			continue;
		val = xstrndup(v, (size_t)(e - v));
		/* A value the file also uses elsewhere (a name) may show. */
		leak = fuzz_has_word(err, val) &&
		    strstr(strstr(in, val) + 1, val) == NULL;
		free(val);
	}
	return leak;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubeconfig	*kc;
	const char		*ctx;
	char			 err[1024], *text;
	int			 insecure;
	size_t			 n;

	if (fuzz_kc_path == NULL)
		fuzz_setup();
	if (size < 1)
		return 0;
	insecure = data[0] & 1;
	ctx = fuzz_contexts[(data[0] >> 1) & 7];
	fuzz_write(fuzz_kc_path, data + 1, size - 1);
	err[0] = '\0';
	kc = kubeconfig_load_file(fuzz_kc_path, ctx, insecure, err,
	    sizeof(err));
	if (kc == NULL) {
		if (err[0] == '\0')
			abort();	/* a refusal always says why */
		text = xstrndup((const char *)data + 1, size - 1);
		if (fuzz_leaks(text, "token", err) ||
		    fuzz_leaks(text, "password", err) ||
		    fuzz_leaks(text, "client-key-data", err))
			abort();	/* a secret in the message */
		free(text);
		return 0;
	}
	if (kc->server == NULL)
		abort();
	if (strncmp(kc->server, "https://", 8) != 0 &&
	    !(insecure && strncmp(kc->server, "http://", 7) == 0))
		abort();
	n = strlen(kc->server);
	if (n > 0 && kc->server[n - 1] == '/')
		abort();
	if (kc->insecure && !insecure)
		abort();
	if ((kc->cert_file != NULL || kc->cert_data != NULL) !=
	    (kc->key_file != NULL || kc->key_data != NULL))
		abort();
	if (kc->ca_file != NULL && kc->ca_data != NULL)
		abort();	/* data wins over a file: never both */
	kubeconfig_free(kc);
	return 0;
}
