/*
 * yaml_json.h: YAML documents to cJSON trees (daemon/yaml_json.c, libyaml).
 *
 * Used for Kubernetes manifests and kubeconfig files.  Scalars follow the
 * YAML 1.2 core schema: plain true/false, null/~/empty, integers (decimal,
 * 0o octal, 0x hex) and floats are typed; quoted scalars and `!!str` stay
 * strings.  Aliases, anchors used as references, non-scalar keys, duplicate
 * keys, .inf/.nan (not representable in JSON) and documents over the caps
 * are rejected whole, with "line L, column C: why" in err.
 */
#ifndef GITOPSD_YAML_JSON_H
#define GITOPSD_YAML_JSON_H

#include <stddef.h>

struct cJSON;

struct yaml_json_limits {
	size_t	 max_bytes;	/* input size; 0: 8 MiB */
	size_t	 max_docs;	/* documents per stream; 0: 10000 */
	size_t	 max_depth;	/* nesting; 0: 64 */
	size_t	 max_nodes;	/* scalars+collections per stream; 0: 1000000 */
};

/*
 * Parse every document of buf.  Empty documents (a lone `---`, comments
 * only) are skipped.  On success *docs (malloc'd array of trees; free with
 * yaml_json_free) holds *ndocs trees and 0 is returned; on error -1 with a
 * reason in err and nothing to free.  limits may be NULL (defaults).
 */
int	yaml_json_parse(const char *buf, size_t len,
	    const struct yaml_json_limits *limits, struct cJSON ***docs,
	    size_t *ndocs, char *err, size_t errlen);

/* Parse exactly one document (a config-like file); NULL document is {}. */
struct cJSON	*yaml_json_parse_one(const char *buf, size_t len,
		    char *err, size_t errlen);

void	yaml_json_free(struct cJSON **docs, size_t ndocs);

#endif
