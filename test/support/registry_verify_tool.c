/*
 * registry_verify_tool: runs registry_verify_tag() once, for the
 * integration tests against a real registry.
 *
 * usage: registry_verify_tool [-k] [-u user -p password-file] host repo tag
 *   -k  the registries: entry says insecure: true (plain http)
 * Prints the digest and exits 0; exits 1 when the tag does not exist,
 * 2 on any other failure (the reason on stderr).
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
	char			 err[512], *digest = NULL;
	int			 ch, rc;

	memset(&cfg, 0, sizeof(cfg));
	memset(&reg, 0, sizeof(reg));
	while ((ch = getopt(argc, argv, "ku:p:")) != -1) {
		switch (ch) {
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
	if (argc != 3) {
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
