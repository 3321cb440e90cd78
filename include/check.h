/*
 * check.h: configuration checks that need the plug-in modules (handler and
 * notifier types, tag policies, notifier templates, kubeconfigs).  Run by
 * `gitopsd -t`, at start and on every reload, after config_load().
 */
#ifndef GITOPSD_CHECK_H
#define GITOPSD_CHECK_H

struct config;
struct config_errors;

/* Append errors and warnings to errs; returns the number of errors added. */
int	check_config(const struct config *, struct config_errors *errs);

#endif
