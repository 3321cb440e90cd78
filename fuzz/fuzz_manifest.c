/*
 * libFuzzer target: manifest edits.  Input: one selector byte (file name:
 * plain or kustomization; whether a digest is set), then the YAML bytes.
 * Checks the edit's invariants: an edited file parses again, and editing
 * it a second time changes nothing (the edit is idempotent).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_target	 t;
	struct manifest_result	 r1, r2;
	char			 err[512];
	const char		*name;

	if (size < 1)
		return 0;
	memset(&t, 0, sizeof(t));
	t.image = "registry.acme.io/acme/web";
	t.marker = "web:web";
	t.tag = "1.3.0";
	if (data[0] & 1)
		t.digest = "sha256:"
		    "2222222222222222222222222222222222222222222222222222222222222222";
	name = (data[0] & 2) ? "kustomization.yaml" : "deploy.yaml";
	if (manifest_update(name, (const char *)data + 1, size - 1, &t, &r1,
	    err, sizeof(err)) == -1)
		return 0;
	if (r1.out != NULL) {
		if (manifest_update(name, r1.out, r1.outlen, &t, &r2, err,
		    sizeof(err)) == -1)
			abort();	/* an edit broke the file */
		if (r2.out != NULL)
			abort();	/* not idempotent */
		manifest_result_free(&r2);
	}
	manifest_result_free(&r1);
	return 0;
}
