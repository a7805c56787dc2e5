/* memkv.c - see memkv.h.  A chained hash table under one mutex. */
#include "memkv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aio.h"

typedef struct entry {
    struct entry *next;
    char *key, *val;
    size_t klen, vlen;
    int64_t expires; /* monotonic ms; 0 = never */
} entry;

struct sio_memkv {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets, count;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

sio_memkv *sio_memkv_create(sio_err *err) {
    sio_memkv *kv = calloc(1, sizeof *kv);
    if (kv) kv->buckets = calloc(4096, sizeof *kv->buckets);
    if (kv == NULL || kv->buckets == NULL) {
        free(kv);
        sio_err_set(err, SIO_E_NOMEM, "memkv: out of memory");
        return NULL;
    }
    kv->nbuckets = 4096;
    pthread_mutex_init(&kv->mu, NULL);
    return kv;
}

static void entry_free(entry *e) {
    free(e->key);
    free(e->val);
    free(e);
}

void sio_memkv_destroy(sio_memkv *kv) {
    if (kv == NULL) return;
    for (size_t i = 0; i < kv->nbuckets; i++)
        for (entry *e = kv->buckets[i], *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
    free(kv->buckets);
    pthread_mutex_destroy(&kv->mu);
    free(kv);
}

/* The live entry for key, or NULL; an expired one is removed on the way.
 * *slot gets the link that points at it (or where it would go). */
static entry *find(sio_memkv *kv, const char *key, size_t klen, entry ***slot) {
    entry **p = &kv->buckets[hash(key, klen) % kv->nbuckets];
    int64_t now = now_ms();
    while (*p) {
        entry *e = *p;
        if (e->expires && e->expires <= now) {
            *p = e->next;
            entry_free(e);
            kv->count--;
            continue;
        }
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *slot = p;
            return e;
        }
        p = &e->next;
    }
    *slot = p;
    return NULL;
}

static char *copy_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int reply_str(sio_memkv_reply *r, const char *s, size_t n, sio_err *err) {
    r->type = SIO_REDIS_STR;
    r->str = copy_bytes(s, n);
    r->len = n;
    return r->str ? 0 : sio_err_set(err, SIO_E_NOMEM, "memkv: out of memory");
}

static int parse_ll(const char *s, size_t n, long long *out) {
    char buf[32];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    *out = strtoll(buf, &end, 10);
    return *end ? -1 : 0;
}

static int cmd_set(sio_memkv *kv, int argc, const char **argv, const size_t *lens,
                   sio_memkv_reply *r, sio_err *err) {
    int nx = 0, xx = 0;
    int64_t ttl = 0;
    for (int i = 3; i < argc; i++) {
        if (strcasecmp(argv[i], "NX") == 0) nx = 1;
        else if (strcasecmp(argv[i], "XX") == 0) xx = 1;
        else if ((strcasecmp(argv[i], "PX") == 0 || strcasecmp(argv[i], "EX") == 0) && i + 1 < argc) {
            long long v;
            if (parse_ll(argv[i + 1], lens[i + 1], &v) != 0 || v <= 0)
                return sio_err_set(err, SIO_E_INVAL, "ERR invalid expire time in 'set' command");
            ttl = argv[i][0] == 'P' || argv[i][0] == 'p' ? v : v * 1000;
            i++;
        } else {
            return sio_err_set(err, SIO_E_INVAL, "ERR syntax error");
        }
    }
    entry **slot;
    entry *e = find(kv, argv[1], lens[1], &slot);
    if ((nx && e) || (xx && !e)) {
        r->type = SIO_REDIS_NIL;
        return 0;
    }
    char *val = copy_bytes(argv[2], lens[2]);
    if (val == NULL) return sio_err_set(err, SIO_E_NOMEM, "memkv: out of memory");
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (e == NULL || (e->key = copy_bytes(argv[1], lens[1])) == NULL) {
            free(e);
            free(val);
            return sio_err_set(err, SIO_E_NOMEM, "memkv: out of memory");
        }
        e->klen = lens[1];
        *slot = e;
        kv->count++;
    }
    free(e->val);
    e->val = val;
    e->vlen = lens[2];
    e->expires = ttl ? now_ms() + ttl : 0;
    return reply_str(r, "OK", 2, err);
}

static int dispatch(sio_memkv *kv, int argc, const char **argv, const size_t *lens,
                    sio_memkv_reply *r, sio_err *err) {
    const char *c = argv[0];
    entry **slot;
    if (strcasecmp(c, "PING") == 0) return reply_str(r, "PONG", 4, err);
    if (argc < 2) return sio_err_set(err, SIO_E_INVAL, "ERR wrong number of arguments");
    if (strcasecmp(c, "SET") == 0 && argc >= 3) return cmd_set(kv, argc, argv, lens, r, err);
    entry *e = find(kv, argv[1], lens[1], &slot);
    if (strcasecmp(c, "GET") == 0) {
        if (e == NULL) r->type = SIO_REDIS_NIL;
        else return reply_str(r, e->val, e->vlen, err);
        return 0;
    }
    if (strcasecmp(c, "DEL") == 0) {
        r->type = SIO_REDIS_INT;
        r->integer = e != NULL;
        if (e) {
            *slot = e->next;
            entry_free(e);
            kv->count--;
        }
        return 0;
    }
    if (strcasecmp(c, "PEXPIRE") == 0 && argc == 3) {
        long long ms;
        if (parse_ll(argv[2], lens[2], &ms) != 0)
            return sio_err_set(err, SIO_E_INVAL, "ERR value is not an integer or out of range");
        r->type = SIO_REDIS_INT;
        r->integer = e != NULL;
        if (e) e->expires = now_ms() + ms;
        return 0;
    }
    if (strcasecmp(c, "INCR") == 0) {
        long long v = 0;
        if (e && parse_ll(e->val, e->vlen, &v) != 0)
            return sio_err_set(err, SIO_E_INVAL, "ERR value is not an integer or out of range");
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", v + 1);
        const char *args[3] = {"SET", argv[1], buf};
        size_t l[3] = {3, lens[1], (size_t)n};
        int64_t keep = e ? e->expires : 0;
        sio_memkv_reply ok = {0};
        if (cmd_set(kv, 3, args, l, &ok, err) != 0) return -1;
        free(ok.str);
        find(kv, argv[1], lens[1], &slot)->expires = keep;
        r->type = SIO_REDIS_INT;
        r->integer = v + 1;
        return 0;
    }
    return sio_err_set(err, SIO_E_INVAL, "ERR unknown command '%s' (embedded store)", c);
}

int sio_memkv_command(sio_memkv *kv, int argc, const char **argv, const size_t *lens,
                      sio_memkv_reply *reply, sio_err *err) {
    memset(reply, 0, sizeof *reply);
    if (argc < 1) return sio_err_set(err, SIO_E_INVAL, "ERR empty command");
    pthread_mutex_lock(&kv->mu);
    int rc = dispatch(kv, argc, argv, lens, reply, err);
    pthread_mutex_unlock(&kv->mu);
    return rc;
}

size_t sio_memkv_size(sio_memkv *kv) {
    pthread_mutex_lock(&kv->mu);
    size_t n = kv->count;
    pthread_mutex_unlock(&kv->mu);
    return n;
}
