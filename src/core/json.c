/*
 * json.c - strict parsing and compact encoding on jansson, jansson's
 * metered allocator, UTF-8 checks (see json.h).
 */
#include "json.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define SIO_JSON_READ (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)
#define SIO_JSON_WRITE (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

json_t *sio_json_parse(const char *text, size_t len, sio_err *err) {
    json_error_t je;
    json_t *v = json_loadb(text ? text : "", text ? len : 0, SIO_JSON_READ, &je);
    if (v == NULL)
        sio_err_set(err, SIO_E_PARSE, "malformed JSON: %s at line %d, column %d", je.text,
                    je.line, je.column);
    return v;
}

char *sio_json_dump(const json_t *v, size_t *len) {
    char *out = json_dumps(v, SIO_JSON_WRITE);
    if (len) *len = out ? strlen(out) : 0;
    return out;
}

/* --- metering -------------------------------------------------------------*/

static _Thread_local const sio_json_meter *tls_meter;

const sio_json_meter *sio_json_meter_set(const sio_json_meter *m) {
    const sio_json_meter *prev = tls_meter;
    tls_meter = m;
    return prev;
}

/* jansson's allocator: malloc and free, reporting usable sizes to the
 * thread's meter.  The requested size is offered before allocating, so a
 * refusal costs no allocation (jansson's lexer retries a failed append on
 * every following byte); the usable size's surplus after.  Sizes come from
 * malloc_usable_size rather than a header, so a block allocated before the
 * hook was installed is still freed correctly. */
static void *metered_malloc(size_t n) {
    const sio_json_meter *m = tls_meter;
    if (m == NULL) return malloc(n);
    if (m->charge(m->ud, n) != 0) return NULL;
    void *p = malloc(n);
    size_t extra = p ? malloc_usable_size(p) - n : 0;
    if (p == NULL || (extra > 0 && m->charge(m->ud, extra) != 0)) {
        m->credit(m->ud, n);
        free(p);
        return NULL;
    }
    return p;
}

static void metered_free(void *p) {
    const sio_json_meter *m = tls_meter;
    if (p != NULL && m != NULL) m->credit(m->ud, malloc_usable_size(p));
    free(p);
}

/* Installed before main (and when sio_core.so is loaded), while the
 * process has one thread: jansson's allocator is process-wide, and setting
 * it later would race with threads already using jansson. */
__attribute__((constructor)) static void install_allocator(void) {
    json_set_alloc_funcs(metered_malloc, metered_free);
}

/* --- UTF-8 ------------------------------------------------------------------*/

size_t sio_utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0], min, cp;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    cp = c & (0x3Fu >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t sio_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n && (k = sio_utf8_char(u + i, n - i)) != 0) i += k;
    return i;
}
