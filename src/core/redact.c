/* redact.c - see redact.h. */
#include "redact.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* One secret value. */
typedef struct entry {
    char *name;       /* owned */
    char *value;      /* owned, len bytes */
    size_t len;
    size_t safe_off;  /* the longest run of bytes no JSON writer of ours */
    size_t safe_len;  /* escapes: a line holding the value holds this run */
} entry;

struct sio_redactor {
    pthread_mutex_t mu;
    entry *v;         /* under mu; longest value first */
    size_t n, cap;    /* n is also read without mu (fast path) */
    atomic_size_t count;
};

sio_redactor *sio_redactor_new(void) {
    sio_redactor *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->count, 0);
    return r;
}

static void clear_entries(sio_redactor *r) {
    for (size_t i = 0; i < r->n; i++) free(r->v[i].name), free(r->v[i].value);
    r->n = 0;
    atomic_store(&r->count, 0);
}

void sio_redactor_free(sio_redactor *r) {
    if (r == NULL) return;
    clear_entries(r);
    free(r->v);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static sio_redactor *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void make_global(void) {
    global = sio_redactor_new();
}

sio_redactor *sio_redact_global(void) {
    pthread_once(&global_once, make_global);
    return global;
}

/* Bytes that no JSON writer escapes (jansson, lua-cjson, the sandbox's
 * log lines): printable ASCII but '"', '\\' and '/', and UTF-8 beyond
 * ASCII.  A text holding a value, escaped or not, holds its runs of them. */
static int never_escaped(unsigned char c) {
    return c >= 0x20 && c != '"' && c != '\\' && c != '/' && c != 0x7f;
}

static void find_safe_run(entry *e) {
    size_t best = 0, best_off = 0;
    for (size_t i = 0; i < e->len;) {
        size_t j = i;
        while (j < e->len && never_escaped((unsigned char)e->value[j])) j++;
        if (j - i > best) best = j - i, best_off = i;
        i = j + 1;
    }
    e->safe_off = best_off;
    e->safe_len = best;
}

int sio_redact_add(sio_redactor *r, const char *name, const char *value, size_t len,
                   sio_err *err) {
    if (r == NULL || len == 0) return 0;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].len == len && memcmp(r->v[i].value, value, len) == 0) goto out;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        entry *v = realloc(r->v, cap * sizeof *v);
        if (v == NULL) goto nomem;
        r->v = v, r->cap = cap;
    }
    entry e = {.name = strdup(name ? name : "secret"), .value = malloc(len), .len = len};
    if (e.name == NULL || e.value == NULL) {
        free(e.name), free(e.value);
        goto nomem;
    }
    memcpy(e.value, value, len);
    find_safe_run(&e);
    size_t at = r->n; /* keep the longest first */
    while (at > 0 && r->v[at - 1].len < len) at--;
    memmove(&r->v[at + 1], &r->v[at], (r->n - at) * sizeof *r->v);
    r->v[at] = e;
    r->n++;
    atomic_store(&r->count, r->n);
    goto out;
nomem:
    rc = sio_err_set(err, SIO_E_NOMEM, "redaction: out of memory");
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void sio_redact_reset(sio_redactor *r) {
    if (r == NULL) return;
    pthread_mutex_lock(&r->mu);
    clear_entries(r);
    pthread_mutex_unlock(&r->mu);
}

size_t sio_redact_count(sio_redactor *r) {
    return r ? atomic_load(&r->count) : 0;
}

/* A growing output buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The byte a JSON escape at s[0..n) (s[0] == '\\') stands for, when it is
 * one byte (\" \\ \/ \b \f \n \r \t, \u00XX below 0x80); its length
 * in *used.  -1 when none. */
static int unescape1(const char *s, size_t n, size_t *used) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (n >= 2 && s[1] != '\0' && s[1] != 'u') {
        const char *p = strchr(from, s[1]);
        if (p == NULL) return -1;
        *used = 2;
        return (unsigned char)to[p - from];
    }
    if (n >= 6 && s[1] == 'u' && s[2] == '0' && s[3] == '0') {
        int hi = hexval(s[4]), lo = hexval(s[5]);
        if (hi < 0 || lo < 0 || hi >= 8) return -1;
        *used = 6;
        return hi * 16 + lo;
    }
    return -1;
}

/* Does e's value occur at s[0..n), as it is or with any of its bytes
 * JSON-escaped (a value inside a JSON text, e.g. a step's payload, or a
 * JSON text inside a string)?  Returns the length it takes there, or 0. */
static size_t match_at(const entry *e, const char *s, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < e->len; i++) {
        size_t used;
        if (j >= n) return 0;
        if (s[j] == '\\' && unescape1(s + j, n - j, &used) == (unsigned char)e->value[i])
            j += used; /* an escape standing for the byte (tried first: "\\\\" is one '\\') */
        else if (s[j] == e->value[i])
            j++;
        else
            return 0;
    }
    return j;
}

/* Could s[0..n) hold e's value (see never_escaped)? */
static int may_hold_value(const entry *e, const char *s, size_t n) {
    return e->safe_len == 0 || memmem(s, n, e->value + e->safe_off, e->safe_len) != NULL;
}

/* Under r->mu: the text with every value replaced, or NULL (see header). */
static char *redact_locked(sio_redactor *r, const char *s, size_t len, size_t *outlen,
                           int *failed) {
    /* Only the values that may occur take part in the scan. */
    entry *stack[32], **hits = r->n <= 32 ? stack : malloc(r->n * sizeof *hits);
    size_t nh = 0;
    if (hits == NULL) {
        if (failed) *failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++)
        if (may_hold_value(&r->v[i], s, len)) hits[nh++] = &r->v[i];
    buf b = {0};
    size_t from = 0;
    for (size_t i = 0; nh > 0 && i < len;) {
        const entry *m = NULL;
        size_t took = 0;
        for (size_t k = 0; k < nh && m == NULL; k++)
            if ((took = match_at(hits[k], s + i, len - i)) > 0) m = hits[k];
        if (m == NULL) {
            i++;
            continue;
        }
        put(&b, s + from, i - from);
        put(&b, "[redacted:", 10);
        put(&b, m->name, strlen(m->name));
        put(&b, "]", 1);
        i += took;
        from = i;
    }
    if (hits != stack) free(hits);
    if (from == 0) { /* nothing matched */
        free(b.p);
        return NULL;
    }
    put(&b, s + from, len - from);
    if (b.oom) {
        free(b.p);
        if (failed) *failed = 1;
        return NULL;
    }
    if (outlen) *outlen = b.len;
    return b.p;
}

char *sio_redact_text(sio_redactor *r, const char *s, size_t len, size_t *outlen, int *failed) {
    if (failed) *failed = 0;
    if (sio_redact_count(r) == 0 || s == NULL) return NULL;
    pthread_mutex_lock(&r->mu);
    char *out = redact_locked(r, s, len, outlen, failed);
    pthread_mutex_unlock(&r->mu);
    return out;
}

static size_t redact_tree(sio_redactor *r, json_t *v, const char *skip, int depth);

/* Renames the keys of object o that hold a value; returns how many. */
static size_t redact_keys(sio_redactor *r, json_t *o) {
    size_t changed = 0;
    const char *keys[32];
    size_t n = 0;
    for (void *it = json_object_iter(o); it && n < 32; it = json_object_iter_next(o, it)) {
        const char *k = json_object_iter_key(it);
        for (size_t i = 0; i < r->n; i++) {
            size_t kl = strlen(k);
            if (!may_hold_value(&r->v[i], k, kl)) continue;
            int hit = 0;
            for (size_t j = 0; j < kl && !hit; j++) hit = match_at(&r->v[i], k + j, kl - j) > 0;
            if (hit) {
                keys[n++] = k;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *nk = redact_locked(r, keys[i], strlen(keys[i]), NULL, NULL);
        json_t *val = json_incref(json_object_get(o, keys[i]));
        json_object_del(o, keys[i]); /* keys[i] is freed from here on */
        if (nk == NULL || json_object_set_new(o, nk, val) != 0) /* fail closed */
            json_object_set_new(o, "[redacted]", val);
        free(nk);
        changed++;
    }
    /* More than 32 keys to rename: the rest lose their names. */
    if (n == 32) changed += redact_keys(r, o);
    return changed;
}

static size_t redact_tree(sio_redactor *r, json_t *v, const char *skip, int depth) {
    size_t changed = 0;
    if (depth > 256) return 0;
    if (json_is_string(v)) {
        size_t n;
        int failed = 0;
        char *red = redact_locked(r, json_string_value(v), json_string_length(v), &n, &failed);
        if (red != NULL || failed) { /* out of memory: fail closed */
            if (red == NULL || json_string_setn(v, red, n) != 0) json_string_set(v, "[redacted]");
            free(red);
            changed++;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (skip && strcmp(k, skip) == 0) continue;
            changed += redact_tree(r, x, NULL, depth + 1);
        }
        changed += redact_keys(r, v);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            changed += redact_tree(r, json_array_get(v, i), NULL, depth + 1);
    }
    return changed;
}

size_t sio_redact_json(sio_redactor *r, json_t *v, const char *skip) {
    if (sio_redact_count(r) == 0 || v == NULL) return 0;
    pthread_mutex_lock(&r->mu);
    size_t changed = redact_tree(r, v, skip, 0);
    pthread_mutex_unlock(&r->mu);
    return changed;
}

/* Under r->mu: could line hold a value in one of its strings? */
static int may_hold(sio_redactor *r, const char *line, size_t len) {
    for (size_t i = 0; i < r->n; i++)
        if (may_hold_value(&r->v[i], line, len)) return 1;
    return 0;
}

char *sio_redact_json_text(sio_redactor *r, const char *line, size_t len, const char *skip,
                           size_t *outlen) {
    if (sio_redact_count(r) == 0) return NULL;
    pthread_mutex_lock(&r->mu);
    char *out = NULL;
    if (may_hold(r, line, len)) {
        json_t *doc = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
        if (doc == NULL) {
            json_t *w = json_pack("{s:s,s:s}", "level", "error", "msg",
                                  "log line withheld: it may hold a secret and is not valid JSON");
            out = w ? sio_json_dump(w, outlen) : NULL;
            json_decref(w);
        } else {
            if (redact_tree(r, doc, skip, 0) > 0) out = sio_json_dump(doc, outlen);
            json_decref(doc);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return out;
}
