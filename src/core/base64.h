/*
 * base64.h - standard base64 (RFC 4648 section 4, with '=' padding), for
 * bytes that must travel inside JSON: a DLQ entry's command_base64, Kafka
 * header values that are not UTF-8, what `tail` prints for binary values.
 */
#ifndef SIO_BASE64_H
#define SIO_BASE64_H

#include <stddef.h>

/* The base64 text of data[0..len): malloc'd, NUL-terminated, the caller
 * frees it.  NULL when out of memory. */
char *sio_base64_encode(const void *data, size_t len);

/* Decodes text[0..len) (padding required, no whitespace, no URL-safe
 * alphabet).  Returns malloc'd bytes the caller frees, with their count in
 * *out_len (a NUL is appended, not counted); NULL when text is not base64
 * (*out_len = 0) or when out of memory. */
unsigned char *sio_base64_decode(const char *text, size_t len, size_t *out_len);

#endif
