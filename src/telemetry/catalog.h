/*
 * catalog.h - what /workflows reports: the live workflow set (each
 * workflow's intent, file, SHA-256 of the file's content, when that content
 * went live) with the set's version, and the last reload's outcome.
 *
 * The worker that loads publishes (worker 0 in serve; every worker loads
 * the same files); the operations thread reads.  Thread-safe.
 */
#ifndef SIO_CATALOG_H
#define SIO_CATALOG_H

#include <stddef.h>

#include "metrics.h"

/* A set went live: version and its workflows (intent and steps; files[i]
 * the name /workflows shows, paths[i] where it was read; all copied).
 * Hashes each path; a file whose content did not change keeps its load
 * time.  Also feeds the metric label catalogue and the workflows gauges. */
void sio_catalog_publish(long version, const sio_metrics_wf *wfs, const char *const *files,
                         const char *const *paths, size_t n);

/* A reload ended: ok (the new set went live) or rejected with errors
 * ("file:line: msg" lines; copied, may be NULL). */
void sio_catalog_reload(int ok, const char *errors);

/* The /workflows document (malloc'd JSON, caller frees), or NULL when out
 * of memory:
 * {"version":3,"loaded_at":"...","workflows":[{"intent","file","sha256",
 *  "loaded_at"}],"last_reload":null|{"result":"ok"|"rejected","at":"...",
 *  "errors":["file:line: msg",...]}} */
char *sio_catalog_json(size_t *len);

/* Test support: forgets everything. */
void sio_catalog_reset(void);

#endif
