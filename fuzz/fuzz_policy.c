/*
 * libFuzzer target: image references and tag policies.  Input: a policy
 * kind byte, then NUL-separated fields (range or pattern, current tag,
 * candidate tag, image reference).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_policy	 pol;
	struct image_ref	 ref;
	char			*copy, *f[4] = { "", "", "", "" }, *p, err[256];
	size_t			 i;

	if (size < 1)
		return 0;
	copy = xmalloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (p = copy, i = 0; i < 4; i++) {
		f[i] = p;
		p += strlen(p);
		if (p >= copy + size - 1)
			break;
		p++;
	}
	memset(&pol, 0, sizeof(pol));
	pol.kind = (enum config_policy_kind)(data[0] % 4);
	pol.prerelease = (data[0] & 0x10) != 0;
	pol.order = (data[0] & 0x20) ? CONFIG_ORDER_ALPHABETICAL :
	    CONFIG_ORDER_NUMERICAL;
	switch (pol.kind) {
	case CONFIG_POLICY_SEMVER:
		pol.semver = f[0];
		break;
	case CONFIG_POLICY_PATTERN:
		pol.pattern = f[0];
		pol.extract = (data[0] & 0x40) ? "$1" : NULL;
		break;
	case CONFIG_POLICY_DIGEST:
		pol.digest_tag = f[0];
		break;
	default:
		break;
	}
	if (policy_validate(&pol, err, sizeof(err)) == 0) {
		(void)policy_accepts(&pol, f[2]);
		/* Ordering is antisymmetric: a tag is never newer than itself. */
		if (policy_accepts(&pol, f[1]) && policy_newer(&pol, f[1], f[1]) &&
		    (pol.kind == CONFIG_POLICY_SEMVER ||
		    pol.kind == CONFIG_POLICY_PATTERN))
			abort();
		(void)policy_newer(&pol, f[1], f[2]);
	}
	memset(&ref, 0, sizeof(ref));
	if (image_ref_parse(f[3], &ref, err, sizeof(err)) == 0) {
		char *name = image_ref_name(&ref);

		if (ref.repository == NULL || ref.registry == NULL)
			abort();
		(void)image_ref_same_repo(&ref, &ref);
		free(name);
		image_ref_free(&ref);
	}
	free(copy);
	return 0;
}
