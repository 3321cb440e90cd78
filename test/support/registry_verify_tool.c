/*
 * registry_verify_tool: runs registry_verify_tag() once, for the
 * integration tests against a real registry.
 *
 * usage: registry_verify_tool [-k] [-u user -p password-file] host repo tag
 *        registry_verify_tool -l [-k] [-u user -p password-file] [-e etag]
 *            host repo
 *   -k  the registries: entry says insecure: true (plain http)
 *   -l  list the tags instead (registry_list_tags), -e with If-None-Match
 * Prints the digest and exits 0; exits 1 when the tag does not exist,
 * 2 on any other failure (the reason on stderr).  -l prints one tag a
 * line, then "etag: ..." when one came, "not-modified" on a 304; exits 3
 * when throttled, printing "retry-after: N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "registry_client.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct config_registry	 reg;
	struct config		 cfg;
	struct registry_tags	 t;
	char			 err[512], *digest = NULL, *etag = NULL;
	int			 ch, rc, list = 0;
	size_t			 i;

	memset(&cfg, 0, sizeof(cfg));
	memset(&reg, 0, sizeof(reg));
	while ((ch = getopt(argc, argv, "ku:p:le:")) != -1) {
		switch (ch) {
		case 'l':
			list = 1;
			break;
		case 'e':
			etag = optarg;
			break;
		case 'k':
			reg.insecure = 1;
			break;
		case 'u':
			reg.username = optarg;
			break;
		case 'p':
			reg.password_file = optarg;
			if ((reg.password = util_read_secret(optarg, err,
			    sizeof(err))) == NULL) {
				fprintf(stderr, "%s\n", err);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: registry_verify_tool [-k] "
			    "[-u user -p file] host repo tag\n");
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (list && argc == 2) {
		reg.host = argv[0];
		cfg.registries = &reg;
		cfg.nregistries = 1;
		rc = registry_list_tags(&cfg, argv[0], argv[1], etag, &t, err,
		    sizeof(err));
		free(reg.password);
		if (rc == REGISTRY_THROTTLED) {
			printf("retry-after: %d\n", t.retry_after_s);
			registry_tags_clear(&t);
			return 3;
		}
		if (rc != 0) {
			fprintf(stderr, "%s\n", err);
			registry_tags_clear(&t);
			return 2;
		}
		if (t.not_modified)
			printf("not-modified\n");
		for (i = 0; i < t.n; i++)
			printf("%s\n", t.tags[i]);
		if (t.etag != NULL)
			printf("etag: %s\n", t.etag);
		registry_tags_clear(&t);
		return 0;
	}
	if (list || argc != 3) {
		fprintf(stderr, "usage: registry_verify_tool [-k] "
		    "[-u user -p file] host repo tag\n");
		return 2;
	}
	reg.host = argv[0];
	cfg.registries = &reg;
	cfg.nregistries = 1;
	rc = registry_verify_tag(&cfg, argv[0], argv[1], argv[2], &digest,
	    err, sizeof(err));
	free(reg.password);
	if (rc == 0) {
		printf("%s\n", digest);
		free(digest);
		return 0;
	}
	fprintf(stderr, "%s\n", err);
	return rc == 1 ? 1 : 2;
}
