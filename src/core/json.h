/*
 * json.h - the one JSON codec of the C host, on jansson.
 *
 * Every JSON text the host reads (command envelopes, CLI arguments) goes
 * through sio_json_parse, and every text it writes (envelopes, log lines,
 * CLI output) through sio_json_dump, so there is one set of rules:
 *
 *   reading   the whole buffer is one JSON value (bytes after it are an
 *             error); UTF-8 must be valid; duplicate object keys, NaN,
 *             Infinity and numbers out of range (1e999, integers beyond
 *             64 bits) are errors; "\u0000" in strings is allowed (strings
 *             carry their length); nesting is capped by jansson (2048).
 *   writing   compact, object keys in insertion order, reals with 17
 *             significant digits (they read back as the same double),
 *             integers exact, '/' never escaped, always valid UTF-8
 *             (jansson refuses to build a string that is not).
 */
#ifndef SIO_JSON_H
#define SIO_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "sio_err.h"

/* Parses text[0..len) strictly (see above).  Returns a new reference the
 * caller owns (json_decref), or NULL with err set to SIO_E_PARSE and a
 * message "malformed JSON: <reason> at line L, column C". */
json_t *sio_json_parse(const char *text, size_t len, sio_err *err);

/* Encodes v (any JSON value, borrowed) compactly.  Returns a malloc'd,
 * NUL-terminated text the caller frees, its length in *len (may be NULL);
 * NULL when out of memory. */
char *sio_json_dump(const json_t *v, size_t *len);

/* A JSON string of the bytes s[0..len), each byte of an invalid UTF-8
 * sequence replaced by U+FFFD (so what we write is always valid).  Returns
 * a new reference, or NULL when out of memory. */
json_t *sio_json_text(const char *s, size_t len);

/* sio_json_text of a NUL-terminated s; JSON null when s is NULL.  A new
 * reference, or NULL when out of memory. */
json_t *sio_json_cstr(const char *s);

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0. */
size_t sio_utf8_seq(const unsigned char *s, size_t n);

#endif
