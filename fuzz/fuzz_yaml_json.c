/*
 * libFuzzer target: YAML streams to JSON (yaml_json.c), the parser that
 * reads every manifest and kubeconfig.  Invariant checked: each document
 * produced prints as JSON that cJSON parses back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yaml_json_limits	 lim = { .max_nodes = 100000 };
	cJSON			**docs, *back;
	size_t			 n, i;
	char			 err[256], *s;

	if (yaml_json_parse((const char *)data, size, &lim, &docs, &n, err,
	    sizeof(err)) == -1)
		return 0;
	for (i = 0; i < n; i++) {
		if ((s = cJSON_PrintUnformatted(docs[i])) == NULL)
			abort();
		if ((back = cJSON_Parse(s)) == NULL)
			abort();	/* we produced JSON that is not JSON */
		cJSON_Delete(back);
		free(s);
	}
	yaml_json_free(docs, n);
	return 0;
}
