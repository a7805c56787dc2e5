/* base64.c - see base64.h. */
#include "base64.h"

#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sio_base64_encode(const void *data, size_t len) {
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (out == NULL) return NULL;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) { /* one or two bytes left: two or one '=' */
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* The 6-bit value of c, or -1. */
static int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

unsigned char *sio_base64_decode(const char *text, size_t len, size_t *out_len) {
    *out_len = 0;
    if (len % 4 != 0) return NULL;
    size_t pad = len && text[len - 1] == '=' ? (len > 1 && text[len - 2] == '=' ? 2 : 1) : 0;
    unsigned char *out = malloc(len / 4 * 3 + 1), *o = out;
    if (out == NULL) return NULL;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int a = sextet(text[i]), b = sextet(text[i + 1]);
        int c = last && pad == 2 ? 0 : sextet(text[i + 2]);
        int d = last && pad >= 1 ? 0 : sextet(text[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0) {
            free(out);
            return NULL;
        }
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        *o++ = (unsigned char)(v >> 16);
        if (!(last && pad == 2)) *o++ = (unsigned char)(v >> 8);
        if (!(last && pad >= 1)) *o++ = (unsigned char)v;
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}
