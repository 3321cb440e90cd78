/*
 * libFuzzer target: the admin listener's Host, Origin and Content-Type
 * checks.  Input: byte 0 picks the listen host, the method and whether an
 * allowed_hosts entry is set; then NUL-separated fields (Host, Origin,
 * Content-Type, the allowed_hosts entry).  An empty Origin or Content-Type
 * field leaves the header out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_guard.h"
#include "config.h"
#include "handler.h"
#include "http.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = {
		"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "10.0.0.7",
		"LocalHost", "127.0.0.1",
	};
	struct config_admin		 a;
	struct http_request_info	 ri;
	struct hook_header		 h[3];
	char				*copy, *f[4] = { "", "", "", "" }, *p;
	char				 why[128], *allowed[1];
	size_t				 i, n = 0;
	int				 rc;

	if (size < 1)
		return 0;
	copy = xmalloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (p = copy, i = 0; i < 4 && p < copy + size - 1; i++) {
		f[i] = p;
		p += strlen(p) + 1;
	}
	memset(&a, 0, sizeof(a));
	a.listen.host = (char *)hosts[data[0] & 7];
	a.listen.port = 9090;
	if (data[0] & 0x10) {
		allowed[0] = f[3];
		a.allowed_hosts = allowed;
		a.nallowed_hosts = 1;
	}
	h[n].name = "Host";
	h[n++].value = f[0];
	if (f[1][0] != '\0') {
		h[n].name = "Origin";
		h[n++].value = f[1];
	}
	if (f[2][0] != '\0') {
		h[n].name = "Content-Type";
		h[n++].value = f[2];
	}
	memset(&ri, 0, sizeof(ri));
	ri.method = (data[0] & 0x08) ? "POST" : "GET";
	ri.path = "/api/v1/apps";
	ri.headers = h;
	ri.nheaders = n;
	why[0] = '\0';
	rc = admin_guard_check(&a, 9090, &ri, why, sizeof(why));
	if (rc != 0 && rc != 421 && rc != 403)
		abort();
	if (rc != 0 && why[0] == '\0')
		abort();
	/* Without allowed_hosts, only the listener's port gets through. */
	if (rc == 0 && a.nallowed_hosts == 0 &&
	    (strlen(f[0]) < 5 || strcmp(f[0] + strlen(f[0]) - 5, ":9090") != 0))
		abort();
	/* A change never passes with an Origin from another scheme. */
	if (rc == 0 && (data[0] & 0x08) && f[1][0] != '\0' &&
	    strncasecmp(f[1], "http://", 7) != 0 &&
	    strncasecmp(f[1], "https://", 8) != 0)
		abort();
	free(copy);
	return 0;
}
