/*
 * libFuzzer target: one page of a registry's tag list, as
 * registry_list_tags reads it (registry_tags_page).  Input: the Link
 * header, a NUL, then the body.  Properties: every tag kept is a valid
 * tag; a next page is always on the same scheme and host, so the
 * session's credentials never go elsewhere.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "registry_client.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	 origin[] = "https://registry.test:5000/";
	struct registry_tags	 t;
	const uint8_t		*nul;
	char			*link = NULL, *next = NULL, err[256];
	size_t			 i, llen;
	int			 rc;

	memset(&t, 0, sizeof(t));
	t.remaining = -1;
	if ((nul = memchr(data, '\0', size)) != NULL) {
		llen = (size_t)(nul - data);
		link = xstrndup((const char *)data, llen);
		data = nul + 1;
		size -= llen + 1;
	}
	rc = registry_tags_page(&t, (const char *)data, size, link, "https",
	    "registry.test:5000", &next, err, sizeof(err));
	if (rc == -1 && next != NULL)
		abort();
	for (i = 0; i < t.n; i++)
		if (!image_tag_valid(t.tags[i]))
			abort();
	if (next != NULL && strncmp(next, origin, sizeof(origin) - 1) != 0)
		abort();
	free(next);
	free(link);
	registry_tags_clear(&t);
	return 0;
}
