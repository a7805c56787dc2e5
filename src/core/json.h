/*
 * json.h - the one JSON codec of the host: jansson trees, read by
 * jansson, written by our own rules.
 *
 * Every JSON text the host reads (command envelopes, CLI arguments, Lua's
 * sio.json.decode) goes through sio_json_parse, and every text it writes
 * (envelopes, log lines, CLI output, Lua's sio.json.encode) through
 * sio_json_dump or the sio_json_write_* functions it is made of, so there
 * is one set of rules:
 *
 *   reading   the whole buffer is one JSON value (bytes after it are an
 *             error); UTF-8 must be valid; duplicate object keys, NaN,
 *             Infinity and numbers out of range (1e999, integers beyond
 *             64 bits) are errors; "\u0000" in strings is allowed (strings
 *             carry their length); nesting is capped by jansson (2048).
 *   writing   compact, object keys in insertion order, reals in the
 *             shortest form that reads back as the same double,
 *             integers exact, '/' never escaped, always valid UTF-8
 *             (see "writing" below).
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

/* Nesting beyond this is an error, reading (jansson's own limit) and
 * writing (which also stops cycles). */
#define SIO_JSON_MAX_DEPTH 2048

/* Encodes v (any JSON value, borrowed) compactly, by the writing rules
 * below.  Returns a malloc'd, NUL-terminated text the caller frees, its
 * length in *len (may be NULL); NULL when out of memory or nested deeper
 * than SIO_JSON_MAX_DEPTH. */
char *sio_json_dump(const json_t *v, size_t *len);

/* --- writing -----------------------------------------------------------------
 *
 * The rules of every JSON text the host writes, shared by sio_json_dump
 * (jansson trees) and luajson's encoder (Lua values): strings quoted with
 * '"', '\\' and control characters escaped (\b \f \n \r \t, else
 * \u00XX) and nothing else ('/' and non-ASCII as they are), each byte of an
 * invalid UTF-8 sequence written as U+FFFD; integers exact; reals with the
 * fewest of 15, 16 or 17 significant digits that read back as the same
 * double (0.1 is "0.1"), the exponent
 * without '+' or leading zeros, and ".0" added when they would read back
 * as an integer (2.0 stays a real). */
typedef struct sio_json_out {
    /* Appends s[0..n); returns 0, or -1 to stop (the writer returns -1).
     * It may also raise (longjmp): the writers hold nothing. */
    int (*write)(void *ud, const char *s, size_t n);
    void *ud;
} sio_json_out;

int sio_json_write_string(const sio_json_out *o, const char *s, size_t n);
int sio_json_write_integer(const sio_json_out *o, long long v);
int sio_json_write_real(const sio_json_out *o, double d); /* d finite */
/* Writes v (borrowed) as sio_json_dump would, to o: 0, or -1 (o refused,
 * or nested deeper than SIO_JSON_MAX_DEPTH). */
int sio_json_write_value(const sio_json_out *o, const json_t *v);

/* A text written piece by piece with the writers above, in blocks
 * charged to the thread's meter like sio_json_dump's (which is made of
 * it).  Start from {0}; sio_json_text_out gives the writer that appends
 * to it; sio_json_text_end returns the malloc'd, NUL-terminated text (the
 * caller frees it) with its length in *len, or NULL (freeing what was
 * written) when failed is set or a write failed. */
typedef struct sio_json_textbuf {
    char *p;
    size_t len, cap;
    int failed;
} sio_json_textbuf;
sio_json_out sio_json_text_out(sio_json_textbuf *b);
char *sio_json_text_end(sio_json_textbuf *b, int failed, size_t *len);

/* --- metering -------------------------------------------------------------
 *
 * Every allocation jansson makes (trees, the parser's buffers, the text of
 * a dump) goes through json.c's allocator.  While a meter is installed on
 * the calling thread, each block's usable size is offered to charge()
 * after it is allocated (a refusal frees it, and the jansson call fails as
 * out of memory), and credit() receives the size of each block freed.  The
 * sandbox charges JSON work to a command's memory budget this way.  A meter
 * must not raise (longjmp) out of its callbacks. */
typedef struct sio_json_meter {
    int (*charge)(void *ud, size_t bytes); /* 0 = allowed, -1 = refused */
    void (*credit)(void *ud, size_t bytes);
    void *ud;
} sio_json_meter;

/* Installs m (borrowed; NULL = none) as the calling thread's meter and
 * returns the previous one, to be restored when done. */
const sio_json_meter *sio_json_meter_set(const sio_json_meter *m);

/* --- UTF-8 -----------------------------------------------------------------*/

/* Length of the valid UTF-8 sequence starting at s (n > 0 bytes
 * available), or 0 when the bytes there are not valid UTF-8 (overlong
 * forms, surrogates and code points above U+10FFFF are invalid). */
size_t sio_utf8_seq(const unsigned char *s, size_t n);

/* Bytes of s[0..n) before the first invalid UTF-8 sequence (n when all of
 * it is valid). */
size_t sio_utf8_valid(const char *s, size_t n);

/* A JSON string of the bytes s[0..len), each byte of an invalid UTF-8
 * sequence replaced by U+FFFD (so what we write is always valid).  Returns
 * a new reference, or NULL when out of memory. */
json_t *sio_json_text(const char *s, size_t len);

/* sio_json_text of a NUL-terminated s; JSON null when s is NULL.  A new
 * reference, or NULL when out of memory. */
json_t *sio_json_cstr(const char *s);

#endif
