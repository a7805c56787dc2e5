/*
 * json.c - strict parsing and compact encoding on jansson, jansson's
 * metered allocator, UTF-8 checks (see json.h).
 */
#include "json.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIO_JSON_READ (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

static void *metered_malloc(size_t n);
static void metered_free(void *p);

json_t *sio_json_parse(const char *text, size_t len, sio_err *err) {
    json_error_t je;
    json_t *v = json_loadb(text ? text : "", text ? len : 0, SIO_JSON_READ, &je);
    if (v == NULL)
        sio_err_set(err, SIO_E_PARSE, "malformed JSON: %s at line %d, column %d", je.text,
                    je.line, je.column);
    return v;
}

/* --- writing --------------------------------------------------------------*/

static int put(const sio_json_out *o, const char *s, size_t n) {
    return n == 0 ? 0 : o->write(o->ud, s, n);
}

int sio_json_write_string(const sio_json_out *o, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes not written yet */
    if (put(o, "\"", 1) != 0) return -1;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t k = c < 0x80 ? 1 : sio_utf8_seq(u + i, n - i);
        if (k > 1 || (k == 1 && c >= 0x20 && c != '"' && c != '\\')) {
            i += k; /* written as it is, with its run */
            continue;
        }
        char esc[8] = {'\\', (char)c, 0};
        size_t elen = 2;
        if (k == 0) memcpy(esc, "\xEF\xBF\xBD", elen = 3);
        else if (c == '\b') esc[1] = 'b';
        else if (c == '\f') esc[1] = 'f';
        else if (c == '\n') esc[1] = 'n';
        else if (c == '\r') esc[1] = 'r';
        else if (c == '\t') esc[1] = 't';
        else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (put(o, s + run, i - run) != 0 || put(o, esc, elen) != 0) return -1;
        run = ++i;
    }
    if (put(o, s + run, n - run) != 0) return -1;
    return put(o, "\"", 1);
}

int sio_json_write_integer(const sio_json_out *o, long long v) {
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    return put(o, num, (size_t)n);
}

int sio_json_write_real(const sio_json_out *o, double d) {
    /* The shortest of 15, 16 or 17 significant digits that reads back as
     * the same double: 0.1 stays "0.1", and every double still
     * round-trips (17 digits always do). */
    char num[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(num, sizeof num, "%.*g", prec, d);
        if (strtod(num, NULL) == d) break;
    }
    char *e = strchr(num, 'e');
    if (e != NULL) { /* 1e+20 -> 1e20, 1e-07 -> 1e-7 */
        char *from = e + 1, *to = e + 1;
        if (*from == '+') from++;
        else if (*from == '-') from++, to++;
        while (*from == '0' && from[1] != '\0') from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(num);
    } else if (strchr(num, '.') == NULL) {
        memcpy(num + n, ".0", 3); /* a real stays a real when read back */
        n += 2;
    }
    return put(o, num, (size_t)n);
}

/* The growing text of a sio_json_textbuf, in blocks charged to the
 * thread's meter like jansson's own. */
static int dumpbuf_write(void *ud, const char *s, size_t n) {
    sio_json_textbuf *b = ud;
    if (b->failed) return -1;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) return b->failed = 1, -1;
            cap *= 2;
        }
        char *q = metered_malloc(cap);
        if (q == NULL) return b->failed = 1, -1;
        if (b->len) memcpy(q, b->p, b->len);
        metered_free(b->p);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

sio_json_out sio_json_text_out(sio_json_textbuf *b) {
    return (sio_json_out){.write = dumpbuf_write, .ud = b};
}

char *sio_json_text_end(sio_json_textbuf *b, int failed, size_t *len) {
    if (failed || b->failed || dumpbuf_write(b, "", 1) != 0) {
        metered_free(b->p);
        *b = (sio_json_textbuf){0};
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = b->len - 1; /* without the NUL */
    char *text = b->p;
    *b = (sio_json_textbuf){0};
    return text;
}

static int dump_value(const sio_json_out *o, const json_t *v, int depth) {
    if (depth > SIO_JSON_MAX_DEPTH) return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *e;
        void *it;
        int first = 1;
        if (put(o, "{", 1) != 0) return -1;
        json_object_keylen_foreach_safe((json_t *)v, it, k, klen, e) {
            if ((!first && put(o, ",", 1) != 0) || sio_json_write_string(o, k, klen) != 0 ||
                put(o, ":", 1) != 0 || dump_value(o, e, depth + 1) != 0)
                return -1;
            first = 0;
        }
        return put(o, "}", 1);
    }
    case JSON_ARRAY:
        if (put(o, "[", 1) != 0) return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i > 0 && put(o, ",", 1) != 0) || dump_value(o, json_array_get(v, i), depth + 1))
                return -1;
        return put(o, "]", 1);
    case JSON_STRING: return sio_json_write_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return sio_json_write_integer(o, (long long)json_integer_value(v));
    case JSON_REAL: return sio_json_write_real(o, json_real_value(v));
    case JSON_TRUE: return put(o, "true", 4);
    case JSON_FALSE: return put(o, "false", 5);
    case JSON_NULL: return put(o, "null", 4);
    }
    return -1;
}

int sio_json_write_value(const sio_json_out *o, const json_t *v) {
    return v == NULL ? -1 : dump_value(o, v, 0);
}

char *sio_json_dump(const json_t *v, size_t *len) {
    sio_json_textbuf b = {0};
    sio_json_out o = sio_json_text_out(&b);
    return sio_json_text_end(&b, v == NULL || dump_value(&o, v, 0) != 0, len);
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

size_t sio_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

json_t *sio_json_cstr(const char *s) {
    return s ? sio_json_text(s, strlen(s)) : json_null();
}

size_t sio_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n) {
        while (n - i >= 8) { /* ASCII, 8 bytes at a time */
            uint64_t w;
            memcpy(&w, u + i, sizeof w);
            if (w & UINT64_C(0x8080808080808080)) break;
            i += 8;
        }
        if (i == n || (k = sio_utf8_seq(u + i, n - i)) == 0) break;
        i += k;
    }
    return i;
}

json_t *sio_json_text(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t k, i = 0; i < len; i += k ? k : 1) {
        k = sio_utf8_seq(u + i, len - i);
        bad += k == 0;
    }
    if (bad == 0) return json_stringn_nocheck(s, len);
    char *out = malloc(len + 2 * bad), *o = out; /* U+FFFD is 3 bytes for 1 */
    if (out == NULL) return NULL;
    for (size_t k, j = 0; j < len; j += k ? k : 1) {
        k = sio_utf8_seq(u + j, len - j);
        if (k == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(o, s + j, k);
            o += k;
        }
    }
    json_t *v = json_stringn_nocheck(out, (size_t)(o - out));
    free(out);
    return v;
}
