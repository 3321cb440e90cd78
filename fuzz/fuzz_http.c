/*
 * libFuzzer target: raw bytes into a listener.  The input is written into
 * one end of a socketpair whose other end the HTTP server serves as an
 * accepted connection; requests go through the same ingest pipeline as the
 * daemon's public routes (verify, parse, route), answered without storage.
 * Checked: whatever the server writes starts with an HTTP/1.1 status line
 * whose code is a 3-digit number from 200 to 599.
 */
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"
#include "http.h"
#include "ingest.h"

static struct event_base	*fuzz_base;
static struct http_server	*fuzz_srv;

static void
fuzz_http_cb(struct http_request *req, void *arg)
{
	const struct http_request_info	*ri = http_request_info(req);
	struct ingest_result		 res;
	struct hook_request		 hr;

	(void)arg;
	if (strncmp(ri->path, "/hooks/", 7) != 0) {
		http_reply_error(req, 404, "not found", NULL);
		return;
	}
	memset(&hr, 0, sizeof(hr));
	hr.method = ri->method;
	hr.query = ri->query;
	hr.headers = ri->headers;
	hr.nheaders = ri->nheaders;
	hr.body = ri->body;
	hr.body_len = ri->body_len;
	ingest_process(fuzz_config(), ri->path + 7, &hr, &res);
	if (res.status != 0)
		http_reply(req, res.status, "application/json", NULL, res.body,
		    strlen(res.body));
	else
		http_reply(req, 202, "application/json", NULL, "{}", 2);
	ingest_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits	 l = {
		.max_body_bytes = 65536, .max_header_bytes = 8192,
		.read_timeout_s = 1, .write_timeout_s = 1, .max_connections = 8,
	};
	char			 err[256], out[65536], head[16];
	int			 sv[2], i;
	size_t			 off = 0, nhead = 0;
	ssize_t			 r;

	if (fuzz_base == NULL) {
		signal(SIGPIPE, SIG_IGN);
		fuzz_config();
		if ((fuzz_base = event_base_new()) == NULL)
			abort();
		fuzz_srv = http_server_new(fuzz_base, "127.0.0.1", 0, &l, NULL,
		    NULL, fuzz_http_cb, NULL, err, sizeof(err));
		if (fuzz_srv == NULL)
			abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return 0;
	if (http_server_adopt(fuzz_srv, sv[1], "fuzz") == -1) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	for (i = 0; i < 10000; i++) {
		if (off < size) {
			r = write(sv[0], data + off, size - off);
			if (r > 0)
				off += (size_t)r;
			else if (r == -1 && errno != EAGAIN)
				off = size;
			if (off == size)
				shutdown(sv[0], SHUT_WR);
		} else if (size == 0 && i == 0)
			shutdown(sv[0], SHUT_WR);
		event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
		r = read(sv[0], out, sizeof(out));
		if (r > 0 && nhead < sizeof(head)) {
			size_t	 k = (size_t)r < sizeof(head) - nhead ?
			    (size_t)r : sizeof(head) - nhead;

			memcpy(head + nhead, out, k);
			nhead += k;
		}
		if (r == 0)
			break;		/* the server closed: done */
		if (r == -1 && errno != EAGAIN)
			break;
	}
	close(sv[0]);
	if (nhead > 0 && (nhead < 13 || memcmp(head, "HTTP/1.1 ", 9) != 0 ||
	    head[9] < '2' || head[9] > '5' || head[10] < '0' ||
	    head[10] > '9' || head[11] < '0' || head[11] > '9' ||
	    head[12] != ' '))
		abort();	/* not a status line */
	/* Let the server notice and free the connection. */
	event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
	event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
	return 0;
}
