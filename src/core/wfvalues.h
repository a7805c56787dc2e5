/*
 * wfvalues.h - configuration and secrets for workflows, from outside the
 * workflow files: what sio.config(name) / sio.secret(name) and the
 * templates ${config.name} / ${secret.name} read.
 *
 * Sources, lowest to highest precedence (a name given again takes the
 * later value):
 *
 *   1. environment variables SIO_CONFIG_<NAME> and SIO_SECRET_<NAME>
 *      (name = <NAME> in lower case: SIO_SECRET_USERS_TOKEN -> users_token),
 *      read once, when the configuration is loaded;
 *   2. WORKFLOW_CONFIG / WORKFLOW_SECRETS: a file of `name=value` lines
 *      (the --config format: `#` comments, blanks trimmed, one pair of
 *      surrounding quotes removed) or a directory with one file per name,
 *      its content the value (one trailing newline dropped; entries whose
 *      name starts with '.' skipped: a Kubernetes Secret or ConfigMap
 *      volume, Docker's /run/secrets).  Read at every load of the
 *      workflows, so they reload with them.
 *
 * A name is 1-64 of A-Z a-z 0-9 _ -.  A value is at most 1 MiB; a secret
 * must be valid UTF-8 without NUL (it is text, and redaction matches its
 * bytes) and at least 8 bytes long (every occurrence of it is redacted: a
 * short one would mask unrelated text).  Every error is SIO_E_CONFIG and
 * names the file (and line).
 *
 * Reading registers every secret value with the process's redactor
 * (redact.h), so no log line or output of the process carries it.
 */
#ifndef SIO_WFVALUES_H
#define SIO_WFVALUES_H

#include <stddef.h>

#include "config.h"
#include "sio_err.h"

typedef enum sio_wfkind { SIO_WF_CONFIG = 0, SIO_WF_SECRET = 1 } sio_wfkind;

/* One named value.  Strings are owned by the set. */
typedef struct sio_wfvalue {
    const char *name;
    const char *value; /* NUL-terminated; len bytes */
    size_t len;
} sio_wfvalue;

/* The values read at one load: config and secrets, each sorted by name. */
typedef struct sio_wfvalues {
    sio_wfvalue *v[2];  /* [SIO_WF_CONFIG], [SIO_WF_SECRET] */
    size_t n[2];
} sio_wfvalues;

/* Reads every source of cfg (env entries kept by the configuration, then
 * the files).  Returns a set the caller owns (sio_wfvalues_free), or NULL
 * with err set.  cfg NULL: an empty set. */
sio_wfvalues *sio_wfvalues_read(const sio_config *cfg, sio_err *err);

/* The value of name, or NULL. */
const sio_wfvalue *sio_wfvalues_get(const sio_wfvalues *s, sio_wfkind kind, const char *name);

/* Frees s.  NULL is fine. */
void sio_wfvalues_free(sio_wfvalues *s);

/* Is name a valid value name (1-64 of A-Z a-z 0-9 _ -)? */
int sio_wfvalue_name_ok(const char *name, size_t len);

#endif
