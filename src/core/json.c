/*
 * json.c - strict parsing and compact encoding on jansson (see json.h).
 */
#include "json.h"

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
