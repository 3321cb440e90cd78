/*
 * libFuzzer target: Git trees through the readers of daemon/git.c.
 * Input: lines.  The first is the app path; each other line is an op byte,
 * a name, and after a TAB the content:
 *   f  file (100644)      x  executable (100755)     l  symlink (120000)
 *   d  open a directory   u  close it                s  submodule (160000)
 * Names may be anything but NUL, newline and TAB ("..", ".git", "a/b",
 * "\" included): the objects are written raw, as a hostile server would
 * send them, into a bare repository in a private directory.  Then the
 * very functions a sync, a render and an update-image job use read the
 * commit: git_repo_walk (links read), git_repo_read_files, git_repo_export
 * into <sandbox>/a/b/export.  Checks:
 *  - nothing is ever created beside the export (<sandbox> holds a/b only,
 *    and a/b holds nothing but export);
 *  - the export holds no symlink, and every name in it and every path a
 *    walk reports is made of acceptable components (by a reference check
 *    written apart from git_repo_name_ok);
 *  - every link target git_repo_link_target accepts is normalized (no
 *    "", "." or ".." component) and lies strictly under the app path.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "gitrepo.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_DEPTH	12

static char	*fuzz_dir;		/* private: repo.git, sandbox/ */
static char	*fuzz_repo;
static char	*fuzz_sandbox;
static char	*fuzz_export;

/*
 * Every component of p (len bytes, '/'-separated) a name a reader may
 * use, by a reference written apart from git_repo_name_ok (whose word
 * alone would prove nothing).
 */
static void
fuzz_check_path(const char *p, size_t len)
{
	size_t	 i = 0, j;

	while (i <= len) {
		for (j = i; j < len && p[j] != '/'; j++)
			;
		if (j == i || (j - i == 1 && p[i] == '.') ||
		    (j - i == 2 && p[i] == '.' && p[i + 1] == '.') ||
		    (j - i == 4 && p[i] == '.' && (p[i + 1] | 0x20) == 'g' &&
		    (p[i + 2] | 0x20) == 'i' && (p[i + 3] | 0x20) == 't') ||
		    memchr(p + i, '\\', j - i) != NULL ||
		    memchr(p + i, '\0', j - i) != NULL)
			abort();
		i = j + 1;
	}
}

static int
fuzz_scan_cb(const char *path, const struct stat *st, int flag,
    struct FTW *f)
{
	size_t	 n = strlen(fuzz_export);

	(void)st;
	(void)f;
	if (flag == FTW_SL || flag == FTW_SLN)
		abort();	/* the export never holds a symlink */
	if (strlen(path) > n + 1)
		fuzz_check_path(path + n + 1, strlen(path + n + 1));
	return 0;
}

/* dir holds exactly the entry `only` (NULL: nothing). */
static void
fuzz_only(const char *dir, const char *only)
{
	DIR		*d;
	struct dirent	*e;

	if ((d = opendir(dir)) == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (only == NULL || strcmp(e->d_name, only) != 0)
			abort();
	}
	closedir(d);
}

static void
fuzz_cleanup(void)
{
	util_rmtree(fuzz_dir);
}

static int
fuzz_init(void)
{
	git_repository	*r;
	char		 tmpl[] = "/tmp/fuzz_tree-XXXXXX", *p;

	if (mkdtemp(tmpl) == NULL)
		return -1;
	fuzz_dir = xstrdup(tmpl);
	atexit(fuzz_cleanup);
	fuzz_repo = xasprintf("%s/repo.git", fuzz_dir);
	fuzz_sandbox = xasprintf("%s/sandbox", fuzz_dir);
	fuzz_export = xasprintf("%s/a/b/export", fuzz_sandbox);
	git_libgit2_init();
	/* Objects are written raw: a server is not held to git's checks. */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
	if (git_repository_init(&r, fuzz_repo, 1) < 0)
		return -1;
	git_repository_free(r);
	p = xasprintf("%s/a/b", fuzz_sandbox);
	if (util_mkdirs(p, 0700) == -1)
		return -1;
	free(p);
	return 0;
}

/* One tree being built: its raw entries. */
struct fuzz_tree {
	struct buf	 raw;
	char		*name;
};

static int
fuzz_entry(struct buf *raw, const char *mode, const char *name,
    const git_oid *oid)
{
	return buf_printf(raw, "%s %s", mode, name) == -1 ||
	    buf_add(raw, "", 1) == -1 ||
	    buf_add(raw, oid->id, GIT_OID_RAWSZ) == -1 ? -1 : 0;
}

static int
fuzz_close(git_odb *odb, struct fuzz_tree *st, int *depth)
{
	git_oid	 oid;
	int	 rc;

	rc = git_odb_write(&oid, odb, st[*depth].raw.data != NULL ?
	    st[*depth].raw.data : "", st[*depth].raw.len, GIT_OBJECT_TREE);
	buf_free(&st[*depth].raw);
	if (rc == 0 && *depth > 0)
		rc = fuzz_entry(&st[*depth - 1].raw, "40000",
		    st[*depth].name, &oid);
	free(st[*depth].name);
	st[*depth].name = NULL;
	(*depth)--;
	return rc;
}

static int
fuzz_walk_cb(const char *path, const char *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	(void)arg;
	fuzz_check_path(path, strlen(path));
	return 0;
}

/* Link targets: accepted ones are normalized and under the app. */
static void
fuzz_link(const char *app, const char *dir, const char *target)
{
	char	*out, *nbase, err[512];
	size_t	 n, bl;

	/* The base as the readers normalize it; a refused one is skipped. */
	nbase = xstrdup(app);
	while (strncmp(nbase, "./", 2) == 0)
		memmove(nbase, nbase + 2, strlen(nbase + 2) + 1);
	bl = strlen(nbase);
	while (bl > 0 && nbase[bl - 1] == '/')
		nbase[--bl] = '\0';
	if (strcmp(nbase, ".") == 0)
		nbase[bl = 0] = '\0';
	if (bl > 0 && (strstr(nbase, "//") != NULL ||
	    strstr(nbase, "/./") != NULL)) {
		free(nbase);
		return;
	}
	if (git_repo_link_target(nbase, dir, target, strlen(target), &out,
	    err, sizeof(err)) == 0) {
		n = strlen(out);
		if (n == 0)
			abort();
		fuzz_check_path(out, n);
		if (bl > 0 && (n <= bl || strncmp(out, nbase, bl) != 0 ||
		    out[bl] != '/'))
			abort();
		free(out);
	} else if (err[0] == '\0')
		abort();	/* a refusal has a reason */
	free(nbase);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	struct fuzz_tree	 st[FUZZ_DEPTH + 1];
	struct git_repo_walk	 w;
	struct git_repo		*g = NULL;
	git_repository		*repo = NULL;
	git_odb			*odb = NULL;
	git_oid			 oid, root;
	struct buf		 commit;
	char			*in, *line, *next, *tab, *app, hex[41], err[512];
	char			 dirpath[4096];
	const char		*mode;
	int			 depth = 0;

	if (!inited) {
		if (fuzz_init() == -1)
			abort();
		inited = 1;
	}
	if (size > 16384 || memchr(data, '\0', size) != NULL)
		return 0;
	in = xmalloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	app = in;
	if ((next = strchr(in, '\n')) != NULL)
		*next++ = '\0';
	if (git_repository_open_bare(&repo, fuzz_repo) < 0 ||
	    git_repository_odb(&odb, repo) < 0)
		abort();
	memset(st, 0, sizeof(st));
	buf_init(&st[0].raw, 1 << 20);
	dirpath[0] = '\0';
	for (line = next; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((tab = strchr(line + 1, '\t')) != NULL)
			*tab++ = '\0';
		else
			tab = line + strlen(line);
		mode = NULL;
		switch (line[0]) {
		case 'f':	mode = "100644";	break;
		case 'x':	mode = "100755";	break;
		case 'l':	mode = "120000";	break;
		case 's':	mode = "160000";	break;
		case 'd':
			if (depth == FUZZ_DEPTH)
				continue;
			depth++;
			buf_init(&st[depth].raw, 1 << 20);
			st[depth].name = xstrdup(line + 1);
			continue;
		case 'u':
			if (depth > 0 && fuzz_close(odb, st, &depth) != 0)
				abort();
			continue;
		default:
			continue;
		}
		if (line[0] == 'l') {
			int	 i, n = 0;

			/* The link's directory, as the readers see it. */
			for (i = 1; i <= depth && n >= 0 &&
			    (size_t)n < sizeof(dirpath); i++)
				n += snprintf(dirpath + n, sizeof(dirpath) -
				    (size_t)n, "%s%s", i > 1 ? "/" : "",
				    st[i].name);
			if (n >= 0 && (size_t)n < sizeof(dirpath))
				fuzz_link(app, dirpath, tab);
		}
		if (line[0] == 's')
			memset(&oid, 0x11, sizeof(oid));
		else if (git_odb_write(&oid, odb, tab, strlen(tab),
		    GIT_OBJECT_BLOB) != 0)
			abort();
		if (fuzz_entry(&st[depth].raw, mode, line + 1, &oid) != 0)
			abort();
	}
	while (depth > 0)
		if (fuzz_close(odb, st, &depth) != 0)
			abort();
	if (git_odb_write(&root, odb, st[0].raw.data != NULL ? st[0].raw.data :
	    "", st[0].raw.len, GIT_OBJECT_TREE) != 0)
		abort();
	buf_free(&st[0].raw);
	buf_init(&commit, 4096);
	git_oid_tostr(hex, sizeof(hex), &root);
	buf_printf(&commit, "tree %s\nauthor f <f@f> 0 +0000\n"
	    "committer f <f@f> 0 +0000\n\nfuzz\n", hex);
	if (git_odb_write(&oid, odb, commit.data, commit.len,
	    GIT_OBJECT_COMMIT) != 0)
		abort();
	buf_free(&commit);
	git_oid_tostr(hex, sizeof(hex), &oid);
	git_odb_free(odb);
	git_repository_free(repo);

	if (git_repo_open_path(fuzz_repo, &g, err, sizeof(err)) !=
	    GIT_REPO_OK)
		abort();
	memset(&w, 0, sizeof(w));
	w.dir = app;
	w.max_bytes = 1 << 16;
	w.links = 1;
	w.cb = fuzz_walk_cb;
	(void)git_repo_walk(g, hex, &w, err, sizeof(err));
	(void)git_repo_read_files(g, hex, app, 1 << 16, fuzz_walk_cb, NULL,
	    err, sizeof(err));
	(void)git_repo_export(g, hex, app, fuzz_export, 1 << 20, err,
	    sizeof(err));
	git_repo_close(g);

	/* Nothing beside the export; no link, no bad name inside it. */
	fuzz_only(fuzz_sandbox, "a");
	{
		char	*ab = xasprintf("%s/a", fuzz_sandbox);

		fuzz_only(ab, "b");
		free(ab);
		ab = xasprintf("%s/a/b", fuzz_sandbox);
		fuzz_only(ab, "export");
		free(ab);
	}
	nftw(fuzz_export, fuzz_scan_cb, 16, FTW_PHYS);
	util_rmtree(fuzz_export);
	free(in);
	return 0;
}
