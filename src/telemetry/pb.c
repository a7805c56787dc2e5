/* pb.c - see pb.h. */
#include "pb.h"

#include <stdlib.h>
#include <string.h>

#include "json.h" /* sio_utf8_seq */

void sio_pb_init(sio_pb *b, void *storage, size_t cap) {
    b->p = storage;
    b->len = 0;
    b->cap = storage ? cap : 0;
    b->oom = 0;
    b->borrowed = storage != NULL;
}

void sio_pb_free(sio_pb *b) {
    if (!b->borrowed) free(b->p);
    sio_pb_init(b, NULL, 0);
}

/* Makes room for n more bytes; 0 when there is none (oom is set). */
static int room(sio_pb *b, size_t n) {
    if (b->oom) return 0;
    if (b->len + n <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return 0;
    }
    if (b->borrowed && b->len) memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->borrowed = 0;
    return 1;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static void put_varint(sio_pb *b, uint64_t v) {
    if (!room(b, 10)) return;
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static void put_tag(sio_pb *b, unsigned field, unsigned wire) {
    put_varint(b, ((uint64_t)field << 3) | wire);
}

void sio_pb_raw(sio_pb *b, const void *p, size_t n) {
    if (n == 0 || !room(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void sio_pb_uint(sio_pb *b, unsigned field, uint64_t v) {
    put_tag(b, field, SIO_PB_VARINT);
    put_varint(b, v);
}

static void put_le(sio_pb *b, uint64_t v, size_t n) {
    if (!room(b, n)) return;
    for (size_t i = 0; i < n; i++) b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

void sio_pb_fixed32(sio_pb *b, unsigned field, uint32_t v) {
    put_tag(b, field, SIO_PB_I32);
    put_le(b, v, 4);
}

void sio_pb_fixed64(sio_pb *b, unsigned field, uint64_t v) {
    put_tag(b, field, SIO_PB_I64);
    put_le(b, v, 8);
}

void sio_pb_bytes(sio_pb *b, unsigned field, const void *p, size_t n) {
    put_tag(b, field, SIO_PB_LEN);
    put_varint(b, n);
    sio_pb_raw(b, p, n);
}

void sio_pb_string(sio_pb *b, unsigned field, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t k, i = 0; i < n; i += k ? k : 1) bad += (k = sio_utf8_seq(u + i, n - i)) == 0;
    if (bad == 0) {
        sio_pb_bytes(b, field, s, n);
        return;
    }
    put_tag(b, field, SIO_PB_LEN);
    put_varint(b, n + 2 * bad); /* U+FFFD is 3 bytes for 1 */
    if (!room(b, n + 2 * bad)) return;
    for (size_t k, i = 0; i < n; i += k ? k : 1) {
        k = sio_utf8_seq(u + i, n - i);
        if (k == 0) {
            memcpy(b->p + b->len, "\xEF\xBF\xBD", 3);
            b->len += 3;
        } else {
            memcpy(b->p + b->len, s + i, k);
            b->len += k;
        }
    }
}

size_t sio_pb_begin(sio_pb *b, unsigned field) {
    put_tag(b, field, SIO_PB_LEN);
    size_t mark = b->len;
    if (room(b, 1)) b->p[b->len++] = 0; /* one length byte, widened at end */
    return mark;
}

void sio_pb_end(sio_pb *b, size_t mark) {
    if (b->oom) return;
    size_t body = b->len - mark - 1, n = varint_len(body);
    if (n > 1) {
        if (!room(b, n - 1)) return;
        memmove(b->p + mark + n, b->p + mark + 1, body);
        b->len += n - 1;
    }
    size_t at = mark;
    uint64_t v = body;
    while (v >= 0x80) {
        b->p[at++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[at] = (uint8_t)v;
}
