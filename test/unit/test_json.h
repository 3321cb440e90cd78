/*
 * test_json.h: read members of cJSON objects in assertions.
 */
#ifndef TEST_JSON_H
#define TEST_JSON_H

#include <cjson/cJSON.h>

static __attribute__((unused)) const char *
test_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static __attribute__((unused)) int
test_json_true(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

#endif
