/*
 * libFuzzer target: the configuration loader on arbitrary YAML.  Every
 * outcome must be a config or a list of errors, never a crash, a leak or
 * an unbounded allocation (aliases and deep nesting are refused).
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors	 errs = { 0 };
	struct config		*cfg;

	log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	cfg = config_load_buffer("fuzz.yaml", (const char *)data, size, &errs);
	if (cfg == NULL && errs.n == 0)
		abort();	/* a refusal always says why */
	if (cfg != NULL)
		config_unref(cfg);
	config_errors_free(&errs);
	return 0;
}
