/*
 * main.c: flags, configuration, signals, systemd notifications, and the
 * event loop that ties the listeners, the queue and the workers together.
 *
 * gitopsd runs in the foreground (systemd Type=notify).  SIGHUP reloads the
 * configuration all-or-nothing; SIGTERM/SIGINT drain: stop accepting,
 * answer what is in flight, let running jobs finish or put them back, and
 * exit 0 within shutdown_timeout_s.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "check.h"
#include "config.h"
#include "copystate.h"
#include "handler.h"
#include "drift.h"
#include "poller.h"
#include "gitrepo.h"
#include "log.h"
#include "metrics.h"
#include "notify_runner.h"
#include "queue.h"
#include "replica.h"
#include "server.h"
#include "util.h"

#ifndef GITOPSD_VERSION
#define GITOPSD_VERSION "0.0.0"
#endif

#define GITOPSD_DEFAULT_CONFIG	"/etc/gitopsd/gitopsd.yaml"

struct gitopsd {
	struct event_base	*base;
	struct config		*cfg;
	const char		*cfg_path;
	struct queue		*queue;
	struct server		*server;
	struct drift		*drift;
	struct poller		*poller;
	struct event		*ev_term, *ev_int, *ev_hup, *ev_watchdog;
	struct event		*ev_drain;
	int			 draining;
	double			 drain_deadline;
};

/* sd_notify(3), or its documented datagram protocol without libsystemd. */
/*
 * The soft descriptor limit is often 1024 (a shell, `make run`, many
 * container runtimes) while the hard one is far higher: take the hard
 * one, so max_connections is not cut down for nothing.  At most 2^20
 * (Linux's default nr_open): a child that closes every possible
 * descriptor (some render commands do) must not loop over a billion.
 */
static void
main_raise_nofile(void)
{
	struct rlimit	 rl;
	rlim_t		 want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	want = rl.rlim_max;
	if (want == RLIM_INFINITY || want > 1048576)
		want = 1048576;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
		    (unsigned long long)want);
}

static void
main_notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, state);
#else
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("sd_notify: %s", strerror(errno));
	close(fd);
#endif
}

static void
main_print_errors(const struct config_errors *errs, FILE *fp)
{
	size_t	 i;

	for (i = 0; i < errs->n; i++)
		fprintf(fp, "%s\n", errs->msgs[i]);
	for (i = 0; i < errs->nwarnings; i++)
		fprintf(fp, "warning: %s\n", errs->warnings[i]);
}

/*
 * Load and check a configuration; NULL with errs filled when invalid.  A
 * file with errors that still parsed completely is checked by the plug-in
 * modules too, so one run reports every problem.
 */
static struct config *
main_load(const char *path, struct config_errors *errs)
{
	struct config	*cfg;
	size_t		 nload;

	memset(errs, 0, sizeof(*errs));
	if ((cfg = config_load_for_check(path, errs)) == NULL)
		return NULL;
	nload = errs->n;
	if (check_config(cfg, errs) > 0 || nload > 0) {
		config_unref(cfg);
		return NULL;
	}
	return cfg;
}

static void
main_reload(struct gitopsd *g)
{
	struct config_errors	 errs;
	struct config		*cfg;
	char			 err[512], buf[64];
	size_t			 i;

	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%lld",
	    (long long)(util_mono_s() * 1e6));
	main_notify(buf);
	log_info("reloading %s", g->cfg_path);
	if ((cfg = main_load(g->cfg_path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			log_warnx("reload refused: %s", errs.msgs[i]);
		log_warnx("reload refused: keeping the running configuration");
		config_errors_free(&errs);
		main_notify("READY=1");
		return;
	}
	for (i = 0; i < errs.nwarnings; i++)
		log_warnx("%s", errs.warnings[i]);
	config_errors_free(&errs);
	if (server_reconfigure(g->server, cfg, err, sizeof(err)) == -1) {
		log_warnx("reload refused: %s; keeping the running "
		    "configuration", err);
		config_unref(cfg);
		main_notify("READY=1");
		return;
	}
	queue_reconfigure(g->queue, cfg);
	drift_reconfigure(g->drift, cfg);
	poller_reconfigure(g->poller, cfg);
	config_unref(g->cfg);
	g->cfg = cfg;
	log_info("configuration reloaded");
	main_notify("READY=1");
}

static void
main_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gitopsd	*g = arg;

	(void)fd;
	(void)what;
	/* Answer what is in flight and flush alerts being delivered. */
	if ((server_pending(g->server) == 0 && notify_runner_pending() == 0) ||
	    util_mono_s() >= g->drain_deadline) {
		if (server_pending(g->server) > 0)
			log_warnx("shutdown timeout: %d requests unanswered",
			    server_pending(g->server));
		event_base_loopexit(g->base, NULL);
	}
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gitopsd	*g = arg;
	struct timeval	 tv = { 0, 50000 };

	(void)what;
	if (sig == SIGHUP) {
		if (!g->draining)
			main_reload(g);
		return;
	}
	if (g->draining)
		return;
	g->draining = 1;
	log_info("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	main_notify("STOPPING=1");
	server_drain(g->server);
	queue_drain(g->queue);
	drift_free(g->drift);
	g->drift = NULL;
	server_set_poller(g->server, NULL);
	poller_free(g->poller);
	g->poller = NULL;
	g->drain_deadline = util_mono_s() + g->cfg->shutdown_timeout_s;
	g->ev_drain = event_new(g->base, -1, EV_PERSIST, main_drain_cb, g);
	if (g->ev_drain == NULL)
		fatalx("event_new");
	event_add(g->ev_drain, &tv);
}

static void
main_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	main_notify("WATCHDOG=1");
}

/* Ping the watchdog at half of WATCHDOG_USEC, as sd_watchdog_enabled(3) asks. */
static void
main_watchdog_start(struct gitopsd *g)
{
	const char	*usec = getenv("WATCHDOG_USEC"), *pid;
	char		*end;
	long long	 us;
	struct timeval	 tv;

	if (usec == NULL)
		return;
	errno = 0;
	us = strtoll(usec, &end, 10);
	if (end == usec || *end != '\0' || errno != 0 || us <= 0)
		return;
	if ((pid = getenv("WATCHDOG_PID")) != NULL) {
		errno = 0;
		if (strtol(pid, &end, 10) != (long)getpid() || end == pid ||
		    *end != '\0' || errno != 0)
			return;
	}
	us /= 2;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	g->ev_watchdog = event_new(g->base, -1, EV_PERSIST, main_watchdog_cb, g);
	if (g->ev_watchdog == NULL)
		fatalx("event_new");
	event_add(g->ev_watchdog, &tv);
	main_notify("WATCHDOG=1");
}

/* --copy-state: both files are checked as -t would, then copied. */
static int
main_copy_state(const char *from_path, const char *to_path)
{
	struct config_errors	 errs;
	struct config		*from = NULL, *to = NULL;
	const char		*paths[2] = { from_path, to_path };
	struct config		**cfgs[2] = { &from, &to };
	char			 err[1024];
	size_t			 i, k;
	int			 rc = 1;

	for (k = 0; k < 2; k++) {
		if ((*cfgs[k] = main_load(paths[k], &errs)) == NULL) {
			main_print_errors(&errs, stderr);
			fprintf(stderr, "gitopsd: invalid configuration %s\n",
			    paths[k]);
			config_errors_free(&errs);
			goto out;
		}
		for (i = 0; i < errs.nwarnings; i++)
			log_warnx("%s", errs.warnings[i]);
		config_errors_free(&errs);
	}
	if (copystate_run(&from->state, &to->state, stdout, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "gitopsd: --copy-state: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	if (from != NULL)
		config_unref(from);
	if (to != NULL)
		config_unref(to);
	return rc;
}

static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: gitopsd [-t] [-c file] [--log-level level] "
	    "[--log-format text|json]\n"
	    "       gitopsd --copy-state FROM_CONFIG TO_CONFIG\n"
	    "       gitopsd --version\n"
	    "  -c, --config FILE     configuration file (default %s)\n"
	    "  -t, --test            check the configuration and exit 0/1\n"
	    "      --log-level L     error, warn, info (default), debug\n"
	    "      --log-format F    text (default) or json\n"
	    "      --copy-state      copy FROM_CONFIG's state into TO_CONFIG's\n"
	    "                        empty one (e.g. SQLite into PostgreSQL)\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            this help\n", GITOPSD_DEFAULT_CONFIG);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "copy-state", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	struct gitopsd		 g;
	struct config_errors	 errs;
	enum log_level		 level = LOG_LEVEL_INFO;
	enum log_format		 format = LOG_FORMAT_TEXT;
	char			 err[512];
	int			 ch, test = 0, copy = 0, rc = 1;
	size_t			 i;

	memset(&g, 0, sizeof(g));
	g.cfg_path = GITOPSD_DEFAULT_CONFIG;
	/* cJSON's allocator hooks are global: set them before any thread. */
	handler_json_init();
	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			g.cfg_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("gitopsd %s\n", GITOPSD_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		case 'L':
			if (log_parse_level(optarg, &level) == -1) {
				fprintf(stderr, "gitopsd: bad --log-level %s\n",
				    optarg);
				return 2;
			}
			break;
		case 'S':
			copy = 1;
			break;
		case 'F':
			if (log_parse_format(optarg, &format) == -1) {
				fprintf(stderr, "gitopsd: bad --log-format %s\n",
				    optarg);
				return 2;
			}
			break;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - (copy ? 2 : 0) || (copy && test)) {
		main_usage(stderr);
		return 2;
	}
	log_init(level, format);
	if (copy)
		return main_copy_state(argv[optind], argv[optind + 1]);

	if (test) {
		if ((g.cfg = main_load(g.cfg_path, &errs)) == NULL) {
			main_print_errors(&errs, stdout);
			config_errors_free(&errs);
			return 1;
		}
		main_print_errors(&errs, stdout);
		config_errors_free(&errs);
		config_unref(g.cfg);
		printf("configuration OK\n");
		return 0;
	}

	if ((g.cfg = main_load(g.cfg_path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			log_warnx("%s", errs.msgs[i]);
		config_errors_free(&errs);
		log_warnx("invalid configuration %s", g.cfg_path);
		return 1;
	}
	for (i = 0; i < errs.nwarnings; i++)
		log_warnx("%s", errs.warnings[i]);
	config_errors_free(&errs);

	main_raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	/* A file-size limit (RLIMIT_FSIZE) must fail the write, not kill us:
	 * the store reports it and webhooks get 503 until space returns. */
	signal(SIGXFSZ, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init");
	if (git_repo_global_init() == -1)
		fatalx("libgit2 init failed");
	log_hook_libevent();
	metrics_init();
	metrics_describe("gitopsd_build_info", "gauge",
	    "Build information; the value is always 1.");
	metrics_gauge_set("gitopsd_build_info",
	    "version=\"" GITOPSD_VERSION "\"", 1);
	if ((g.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	log_batch_start(g.base);

	/* Read at start only, like the store it names this process in. */
	if (replica_choose(g.cfg->state.replica) == -1)
		fatalx("replica id chosen after it was made");
	if ((g.queue = queue_open(g.base, g.cfg, err, sizeof(err))) == NULL) {
		log_warnx("state store: %s", err);
		goto out;
	}
	if ((g.server = server_new(g.base, g.cfg, g.queue, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto out;
	}
	job_sync_on_start(queue_sync_started, g.queue);
	if (queue_start(g.queue) == -1) {
		log_warnx("cannot start workers");
		goto out;
	}
	g.drift = drift_new(g.base, g.queue, g.cfg);
	g.poller = poller_new(g.base, g.queue, g.cfg);
	server_set_poller(g.server, g.poller);
	g.ev_term = evsignal_new(g.base, SIGTERM, main_signal_cb, &g);
	g.ev_int = evsignal_new(g.base, SIGINT, main_signal_cb, &g);
	g.ev_hup = evsignal_new(g.base, SIGHUP, main_signal_cb, &g);
	if (g.ev_term == NULL || g.ev_int == NULL || g.ev_hup == NULL)
		fatalx("evsignal_new");
	evsignal_add(g.ev_term, NULL);
	evsignal_add(g.ev_int, NULL);
	evsignal_add(g.ev_hup, NULL);
	main_watchdog_start(&g);

	log_kv(LOG_LEVEL_INFO, "gitopsd started", "version", GITOPSD_VERSION,
	    "config", g.cfg_path, NULL);
	/* IPv6 literals go in brackets in URLs. */
	log_info("webhooks: http%s://%s%s%s:%d/hooks/<source>  admin: "
	    "http://%s%s%s:%d/api/v1", g.cfg->server.tls_cert_file ? "s" : "",
	    strchr(g.cfg->server.listen.host, ':') ? "[" : "",
	    g.cfg->server.listen.host,
	    strchr(g.cfg->server.listen.host, ':') ? "]" : "",
	    server_public_port(g.server),
	    strchr(g.cfg->admin.listen.host, ':') ? "[" : "",
	    g.cfg->admin.listen.host,
	    strchr(g.cfg->admin.listen.host, ':') ? "]" : "",
	    server_admin_port(g.server));
	main_notify("READY=1");

	if (event_base_dispatch(g.base) == -1)
		log_warnx("event loop failed");
	/* No loop iterations any more to flush batched lines. */
	log_batch_stop();
	queue_close(g.queue, g.draining ?
	    (int)(g.drain_deadline - util_mono_s() + 1) : 0);
	g.queue = NULL;
	job_sync_on_start(NULL, NULL);
	notify_runner_shutdown();
	log_info("stopped");
	rc = 0;
out:
	if (g.ev_drain != NULL)
		event_free(g.ev_drain);
	if (g.ev_watchdog != NULL)
		event_free(g.ev_watchdog);
	if (g.ev_term != NULL)
		event_free(g.ev_term);
	if (g.ev_int != NULL)
		event_free(g.ev_int);
	if (g.ev_hup != NULL)
		event_free(g.ev_hup);
	drift_free(g.drift);
	if (g.server != NULL)
		server_set_poller(g.server, NULL);
	poller_free(g.poller);
	server_free(g.server);
	if (g.queue != NULL) {
		queue_close(g.queue, 0);
		notify_runner_shutdown();
	}
	config_unref(g.cfg);
	log_batch_stop();
	if (g.base != NULL)
		event_base_free(g.base);
	git_repo_global_shutdown();
	metrics_free();
	curl_global_cleanup();
	return rc;
}
