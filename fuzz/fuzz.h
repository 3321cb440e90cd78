/*
 * fuzz.h: what the libFuzzer targets share: a configuration with one
 * source of every sender type, loaded once from a buffer, with its secret
 * in a private temporary directory.  Included by exactly one file per
 * target, so the helpers are static.
 */
#ifndef GITOPSD_FUZZ_H
#define GITOPSD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define FUZZ_SECRET	"fuzz-secret-0123456789"

static const char fuzz_config_text[] =
    "server: {listen: \"127.0.0.1:0\", max_body_bytes: 65536}\n"
    "admin: {listen: \"127.0.0.1:0\"}\n"
    "state: {path: \"%1$s/state.db\"}\n"
    "workdir: \"%1$s/repos\"\n"
    "sources:\n"
    "  - {name: github, type: github, secret_file: \"%1$s/secret\", allow_sha1: true}\n"
    "  - {name: gitlab, type: gitlab, token_file: \"%1$s/secret\"}\n"
    "  - {name: gitea, type: gitea, secret_file: \"%1$s/secret\"}\n"
    "  - {name: bitbucket, type: bitbucket, secret_file: \"%1$s/secret\"}\n"
    "  - {name: generic, type: generic-hmac, secret_file: \"%1$s/secret\"}\n"
    "  - {name: registry, type: registry, token_file: \"%1$s/secret\"}\n"
    "  - {name: dockerhub, type: dockerhub, token_file: \"%1$s/secret\"}\n"
    "  - {name: harbor, type: harbor, token_file: \"%1$s/secret\"}\n"
    "  - {name: quay, type: quay, token_file: \"%1$s/secret\"}\n"
    "repos:\n"
    "  - {name: deploy, url: \"https://github.com/acme/deploy.git\", branch: main}\n"
    "apps:\n"
    "  - name: web\n"
    "    repo: deploy\n"
    "    path: apps/web\n"
    "    images:\n"
    "      - {repository: registry.acme.io/acme/web, policy: {semver: \">=1.0.0\"}}\n"
    "      - {repository: nginx, policy: {pattern: \"^v([0-9]+)$\", extract: \"$1\"}}\n";

static struct config *fuzz_cfg;

static const struct config *
fuzz_config(void)
{
	struct config_errors	 errs;
	char			 dir[] = "/tmp/gitopsd-fuzz-XXXXXX", *path, *text;
	size_t			 i;

	if (fuzz_cfg != NULL)
		return fuzz_cfg;
	log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	if (mkdtemp(dir) == NULL)
		abort();
	path = xasprintf("%s/secret", dir);
	if (util_write_file_atomic(path, FUZZ_SECRET, strlen(FUZZ_SECRET)) == -1)
		abort();
	free(path);
	text = xasprintf(fuzz_config_text, dir);
	memset(&errs, 0, sizeof(errs));
	fuzz_cfg = config_load_buffer("fuzz.yaml", text, strlen(text), &errs);
	if (fuzz_cfg == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		abort();
	}
	config_errors_free(&errs);
	free(text);
	return fuzz_cfg;
}

#endif
