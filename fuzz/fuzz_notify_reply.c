/*
 * libFuzzer target: the error answers of the alert services that say in
 * their body how long to wait (each notifier's retry_after hook: Discord's
 * {"retry_after": 1.5}, Telegram's {"parameters": {"retry_after": 3}}).
 * Input: one byte picking the status (429 or another), then the body.
 * Properties: no crash or leak on any body, and the hint is never
 * negative (a negative wait would retry at once, forever).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*body;
	long	 status;
	size_t	 i;

	if (size < 1)
		return 0;
	status = data[0] & 1 ? 429 : 400 + (long)(data[0] >> 1);
	body = xstrndup((const char *)data + 1, size - 1);
	for (i = 0; i < notifier_table_len; i++) {
		if (notifier_table[i]->retry_after == NULL)
			continue;
		if (notifier_table[i]->retry_after(status, body) < 0)
			abort();
	}
	free(body);
	return 0;
}
