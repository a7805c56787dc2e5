/*
 * pb.h - a Protocol Buffers wire-format writer, for OTLP/HTTP's binary
 * encoding (trace.c).  Only what an encoder of known messages needs:
 * varint, fixed32/64 and length-delimited fields, and nested messages whose
 * length is patched in when they end.  Strings are written as valid UTF-8
 * (each byte of an invalid sequence becomes U+FFFD), as proto3 requires.
 *
 * A buffer that runs out of memory stops growing and remembers it (oom);
 * the writer's output is then to be thrown away.  Not thread-safe: a
 * buffer belongs to one thread at a time.
 */
#ifndef SIO_PB_H
#define SIO_PB_H

#include <stddef.h>
#include <stdint.h>

typedef struct sio_pb {
    uint8_t *p; /* malloc'd (free with sio_pb_free), or the caller's storage */
    size_t len, cap;
    int oom, borrowed; /* borrowed: p is the caller's until it outgrows it */
} sio_pb;

/* Starts b on the caller's storage (cap bytes; may be NULL/0): a message
 * that fits is written there without an allocation.  A zeroed sio_pb is
 * an empty buffer too. */
void sio_pb_init(sio_pb *b, void *storage, size_t cap);

/* Frees what b allocated (not the caller's storage).  b is empty again. */
void sio_pb_free(sio_pb *b);

/* Wire types. */
enum { SIO_PB_VARINT = 0, SIO_PB_I64 = 1, SIO_PB_LEN = 2, SIO_PB_I32 = 5 };

void sio_pb_uint(sio_pb *b, unsigned field, uint64_t v);      /* varint field */
void sio_pb_fixed32(sio_pb *b, unsigned field, uint32_t v);
void sio_pb_fixed64(sio_pb *b, unsigned field, uint64_t v);
void sio_pb_bytes(sio_pb *b, unsigned field, const void *p, size_t n);
void sio_pb_string(sio_pb *b, unsigned field, const char *s, size_t n); /* UTF-8 made valid */

/* Appends n raw bytes (an already encoded message body). */
void sio_pb_raw(sio_pb *b, const void *p, size_t n);

/* A nested message: begin writes its tag and returns a mark; the message's
 * fields follow; end writes its length at the mark. */
size_t sio_pb_begin(sio_pb *b, unsigned field);
void sio_pb_end(sio_pb *b, size_t mark);

#endif
