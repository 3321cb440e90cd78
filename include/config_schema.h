/*
 * config_schema.h: the vocabulary of configuration key tables, for the
 * config core and for plug-ins that own keys (DESIGN.md section 6).
 *
 * A key is one row `{ "name", T_TYPE, .off = ..., .def = ..., .help = ... }`
 * in a table of struct config_key; the same row converts the value,
 * applies its default, frees it and documents it (config_keys, docs).
 *
 * A list whose entries are chosen by a `type` key (sources, notifiers)
 * names a struct config_family: the plug-in table of that list.  The config
 * core asks the family for the plug-in of an entry's type and fills the
 * plug-in's own options struct from the plug-in's key table; it knows no
 * type names.  A plug-in declares beside its code:
 *
 *	struct foo_opts { char *url; ... };
 *	static const struct config_key foo_keys[] = {
 *		{ "url", T_STR, .off = offsetof(struct foo_opts, url),
 *		  .help = "foo: target URL" },
 *	};
 *	static const struct config_plugin foo_config =
 *	    CONFIG_PLUGIN(struct foo_opts, foo_keys, foo_config_check);
 *
 * and its entry's record carries the options as `opts`.  A key another
 * plug-in of the same family declares is "not used by type foo"; any other
 * key is unknown.  The check runs when the entry has been walked, with the
 * entry's mapping, and reports through config_walk_error() in the usual
 * "FILE:LINE:COLUMN: key.path: message" form.
 */
#ifndef GITOPSD_CONFIG_SCHEMA_H
#define GITOPSD_CONFIG_SCHEMA_H

#include <stddef.h>

#include "config_yaml.h"
#include "util.h"

enum key_type {
	T_STR,
	T_NAME,			/* string, [A-Za-z0-9._-]+ */
	T_PATH,			/* relative: against the config's directory */
	T_KUBECONFIG,		/* path, or the literal "in-cluster" */
	T_REPO_URL,		/* URL, scp-like, or a local path (resolved) */
	T_FILE,			/* path to a file that must be readable now */
	T_INT,
	T_SIZE,
	T_BOOL,
	T_DOUBLE,
	T_LISTEN,
	T_STRLIST,
	T_FLAGS,
	T_ENUM,
	T_TABLE,
	T_LIST,
	T_HEADERS,
	T_SECRET_FILE,		/* off: path, off2: contents */
	T_SECRET_ENV,		/* off: variable name, off2: contents */
	T_SRC_SECRET_FILE,	/* off: secrets, off2: nsecrets, off3: paths */
	T_SRC_SECRET_FILES,
	T_SRC_SECRET_ENV,
};

#define KEY_REQUIRED	0x1
#define KEY_NOSTORE	0x2	/* validated only; a check reads the node */
#define KEY_FREE_SHARED	0x4	/* frees off2/off3 shared with sibling keys */
#define KEY_PRIVATE	0x8	/* T_FILE holding a private key: mode checked */
#define KEY_REFUSED	0x10	/* known, only for the check to refuse it
				 * with a better message; not listed */
#define KEY_ONE_OR_LIST	0x20	/* T_STRLIST: a single string is a list of
				 * one (alertmanager's url) */

struct config_enum {
	const char	*name;
	int		 value;
};

struct config_table;
struct config_walk;		/* one load in progress */
struct config_node;		/* a YAML node with its line and column
				 * (config_yaml.h) */

/*
 * One row per key.  Rows open with the name and type, positionally (tools
 * and tests scan for `{ "name", T_TYPE,`), then designated fields.
 */
struct config_key {
	const char			*name;
	enum key_type			 type;
	size_t				 off;
	size_t				 off2;
	size_t				 off3;
	long long			 min;
	long long			 max;
	const char			*def;
	int				 flags;
	const struct config_table	*sub;
	const struct config_enum	*enums;
	const char			*help;
};

/*
 * Checks that span keys.  map is the object's mapping (NULL when the table
 * was absent), at where to report what is missing.
 */
typedef void	config_check_fn(struct config_walk *, void *obj,
		    const struct config_node *map,
		    const struct config_node *at);

/* A plug-in's own keys, filling an options struct of `size` bytes. */
struct config_plugin {
	size_t			 size;
	const struct config_key	*keys;
	size_t			 nkeys;
	config_check_fn		*check;		/* may be NULL */
};

#define CONFIG_PLUGIN(type, k, chk) \
	{ .size = sizeof(type), .keys = k, \
	  .nkeys = sizeof(k) / sizeof((k)[0]), .check = chk }

/*
 * The plug-in table of a list.  find() returns the configuration of a type
 * and its descriptor (stored in the entry at desc_off), NULL for an unknown
 * type; nth() walks every plug-in (NULL past the end) for listings and for
 * "not used by type".  The options pointer goes at opts_off.
 */
struct config_family {
	const char		*type_key;	/* "type" */
	size_t			 type_off;	/* char * in the entry */
	size_t			 desc_off;	/* const void * in the entry */
	size_t			 opts_off;	/* void * in the entry */
	const struct config_plugin *(*find)(const char *type,
				    const void **desc);
	const struct config_plugin *(*nth)(size_t i, const char **type);
};

/*
 * An error at node `at` for the key path being walked plus ".sub" (sub
 * NULL: the path itself).
 */
void		 config_walk_error(struct config_walk *,
		    const struct config_node *at, const char *sub,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- for the config core (daemon/config.c) */

/* State of one load. */
struct config_walk {
	const char		*file;		/* as named in messages */
	char			*basedir;	/* relative paths start here */
	struct config_diags	 errors;
	struct config_diags	 warnings;
	struct buf		 path;		/* current key path */
	struct config_marks	*marks;
	struct config		*cfg;
};

struct config_table {
	const char			*name;
	size_t				 size;	/* element size for lists */
	const struct config_key		*keys;
	size_t				 nkeys;
	config_check_fn			*check;
	const struct config_family	*family;	/* entries: plug-ins */
};

#define CONFIG_TABLE(n, type, k, chk) \
	{ .name = n, .size = sizeof(type), .keys = k, .nkeys = nitems(k), \
	  .check = chk }

#define CONFIG_FIELD(obj, off, type) \
	((type *)(void *)((char *)(obj) + (off)))

/*
 * Fill obj from map with table t: every key converted, unknown and inline
 * secret keys reported, missing required keys reported at `at` (the map,
 * or its parent when the table is absent), defaults applied, then the
 * table's cross-key check.  map may be NULL (absent table: defaults only).
 */
void		 config_schema_walk_table(struct config_walk *,
		    const struct config_table *t, void *obj,
		    const struct config_node *map,
		    const struct config_node *at);
/* Free what the walk filled (not obj itself). */
void		 config_schema_free_table(const struct config_table *,
		    void *obj);
/* Every required key of every entry holds a value (config.h). */
int		 config_schema_complete(const struct config_table *,
		    const void *obj);

typedef void	config_schema_cb(const char *keypath, const char *type,
		    const char *def, const char *help, void *arg);
/* Each key's path, type text, default and help, plug-ins' keys included. */
void		 config_schema_list_table(const struct config_table *,
		    config_schema_cb *, void *arg);

/* A warning at `at` for the current key path. */
void		 config_walk_warning(struct config_walk *,
		    const struct config_node *at, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/* An error for a key path recorded by the walk (its position, or its
 * nearest parent's). */
void		 config_walk_error_at(struct config_walk *,
		    const char *keypath, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

/* A YAML boolean (true/yes/on, false/no/off); an error otherwise. */
int		 config_schema_value_bool(struct config_walk *,
		    const struct config_node *, int *out);
/* Whether name is a key that would hold a secret inline ("password"). */
int		 config_schema_is_inline_secret(const char *name);
/* Lexically clean an absolute path: no "//", "." or "x/..". */
char		*config_schema_path_clean(const char *);

#endif
