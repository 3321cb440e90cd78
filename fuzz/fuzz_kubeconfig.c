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

#include <yaml.h>

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

/*
 * Does the reason show a secret of the file?  The secrets are the values
 * libyaml itself reads for the keys token, password and client-key-data
 * (up to the first syntax error, as the reader sees them), so a
 * "password:" inside some other quoted value is not taken for a key.
 *
 * A secret's text in the reason is not enough: the reason also holds the
 * file's path and gitopsd's and libyaml's own words ("a token whose value
 * is "expected"" shows in "did not find expected key"), and libFuzzer
 * learns those words from this very check.  So the check is differential:
 * the file is loaded a second time with the letters and digits of every
 * secret's bytes replaced by 'Q' (same length, same punctuation and line
 * breaks, so the YAML structure, positions and line numbers stay), and a
 * secret leaks only when it is in the first reason and gone from the
 * second -- its presence depended on its value.
 */
struct fuzz_secret {
	char	*value;
	size_t	 start, end;	/* the scalar's bytes in the file */
};

/* Turn the letters and digits of a scalar (past its tag) into Q. */
static void
fuzz_mask(uint8_t *buf, size_t len, size_t start, size_t end)
{
	size_t	 i = start;
	int	 dq;

	if (end > len)
		end = len;
	while (i < end && (buf[i] == '&' || buf[i] == '!')) {
		while (i < end && !isspace(buf[i]))
			i++;
		while (i < end && isspace(buf[i]))
			i++;
	}
	/* A block scalar's header line (| or > and indicators) stays. */
	if (i < end && (buf[i] == '|' || buf[i] == '>'))
		while (i < end && buf[i] != '\n')
			i++;
	/* An escape stays whole: "\x4Q" would be a syntax error. */
	dq = i < end && buf[i] == '"';
	for (; i < end; i++) {
		if (dq && buf[i] == '\\') {
			i++;
			if (i < end && (buf[i] == 'x' || buf[i] == 'u' ||
			    buf[i] == 'U'))
				i += buf[i] == 'x' ? 2 : buf[i] == 'u' ? 4 : 8;
			continue;
		}
		if (isalnum(buf[i]))
			buf[i] = 'Q';
	}
}

static int
fuzz_leaks(const uint8_t *in, size_t len, const char *ctx, int insecure,
    const char *err)
{
	struct fuzz_secret	 sec[64];
	struct kubeconfig	*kc;
	yaml_parser_t		 p;
	yaml_event_t		 ev;
	uint8_t			*masked = NULL;
	char			*key = NULL, err2[1024];
	size_t			 nsec = 0, i;
	int			 leak = 0, done = 0, expect_key[128], depth = 0;

	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, in, len);
	expect_key[0] = 0;
	while (!done && yaml_parser_parse(&p, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			/* A collection as a value ends the pending key. */
			if (depth > 0 && expect_key[depth] == 0) {
				free(key);
				key = NULL;
				expect_key[depth] = 1;
			}
			if (depth + 1 < (int)(sizeof(expect_key) /
			    sizeof(expect_key[0])))
				depth++;
			expect_key[depth] = ev.type == YAML_MAPPING_START_EVENT ?
			    1 : -1;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		case YAML_SCALAR_EVENT: {
			char	*v = xstrndup((const char *)ev.data.scalar.value,
			    ev.data.scalar.length);

			if (expect_key[depth] == 1) {
				free(key);
				key = v;
				expect_key[depth] = 0;
				break;
			}
			/*
			 * An anchored secret may also be shown through an
			 * alias under a key that is not secret: not counted.
			 */
			if (expect_key[depth] == 0 && key != NULL &&
			    ev.data.scalar.anchor == NULL &&
			    (strcmp(key, "token") == 0 ||
			    strcmp(key, "password") == 0 ||
			    strcmp(key, "client-key-data") == 0) && nsec < 64) {
				sec[nsec].value = v;
				sec[nsec].start = ev.start_mark.index;
				sec[nsec].end = ev.end_mark.index;
				nsec++;
				v = NULL;
			}
			if (expect_key[depth] == 0) {
				expect_key[depth] = 1;
				free(key);
				key = NULL;
			}
			free(v);
			break;
		}
		case YAML_ALIAS_EVENT:
			/* An alias takes a key's or a value's place. */
			if (expect_key[depth] != -1) {
				free(key);
				key = NULL;
				expect_key[depth] = !expect_key[depth];
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	free(key);
	for (i = 0; i < nsec; i++)
		if (strlen(sec[i].value) >= 8 &&
		    fuzz_has_word(err, sec[i].value))
			break;
	if (i == nsec)
		goto out;	/* no secret's text in the reason at all */
	if ((masked = malloc(len + 1)) == NULL)
		abort();
	memcpy(masked, in, len);
	for (i = 0; i < nsec; i++)
		fuzz_mask(masked, len, sec[i].start, sec[i].end);
	fuzz_write(fuzz_kc_path, masked, len);
	err2[0] = '\0';
	kc = kubeconfig_load_file(fuzz_kc_path, ctx, insecure, err2,
	    sizeof(err2));
	kubeconfig_free(kc);
	for (i = 0; i < nsec && !leak; i++)
		leak = strlen(sec[i].value) >= 8 &&
		    fuzz_has_word(err, sec[i].value) &&
		    !fuzz_has_word(err2, sec[i].value);
out:
	for (i = 0; i < nsec; i++)
		free(sec[i].value);
	free(masked);
	return leak;
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubeconfig	*kc;
	const char		*ctx;
	char			 err[1024];
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
		if (fuzz_leaks(data + 1, size - 1, ctx, insecure, err))
			abort();	/* a secret in the message */
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
