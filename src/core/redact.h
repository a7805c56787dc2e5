/*
 * redact.h - keeping secret values out of everything the host writes.
 *
 * A redactor holds named secret values (the workflows' secrets, see
 * wfvalues.h) and replaces every occurrence of each in a text with
 * "[redacted:<name>]".  The longest value is replaced first, so a value
 * that contains another is replaced whole.  Matching is on the bytes of
 * the value as it is: a value a script transformed (base64, a hash, a
 * slice) is not recognised.
 *
 * The process has one redactor, sio_redact_global(), which every route to
 * the outside uses: log lines (log.c's sio_log_emit, the one route the
 * host's and the sandbox's lines take), and what a Lua run hands back to
 * C (step results: worker_host.c; the
 * result, the error message: worker.c), so responses, DLQ entries, the
 * dedupe store and `run` output never hold a secret.  Values are only
 * added, never removed: a rotated secret stays redacted.  The busted
 * harness gives each box a redactor of its own.
 *
 * Thread-safe: values are added under a lock and read under it.
 */
#ifndef SIO_REDACT_H
#define SIO_REDACT_H

#include <stddef.h>

#include "sio_err.h"

struct json_t;

typedef struct sio_redactor sio_redactor;

/* A new, empty redactor; NULL when out of memory.  The caller owns it. */
sio_redactor *sio_redactor_new(void);

/* Frees r.  NULL is fine. */
void sio_redactor_free(sio_redactor *r);

/* The process's redactor (created on first use, never freed before exit). */
sio_redactor *sio_redact_global(void);

/* Adds value (len bytes, copied) under name (copied).  A value already held
 * is kept under its first name; an empty value is ignored.  Returns 0, or
 * -1 with err set when out of memory. */
int sio_redact_add(sio_redactor *r, const char *name, const char *value, size_t len, sio_err *err);

/* Forgets every value (the harness, between runs). */
void sio_redact_reset(sio_redactor *r);

/* How many values r holds. */
size_t sio_redact_count(sio_redactor *r);

/* s[0..len) with every value replaced: NULL when nothing matched (s is
 * fine as it is), else a malloc'd, NUL-terminated copy the caller frees,
 * its length in *outlen (may be NULL).  NULL also when out of memory; then
 * *failed is set (may be NULL). */
char *sio_redact_text(sio_redactor *r, const char *s, size_t len, size_t *outlen, int *failed);

/* Replaces every value in the strings of v (object values and keys, array
 * elements, recursively), in place.  skip names a member of the top-level
 * object left untouched (NULL: none).  Returns the number of strings
 * changed. */
size_t sio_redact_json(sio_redactor *r, struct json_t *v, const char *skip);

/* A JSON text (a log line, a result: line[0..len), no trailing newline)
 * with every value replaced in its strings (but the top-level member skip,
 * when not NULL: a log line's "ts"): NULL when nothing matched, else a
 * malloc'd text the caller frees (length in *outlen).  A text that is not
 * valid JSON but may hold a value is replaced by a log line that says it
 * was withheld. */
char *sio_redact_json_text(sio_redactor *r, const char *line, size_t len, const char *skip,
                           size_t *outlen);

#endif
