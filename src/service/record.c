/* record.c - the dedupe record: done: and txn: forms; see record.h. */
#include "record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DONE "done:"
#define TXN "txn:"
#define LIT_LEN(s) (sizeof s - 1)

/* --- writing ----------------------------------------------------------------*/

/* Bytes one netstring of n bytes takes. */
static size_t ns_size(size_t n) {
    char digits[24];
    return (size_t)snprintf(digits, sizeof digits, "%zu", n) + n + 2;
}

/* Writes one netstring at p; returns the end. */
static char *ns_put(char *p, const char *bytes, size_t n) {
    p += sprintf(p, "%zu:", n);
    if (n) memcpy(p, bytes, n);
    p += n;
    *p++ = ',';
    return p;
}

static char *encode_done(const sio_record *r, size_t *len) {
    char *out = malloc(LIT_LEN(DONE) + r->response_len + 1);
    if (out == NULL) return NULL;
    memcpy(out, DONE, LIT_LEN(DONE));
    if (r->response_len) memcpy(out + LIT_LEN(DONE), r->response, r->response_len);
    *len = LIT_LEN(DONE) + r->response_len;
    out[*len] = '\0';
    return out;
}

char *sio_record_encode(const sio_record *r, size_t *len) {
    if (!r->txn) return encode_done(r, len);
    char part[24], off[24];
    size_t np = (size_t)snprintf(part, sizeof part, "%" PRId32, r->source_partition);
    size_t no = (size_t)snprintf(off, sizeof off, "%" PRId64, r->source_offset);
    size_t n = LIT_LEN(TXN) + ns_size(r->source_topic_len) + ns_size(np) + ns_size(no) +
               ns_size(r->response_len);
    for (size_t i = 0; i < r->nmsgs; i++) {
        const sio_record_msg *m = &r->msgs[i];
        n += ns_size(1) + ns_size(m->len);
        if (m->topic) n += ns_size(m->topic_len);
        if (m->topic && m->key) n += ns_size(m->key_len);
    }
    char *out = malloc(n + 1), *p = out;
    if (out == NULL) return NULL;
    memcpy(p, TXN, LIT_LEN(TXN));
    p += LIT_LEN(TXN);
    p = ns_put(p, r->source_topic, r->source_topic_len);
    p = ns_put(p, part, np);
    p = ns_put(p, off, no);
    p = ns_put(p, r->response, r->response_len);
    for (size_t i = 0; i < r->nmsgs; i++) {
        const sio_record_msg *m = &r->msgs[i];
        p = ns_put(p, !m->topic ? "S" : m->key ? "K" : "P", 1);
        if (m->topic) p = ns_put(p, m->topic, m->topic_len);
        if (m->topic && m->key) p = ns_put(p, m->key, m->key_len);
        p = ns_put(p, m->value, m->len);
    }
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

/* --- reading ----------------------------------------------------------------*/

typedef struct reader {
    const char *p, *end;
} reader;

/* The next netstring: 0 with *s, *n set, -1 when malformed. */
static int ns_get(reader *rd, const char **s, size_t *n) {
    size_t v = 0;
    const char *p = rd->p;
    if (p >= rd->end || *p < '0' || *p > '9') return -1;
    while (p < rd->end && *p >= '0' && *p <= '9') {
        if (v > (SIZE_MAX - 9) / 10) return -1;
        v = v * 10 + (size_t)(*p++ - '0');
    }
    if (p >= rd->end || *p++ != ':' || (size_t)(rd->end - p) < v + 1 || p[v] != ',') return -1;
    *s = p;
    *n = v;
    rd->p = p + v + 1;
    return 0;
}

/* A decimal integer netstring within [min, max]. */
static int ns_int(reader *rd, int64_t min, int64_t max, int64_t *out) {
    const char *s;
    size_t n;
    char buf[24];
    if (ns_get(rd, &s, &n) != 0 || n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    long long v = strtoll(buf, &e, 10);
    if (*e != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* Reads one message into m: 0, or -1 when malformed. */
static int read_msg(reader *rd, sio_record_msg *m) {
    const char *kind;
    size_t n;
    memset(m, 0, sizeof *m);
    if (ns_get(rd, &kind, &n) != 0 || n != 1 || strchr("SPK", kind[0]) == NULL || kind[0] == 0)
        return -1;
    if (kind[0] != 'S' && (ns_get(rd, &m->topic, &m->topic_len) != 0 || m->topic_len == 0))
        return -1;
    if (kind[0] == 'K' && ns_get(rd, &m->key, &m->key_len) != 0) return -1;
    return ns_get(rd, &m->value, &m->len);
}

static int read_txn(reader *rd, sio_record *r) {
    int64_t part, off;
    if (ns_get(rd, &r->source_topic, &r->source_topic_len) != 0 ||
        ns_int(rd, 0, INT32_MAX, &part) != 0 || ns_int(rd, 0, INT64_MAX, &off) != 0 ||
        ns_get(rd, &r->response, &r->response_len) != 0)
        return -1;
    r->source_partition = (int32_t)part;
    r->source_offset = off;
    size_t cap = 0;
    while (rd->p < rd->end) {
        if (r->nmsgs == cap) {
            cap = cap ? cap * 2 : 4;
            sio_record_msg *m = realloc(r->msgs, cap * sizeof *m);
            if (m == NULL) return -2;
            r->msgs = m;
        }
        if (read_msg(rd, &r->msgs[r->nmsgs]) != 0) return -1;
        r->nmsgs++;
    }
    return 0;
}

int sio_record_parse(const char *bytes, size_t len, sio_record *r, sio_err *err) {
    memset(r, 0, sizeof *r);
    if (len >= LIT_LEN(DONE) && memcmp(bytes, DONE, LIT_LEN(DONE)) == 0) {
        r->response = bytes + LIT_LEN(DONE);
        r->response_len = len - LIT_LEN(DONE);
        return 1;
    }
    if (len < LIT_LEN(TXN) || memcmp(bytes, TXN, LIT_LEN(TXN)) != 0) return 0;
    reader rd = {bytes + LIT_LEN(TXN), bytes + len};
    r->txn = 1;
    int rc = read_txn(&rd, r);
    if (rc == 0) return 1;
    sio_record_clear(r);
    if (rc == -2) sio_err_set(err, SIO_E_NOMEM, "out of memory reading a dedupe record");
    else sio_err_set(err, SIO_E_PARSE, "malformed dedupe record (%zu bytes)", len);
    return -1;
}

void sio_record_clear(sio_record *r) {
    free(r->msgs);
    memset(r, 0, sizeof *r);
}
