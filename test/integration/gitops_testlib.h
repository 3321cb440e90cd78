/*
 * gitops_testlib.h: helpers for the git and update-image tests: temporary
 * directories, real bare repositories made with the git command line, and
 * real servers (git daemon, lighttpd + git http-backend) on 127.0.0.1.
 */
#ifndef GITOPS_TESTLIB_H
#define GITOPS_TESTLIB_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Run a shell command (printf-style); returns its exit status. */
__attribute__((format(printf, 1, 2)))
static int
tl_sh(const char *fmt, ...)
{
	char	 cmd[8192];
	va_list	 ap;
	int	 st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Output of a shell command, trailing newline stripped (static buffer). */
__attribute__((format(printf, 1, 2)))
static const char *
tl_out(const char *fmt, ...)
{
	static char	 out[65536];
	char		 cmd[8192];
	va_list		 ap;
	FILE		*f;
	size_t		 n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if ((f = popen(cmd, "r")) == NULL)
		return out;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	pclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return out;
}

/* A fresh temporary directory (malloc'd path). */
static char *
tl_tmpdir(void)
{
	char	 tmpl[] = "/tmp/gitopsd-test.XXXXXX";
	char	*d = mkdtemp(tmpl);

	return d != NULL ? strdup(d) : NULL;
}

static void
tl_rmrf(const char *dir)
{
	if (dir != NULL && strncmp(dir, "/tmp/gitopsd-test.", 18) == 0)
		tl_sh("rm -rf '%s'", dir);
}

#define TL_GIT	"git -c user.name=Tester -c user.email=tester@localhost " \
		"-c init.defaultBranch=main -c protocol.file.allow=always"

/*
 * A bare repository <dir>/<name>.git with one commit on main made from
 * the files under <dir>/seed (written by the caller first; may be absent).
 */
static int
tl_bare_repo(const char *dir, const char *name)
{
	return tl_sh("set -e; cd '%s'; " TL_GIT " init -q --bare '%s.git'; "
	    "git --git-dir='%s.git' config receive.denyNonFastForwards true; git --git-dir='%s.git' config http.receivepack true; "
	    TL_GIT " init -q work-%s; mkdir -p seed; cp -a seed/. work-%s/; "
	    "cd work-%s; " TL_GIT " add -A; "
	    TL_GIT " commit -q --allow-empty -m seed; "
	    TL_GIT " push -q '../%s.git' main",
	    dir, name, name, name, name, name, name, name);
}

/* A free TCP port on 127.0.0.1 (bound then released). */
static int
tl_free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Wait until something accepts on 127.0.0.1:port (up to ~5 s). */
static int
tl_wait_port(int port)
{
	struct sockaddr_in	 sin;
	int			 fd, i;
	struct timespec		 ts = { 0, 50 * 1000 * 1000 };

	for (i = 0; i < 100; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return -1;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(fd);
			return 0;
		}
		close(fd);
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Start argv in the background; returns its pid or -1. */
static pid_t
tl_spawn(char *const argv[], const char *logfile)
{
	pid_t	 pid = fork();

	if (pid == 0) {
		FILE *f = freopen(logfile, "w", stderr);

		(void)f;
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		setpgid(0, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Stop a process this test started. */
static void
tl_stop(pid_t pid)
{
	int	 st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

/* git daemon serving dir (receive-pack on) on a free port. */
static pid_t
tl_git_daemon(const char *dir, int *portp)
{
	char	 portarg[32], base[4096], log[4200];
	char	*argv[] = { "git", "daemon", "--reuseaddr", "--export-all",
	    "--enable=receive-pack", "--listen=127.0.0.1", portarg, base,
	    NULL, NULL };
	pid_t	 pid;

	*portp = tl_free_port();
	snprintf(portarg, sizeof(portarg), "--port=%d", *portp);
	snprintf(base, sizeof(base), "--base-path=%s", dir);
	argv[8] = (char *)dir;
	snprintf(log, sizeof(log), "%s/git-daemon.log", dir);
	pid = tl_spawn(argv, log);
	if (pid > 0 && tl_wait_port(*portp) == -1) {
		tl_stop(pid);
		return -1;
	}
	return pid;
}

/*
 * lighttpd with git http-backend for dir, HTTP basic auth (user/password,
 * plain password file), receive-pack enabled, on a free port.
 */
static pid_t
tl_lighttpd(const char *dir, const char *user, const char *password,
    int *portp)
{
	char	 conf[4200], log[4200];
	char	*argv[] = { "/usr/sbin/lighttpd", "-D", "-f", conf, NULL };
	FILE	*f;
	pid_t	 pid;

	*portp = tl_free_port();
	snprintf(conf, sizeof(conf), "%s/htpasswd", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f, "%s:%s\n", user, password);
	fclose(f);
	snprintf(conf, sizeof(conf), "%s/lighttpd.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f,
	    "server.modules = (\"mod_auth\", \"mod_authn_file\", \"mod_cgi\", "
	    "\"mod_alias\", \"mod_setenv\")\n"
	    "server.document-root = \"%s\"\n"
	    "server.bind = \"127.0.0.1\"\n"
	    "server.port = %d\n"
	    "server.errorlog = \"%s/lighttpd-error.log\"\n"
	    "auth.backend = \"plain\"\n"
	    "auth.backend.plain.userfile = \"%s/htpasswd\"\n"
	    "auth.require = ( \"/git/\" => ( \"method\" => \"basic\", "
	    "\"realm\" => \"git\", \"require\" => \"valid-user\" ) )\n"
	    "alias.url = ( \"/git/\" => \"/usr/lib/git-core/git-http-backend/\" )\n"
	    "$HTTP[\"url\"] =~ \"^/git/\" {\n"
	    "  cgi.assign = ( \"\" => \"\" )\n"
	    "  setenv.add-environment = ( \"GIT_PROJECT_ROOT\" => \"%s\", "
	    "\"GIT_HTTP_EXPORT_ALL\" => \"1\" )\n"
	    "}\n", dir, *portp, dir, dir, dir);
	fclose(f);
	snprintf(log, sizeof(log), "%s/lighttpd.log", dir);
	pid = tl_spawn(argv, log);
	if (pid > 0 && tl_wait_port(*portp) == -1) {
		tl_stop(pid);
		return -1;
	}
	return pid;
}

/*
 * sshd on 127.0.0.1 (free port) with an ed25519 host key <dir>/ssh/hostkey
 * and the client key <dir>/ssh/id allowed; <dir>/ssh/known_hosts trusts
 * the host key for [127.0.0.1]:port.  Needs root (privilege separation).
 */
static pid_t
tl_sshd(const char *dir, int *portp)
{
	char	 conf[4200], log[4200];
	char	*argv[] = { "/usr/sbin/sshd", "-D", "-e", "-f", conf, NULL };
	FILE	*f;
	pid_t	 pid;

	*portp = tl_free_port();
	if (tl_sh("set -e; mkdir -p /run/sshd '%s/ssh'; cd '%s/ssh'; "
	    "rm -f hostkey* id id.pub; "
	    "ssh-keygen -q -t ed25519 -N '' -f hostkey; "
	    "ssh-keygen -q -t ed25519 -N '' -f id; cp id.pub authorized_keys; "
	    "{ printf '[127.0.0.1]:%d '; cat hostkey.pub; } > known_hosts",
	    dir, dir, *portp) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/ssh/sshd_config", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f, "Port %d\nListenAddress 127.0.0.1\nHostKey %s/ssh/hostkey\n"
	    "AuthorizedKeysFile %s/ssh/authorized_keys\n"
	    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
	    "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
	    "StrictModes no\nUsePAM no\nPidFile %s/ssh/sshd.pid\n",
	    *portp, dir, dir, dir);
	fclose(f);
	snprintf(log, sizeof(log), "%s/ssh/sshd.log", dir);
	pid = tl_spawn(argv, log);
	if (pid > 0 && tl_wait_port(*portp) == -1) {
		tl_stop(pid);
		return -1;
	}
	return pid;
}

#endif
