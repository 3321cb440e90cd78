/*
 * manifest.h: byte-exact image tag edits in YAML manifests (daemon/manifest.c).
 *
 * A file is parsed with libyaml into events only to learn where things are;
 * the new file is the old bytes with the tag (or digest) bytes spliced in at
 * the reported offsets.  Nothing is ever re-emitted.  See
 * docs/image-updates.md for the places that are recognised.
 */
#ifndef GITOPSD_MANIFEST_H
#define GITOPSD_MANIFEST_H

#include <stddef.h>

/* Files larger than this are refused (a deploy manifest is far smaller). */
#define MANIFEST_MAX_BYTES	(1024 * 1024)
/* Deeper nesting is refused (no real manifest comes near it). */
#define MANIFEST_MAX_DEPTH	64
/* More alias nodes than this are refused (alias bombs). */
#define MANIFEST_MAX_ALIASES	256

/* What to set, and for which image. */
struct manifest_target {
	const char	*image;		/* repository: "registry.acme.io/acme/web" */
	const char	*marker;	/* "$imagepolicy" name: "<app>:<image>" */
	const char	*tag;		/* new tag, or NULL (digest only) */
	const char	*digest;	/* new "sha256:..." or NULL */
	/*
	 * Is candidate newer than current (NULL: none)?  1 yes, 0 no.
	 * NULL: any different tag is taken.
	 */
	int		(*newer)(void *arg, const char *current,
			    const char *candidate);
	void		*arg;
};

struct manifest_result {
	char	*out;			/* new file (malloc'd), NULL: unchanged */
	size_t	 outlen;
	int	 found;			/* references to the image */
	int	 changed;		/* edited */
	int	 already;		/* already at the tag/digest */
	int	 skipped;		/* current tag not older (never downgrade) */
	int	 unsupported;		/* found but not editable (see note) */
	char	*old_tag;		/* a current tag that was replaced or kept */
	char	*note;			/* first reason something was not edited */
};

/*
 * Edit buf (a file's bytes; name is its repository path, used to spot
 * kustomization files and in messages).  Returns 0 with res filled, or -1
 * when the file cannot be handled (does not parse, too large, too deep,
 * not UTF-8) with "name:line:column: reason" in err; the file is then left
 * alone.  Free res with manifest_result_free.
 */
int	manifest_update(const char *name, const char *buf, size_t len,
	    const struct manifest_target *, struct manifest_result *res,
	    char *err, size_t errlen);
void	manifest_result_free(struct manifest_result *);

/*
 * "<registry>/<repository>" of an image reference or repository, with
 * Docker Hub spelled docker.io and "library/" implied (malloc'd), or NULL
 * when it is not a reference.  Tag and digest are dropped.
 */
char	*manifest_image_name(const char *ref);

/* The marker's image name for a repository: its last path component. */
const char *manifest_marker_image(const char *repository);

#endif
