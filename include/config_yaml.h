/*
 * config_yaml.h: the configuration's YAML node tree and its diagnostics,
 * internal to the config modules (daemon/config_yaml.c).
 */
#ifndef GITOPSD_CONFIG_YAML_H
#define GITOPSD_CONFIG_YAML_H

#include <stdarg.h>
#include <stddef.h>

enum config_node_kind {
	CONFIG_NODE_SCALAR,
	CONFIG_NODE_MAP,
	CONFIG_NODE_SEQ,
};

struct config_node {
	enum config_node_kind	 kind;
	int			 line;		/* 1-based */
	int			 col;
	/* scalar */
	char			*str;
	size_t			 len;
	int			 plain;		/* unquoted, untagged: may be
						 * null/bool/int */
	int			 null;		/* ~, null, empty or !!null */
	/* map: kids[0]=key0, kids[1]=value0, ...; seq: items */
	struct config_node	**kids;
	size_t			 nkids;
	size_t			 allockids;
};

struct config_diag {
	int	 line;
	int	 col;
	size_t	 seq;
	char	*msg;
};

/* Messages of one kind (errors or warnings), in the order made. */
struct config_diags {
	struct config_diag	*v;
	size_t			 n;
	size_t			 alloc;
	size_t			 seq;
};

struct config_mark {
	char	*path;
	int	 line;
	int	 col;
};

/* Key path -> position, kept with a loaded config (config.h). */
struct config_marks {
	char			*file;		/* the config's name in messages */
	struct config_mark	*v;
	size_t			 n;
	size_t			 alloc;
	int			 sorted;
};

/*
 * Parse buf into a node tree.  Returns the root (a null scalar for an empty
 * document; free with config_node_free) or NULL after adding the error to
 * errs; file names the buffer in messages.
 */
struct config_node	*config_yaml_parse(const char *file,
			    struct config_diags *errs, const char *buf,
			    size_t len);
void			 config_node_free(struct config_node *);
/* "a mapping", "a list", "a scalar", "a quoted string". */
const char		*config_node_kind_name(const struct config_node *);

/* The value of key in a mapping, its key node, and whether it is set. */
const struct config_node *config_node_get(const struct config_node *map,
			    const char *key);
const struct config_node *config_node_get_key(const struct config_node *map,
			    const char *key);
int			 config_node_has(const struct config_node *map,
			    const char *key);

/* "FILE:LINE:COLUMN: path: message"; path NULL or "": no key part. */
char		*config_diag_format(const char *file, int line, int col,
		    const char *path, const char *fmt, va_list ap)
		    __attribute__((format(printf, 5, 0)));
void		 config_diags_vadd(struct config_diags *, const char *file,
		    int line, int col, const char *path, const char *fmt,
		    va_list ap) __attribute__((format(printf, 6, 0)));
/* Sort by position and move the messages to the end of (*v, *n). */
void		 config_diags_flush(struct config_diags *, char ***v,
		    size_t *n);
void		 config_diags_free(struct config_diags *);

void		 config_marks_add(struct config_marks *, const char *path,
		    int line, int col);
void		 config_marks_sort(struct config_marks *);
/*
 * Position of keypath, or of its nearest recorded parent; 1:1 when none.
 * "a[2].b.c" falls back to "a[2].b", "a[2]", "a".
 */
void		 config_marks_find(const struct config_marks *,
		    const char *keypath, int *line, int *col);
void		 config_marks_free(struct config_marks *);

#endif
