/*
 * http_req.h - what an HTTP request from a script may be, checked before
 * anything is sent.  One rule for every way a request leaves: the host
 * contract (sandbox/luahost_ops.c) applies it to every request of the
 * engine, in the daemon and in the busted harness alike, and the daemon's
 * client (aio/aio_http.c) applies it again to what it is handed.
 */
#ifndef SIO_HTTP_REQ_H
#define SIO_HTTP_REQ_H

#include <stddef.h>

#include "sio_err.h"

/* One request header, sent as given (lengths count every byte, so an
 * embedded NUL is seen; not NUL-terminated). */
typedef struct sio_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sio_http_header;

/* The hosts and ports requests may go to (SIO_HTTP_ALLOW), parsed once. */
typedef struct sio_http_allow sio_http_allow;

/* Parses entries (NULL-terminated, as sio_config.http_allow holds them,
 * each as sio_http_allow_parse takes it: "host" allows the scheme's default
 * port only, "host:port" that port, "*" anything; NULL or empty allows
 * nothing).  Returns the list (the caller's, sio_http_allow_free), or NULL
 * with err (SIO_E_CONFIG for a bad entry). */
sio_http_allow *sio_http_allow_new(const char *const *entries, sio_err *err);
void sio_http_allow_free(sio_http_allow *a); /* accepts NULL */

/* Checks what a script gave before anything is built from it: a method
 * that is an HTTP token; a URL without CR, LF or NUL; header names that are
 * tokens; header values without CR, LF or NUL; no Content-Length or
 * Transfer-Encoding header (the request's framing is the client's: a script
 * that set it could smuggle a second request).  0, or -1 with err
 * (SIO_E_INVAL, permanent). */
int sio_http_check_request(const char *method, size_t method_len, const char *url,
                           size_t url_len, const sio_http_header *headers, size_t nheaders,
                           sio_err *err);

/* Checks url (url_len bytes, NUL-terminated) against the rules: http or
 * https, well formed, its host and port on allow.  0, or -1 with err:
 * SIO_E_INVAL for a malformed URL, SIO_E_SANDBOX for a scheme, host or
 * port the rules refuse (both permanent). */
int sio_http_check(const sio_http_allow *allow, const char *url, size_t url_len, sio_err *err);

#endif
