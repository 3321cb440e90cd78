/*
 * libFuzzer target: the error answers of the alert services that say in
 * their body how long to wait (each notifier's retry_after hook: Discord's
 * {"retry_after": 1.5}, Telegram's {"parameters": {"retry_after": 3}}).
 * And the refused() hooks (commit-status: each Git host's error
 * message and rate limits, through pr_answer_fail) for every variant.
 * Input: one byte picking the status (429 or another), then the body.
 * Properties: no crash or leak on any body, the hint is never negative
 * (a negative wait would retry at once, forever), and the refusal text
 * is a terminated string within its buffer.
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
	char	*body, out[512];
	long	 status;
	size_t	 i;
	int	 v, permanent, wait;

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
	for (i = 0; i < notifier_table_len; i++) {
		if (notifier_table[i]->refused == NULL)
			continue;
		for (v = 0; v <= 5; v++) {
			permanent = 0;
			wait = data[0] & 2 ? 3 : 0;
			out[sizeof(out) - 1] = 'x';
			notifier_table[i]->refused(v, "http://127.0.0.1/api/x",
			    status == 429 ? 403 - (data[0] & 2) : status, body,
			    &permanent, &wait, out, sizeof(out) - 1);
			if (wait < 0 || out[sizeof(out) - 1] != 'x' ||
			    memchr(out, '\0', sizeof(out) - 1) == NULL)
				abort();
		}
	}
	free(body);
	return 0;
}
