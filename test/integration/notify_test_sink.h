/*
 * notify_test_sink.h: start and stop test/support/notify_sink.py (a real
 * HTTP receiver or an aiosmtpd SMTP server on 127.0.0.1) from C tests, read
 * what it recorded, and run a libevent loop until a condition holds.
 * Header-only: each test binary includes it once.
 */
#ifndef NOTIFY_TEST_SINK_H
#define NOTIFY_TEST_SINK_H

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "test_json.h"

extern char **environ;

struct test_sink {
	pid_t	 pid;
	int	 stdin_fd;	/* closing it stops the sink */
	int	 port;
	char	 dir[64];
	char	 record[128];
};

/* A scratch directory for records and certificates. */
static int
test_sink_mkdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/gitopsd-notify-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Spawn the sink; extra is a NULL-terminated list of arguments. */
static int
test_sink_start(struct test_sink *s, const char *mode, const char *const *extra)
{
	const char	*argv[32];
	int		 p[2], in[2], n = 0, i;
	char		 line[64];
	size_t		 got = 0;
	struct pollfd	 pfd;

	memset(s, 0, sizeof(*s));
	if (test_sink_mkdir(s->dir, sizeof(s->dir)) == -1)
		return -1;
	snprintf(s->record, sizeof(s->record), "%s/record.jsonl", s->dir);
	argv[n++] = "/usr/bin/python3";
	argv[n++] = "test/support/notify_sink.py";
	argv[n++] = mode;
	argv[n++] = "--record";
	argv[n++] = s->record;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(in, O_CLOEXEC) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	{
		posix_spawn_file_actions_t fa;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		if (posix_spawn(&s->pid, argv[0], &fa, NULL, (char **)argv,
		    environ) != 0) {
			posix_spawn_file_actions_destroy(&fa);
			close(p[0]);
			close(p[1]);
			close(in[0]);
			close(in[1]);
			return -1;
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	close(p[1]);
	close(in[0]);
	s->stdin_fd = in[1];
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (got < sizeof(line) - 1) {
		ssize_t	 r;

		if (poll(&pfd, 1, 10000) <= 0)
			break;
		if ((r = read(p[0], line + got, 1)) <= 0)
			break;
		got++;
		if (line[got - 1] == '\n')
			break;
	}
	line[got] = '\0';
	close(p[0]);
	if (sscanf(line, "READY %d", &s->port) != 1) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		close(s->stdin_fd);
		s->pid = 0;
		return -1;
	}
	return 0;
}

static void
test_sink_stop(struct test_sink *s)
{
	char	 cmd[160];

	if (s->stdin_fd > 0) {
		close(s->stdin_fd);
		s->stdin_fd = 0;
	}
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (s->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", s->dir);
		s->dir[0] = '\0';
	}
}

/* Every record so far as a cJSON array (caller deletes). */
static cJSON *
test_sink_records(const struct test_sink *s)
{
	cJSON	*arr = cJSON_CreateArray(), *o;
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;

	if ((f = fopen(s->record, "r")) == NULL)
		return arr;
	while (getline(&line, &cap, f) != -1) {
		if ((o = cJSON_Parse(line)) != NULL)
			cJSON_AddItemToArray(arr, o);
	}
	free(line);
	fclose(f);
	return arr;
}

static void
test_loop_tick_cb(evutil_socket_t fd, short kind, void *arg)
{
	(void)fd;
	(void)kind;
	(void)arg;
}

/* Run the loop until *flag becomes nonzero or timeout_ms passes. */
static int
test_loop_until(struct event_base *base, const int *flag, int timeout_ms)
{
	struct event	*tick;
	struct timeval	 tv = { 0, 20 * 1000 };
	struct timespec	 t0, t1;
	long		 waited = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	tick = event_new(base, -1, EV_PERSIST, test_loop_tick_cb, NULL);
	event_add(tick, &tv);
	while (!*flag && waited < timeout_ms) {
		event_base_loop(base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	}
	event_free(tick);
	return *flag ? 0 : -1;
}

/* A self-signed certificate for 127.0.0.1 made with the openssl CLI. */
static int
test_make_cert(const char *dir, char *cert, char *key, size_t len)
{
	char	 cmd[512];

	snprintf(cert, len, "%s/cert.pem", dir);
	snprintf(key, len, "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes "
	    "-keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1 "
	    "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
