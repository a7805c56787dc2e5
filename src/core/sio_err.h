/*
 * sio_err.h - the one error convention of sio-orchestrator.
 *
 * A function that can fail returns int: 0 on success, -1 on failure, and
 * fills the caller's sio_err (which may be NULL when the caller does not
 * care).  Every code has a class: transient errors are worth retrying
 * (a broker or Redis is down, a timeout), permanent errors are not (bad
 * input, a script error, a sandbox violation).  The class, not the text,
 * decides what the service does with a failed command.
 */
#ifndef SIO_ERR_H
#define SIO_ERR_H

#include <stddef.h>

/* X(name, class, description): class is T (transient) or P (permanent). */
#define SIO_ERR_MAP(X)                                                     \
    X(OK, P, "ok")                                                         \
    X(NOMEM, P, "out of memory")                                           \
    X(INVAL, P, "invalid argument")                                        \
    X(CONFIG, P, "invalid configuration")                                  \
    X(IO, P, "i/o error")                                                  \
    X(PARSE, P, "malformed input")                                         \
    X(NOTFOUND, P, "not found")                                            \
    X(SCRIPT, P, "script error")                                           \
    X(SANDBOX, P, "sandbox violation")                                     \
    X(LIMIT, P, "resource limit exceeded")                                 \
    X(KAFKA_REJECTED, P, "kafka can never accept the message")            \
    X(TRANSIENT, T, "transient error")                                     \
    X(TIMEOUT, T, "timed out")                                             \
    X(KAFKA, T, "kafka unavailable")                                       \
    X(REDIS, T, "redis unavailable")                                       \
    X(UNAVAILABLE, T, "service unavailable")

typedef enum sio_code {
#define SIO_X_(name, cls, desc) SIO_E_##name,
    SIO_ERR_MAP(SIO_X_)
#undef SIO_X_
    SIO_E__COUNT
} sio_code;

typedef enum sio_errclass { SIO_PERMANENT = 0, SIO_TRANSIENT = 1 } sio_errclass;

typedef struct sio_err {
    sio_code code;
    char msg[512];
} sio_err;

/* Name of a code, e.g. "TIMEOUT".  Static storage; never NULL. */
const char *sio_code_name(sio_code code);

/* Transient or permanent, from the code alone. */
sio_errclass sio_code_class(sio_code code);

/* "transient" or "permanent". Static storage. */
const char *sio_class_name(sio_errclass cls);

/* Sets err (when not NULL) to code and a printf-formatted message.
 * Always returns -1, so `return sio_err_set(err, ...)` reads naturally. */
int sio_err_set(sio_err *err, sio_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to SIO_E_OK with an empty message.  err may be NULL. */
void sio_err_clear(sio_err *err);

#endif
