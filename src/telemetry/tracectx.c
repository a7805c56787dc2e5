/* tracectx.c - see tracectx.h. */
#include "tracectx.h"

#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* upper case is invalid too */
}

/* n bytes from 2n lower-case hex characters; -1 on a bad character. */
static int unhex(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int all_zero(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int sio_traceparent_parse(const char *s, size_t len, sio_trace_ctx *out) {
    uint8_t version;
    if (s == NULL || len < SIO_TRACEPARENT_LEN || unhex(s, &version, 1) != 0 || version == 0xff)
        return -1;
    if (version == 0 && len != SIO_TRACEPARENT_LEN) return -1;
    if (len > SIO_TRACEPARENT_LEN && s[SIO_TRACEPARENT_LEN] != '-') return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return -1;
    if (unhex(s + 3, out->trace_id, 16) != 0 || unhex(s + 36, out->span_id, 8) != 0 ||
        unhex(s + 53, &out->flags, 1) != 0)
        return -1;
    if (all_zero(out->trace_id, 16) || all_zero(out->span_id, 8)) return -1;
    out->flags &= 1;
    out->tracestate[0] = '\0';
    return 0;
}

void sio_trace_hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void sio_traceparent_format(const sio_trace_ctx *c, char out[SIO_TRACEPARENT_LEN + 1]) {
    memcpy(out, "00-", 3);
    sio_trace_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    sio_trace_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    sio_trace_hex(&c->flags, 1, out + 53);
}

/* --- tracestate ---------------------------------------------------------------*/

static int keychar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/';
}

/* A tracestate key of n bytes: simple-key, or tenant-id@system-id. */
static int valid_key(const char *k, size_t n) {
    const char *at = memchr(k, '@', n);
    if (at == NULL) {
        if (n < 1 || n > 256 || !(k[0] >= 'a' && k[0] <= 'z')) return 0;
        for (size_t i = 1; i < n; i++)
            if (!keychar(k[i])) return 0;
        return 1;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14) return 0;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9'))) return 0;
    for (size_t i = 1; i < tn; i++)
        if (!keychar(k[i])) return 0;
    if (!(at[1] >= 'a' && at[1] <= 'z')) return 0;
    for (size_t i = 1; i < sn; i++)
        if (!keychar(at[1 + i])) return 0;
    return 1;
}

static int valid_value(const char *v, size_t n) {
    if (n < 1 || n > 256 || v[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=') return 0;
    return 1;
}

int sio_tracestate_parse(const char *s, size_t len, char *out, size_t n) {
    size_t o = 0, members = 0;
    const char *keys[32];
    size_t keylens[32];
    if (n == 0) return -1;
    out[0] = '\0';
    for (size_t i = 0; i <= len;) {
        size_t end = i;
        while (end < len && s[end] != ',') end++;
        size_t a = i, b = end;
        while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
        if (b > a) {
            const char *eq = memchr(s + a, '=', b - a);
            if (eq == NULL || members == 32) goto bad;
            size_t kl = (size_t)(eq - (s + a));
            if (!valid_key(s + a, kl) || !valid_value(eq + 1, b - a - kl - 1)) goto bad;
            for (size_t k = 0; k < members; k++)
                if (keylens[k] == kl && memcmp(keys[k], s + a, kl) == 0) goto bad;
            keys[members] = s + a, keylens[members++] = kl;
            if (o + (o ? 1 : 0) + (b - a) + 1 > n) goto bad;
            if (o) out[o++] = ',';
            memcpy(out + o, s + a, b - a);
            o += b - a;
            out[o] = '\0';
        }
        i = end + 1;
    }
    return 0;
bad:
    out[0] = '\0';
    return -1;
}

/* --- ids ---------------------------------------------------------------------*/

/* splitmix64 on a per-thread state seeded from getrandom (or the clock). */
static uint64_t next_random(void) {
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            state = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)&state;
        }
        seeded = 1;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void fill_random(uint8_t *b, size_t n) {
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next_random();
            memcpy(b + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(b, n));
}

void sio_trace_new_trace_id(uint8_t id[16]) {
    fill_random(id, 16);
}

void sio_trace_new_span_id(uint8_t id[8]) {
    fill_random(id, 8);
}

/* --- sampling -------------------------------------------------------------------*/

static int ratio_sample(double ratio, const uint8_t id[16]) {
    if (ratio >= 1.0) return 1;
    if (!(ratio > 0.0)) return 0;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++) x = x << 8 | id[i];
    return (double)x < ldexp(ratio, 64);
}

int sio_sampler_sample(const sio_sampler *s, const sio_trace_ctx *parent, const uint8_t id[16]) {
    switch (s->kind) {
    case SIO_SAMPLER_ALWAYS_ON: return 1;
    case SIO_SAMPLER_ALWAYS_OFF: return 0;
    case SIO_SAMPLER_TRACEIDRATIO: return ratio_sample(s->ratio, id);
    case SIO_SAMPLER_PARENTBASED_ALWAYS_OFF: return parent ? parent->flags & 1 : 0;
    case SIO_SAMPLER_PARENTBASED_TRACEIDRATIO:
        return parent ? parent->flags & 1 : ratio_sample(s->ratio, id);
    case SIO_SAMPLER_PARENTBASED_ALWAYS_ON:
    default: return parent ? parent->flags & 1 : 1;
    }
}
