/*
 * config_keys: print every configuration key path, one a line
 * ("server.listen", "apps[].images[].policy.semver"), from the config
 * schema itself.  test_systemd.py checks that gitopsd.yaml(5) names each.
 */
#include <stdio.h>

#include "config.h"

static void
config_keys_cb(const char *keypath, const char *type, const char *def,
    const char *help, void *arg)
{
	int	*n = arg;

	(void)type;
	(void)def;
	(void)help;
	printf("%s\n", keypath);
	(*n)++;
}

int
main(void)
{
	int	n = 0;

	config_schema_foreach(config_keys_cb, &n);
	if (fflush(stdout) == EOF || n == 0)
		return 1;
	return 0;
}
