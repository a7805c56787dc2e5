/*
 * http_req.h - what an HTTP request from a script may be, checked before
 * anything is sent.  One rule for every way a request leaves: the host
 * contract (sandbox/luahost.c) applies it to every request of the engine,
 * in the daemon and in the busted harness alike, and the daemon's client
 * (aio/aio_http.c) applies it again to what it is handed.
 */
#ifndef SIO_HTTP_REQ_H
#define SIO_HTTP_REQ_H

#include <stddef.h>

#include "sio_err.h"

/* One request header, as a script gave it (not NUL-terminated). */
typedef struct sio_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sio_http_header;

/* The hosts requests may go to (SIO_HTTP_ALLOW), parsed once. */
typedef struct sio_http_allow sio_http_allow;

/* Parses entries (NULL-terminated, as sio_config.http_allow holds them;
 * NULL or empty: nothing is allowed; "*": anything).  Returns the list
 * (the caller's, sio_http_allow_free), or NULL with err. */
sio_http_allow *sio_http_allow_new(const char *const *entries, sio_err *err);
void sio_http_allow_free(sio_http_allow *a); /* accepts NULL */

/* Checks url (url_len bytes, NUL-terminated) against the rules: http or
 * https, well formed, its host on allow.  0, or -1 with err: SIO_E_INVAL
 * for a malformed request, SIO_E_SANDBOX for a scheme or host the rules
 * refuse (both permanent). */
int sio_http_check(const sio_http_allow *allow, const char *url, size_t url_len, sio_err *err);

#endif
