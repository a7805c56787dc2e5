/* offsets.c - per-partition commit tracking; see offsets.h. */
#include "offsets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One tracked offset in a partition's window. */
typedef struct entry {
    int64_t offset;
    bool done;
} entry;

/* State of one assigned partition; a node of the tracker's hash table. */
typedef struct part {
    struct part *next; /* hash chain */
    uint64_t hash;
    char *topic;       /* owned */
    int32_t partition;
    uint64_t gen;
    entry *ring;       /* window, cap a power of two (or 0) */
    size_t cap, head, n;
    int64_t next_off;  /* highest tracked + 1, or -1 before the first */
    size_t inflight;   /* entries not done */
    int64_t pos;       /* last committable position reported */
    bool has_pos;
} part;

struct sio_offsets {
    part **buckets; /* nbuckets, a power of two */
    size_t nbuckets, nparts;
    uint64_t last_gen;
    size_t inflight;
};

/* Windows larger than this are freed when they empty, so one burst does
 * not pin its memory for the partition's lifetime. */
#define KEEP_RING 1024

/* ------------------------------------------------------------------------ */
/* Hash table of partitions                                                  */

/* FNV-1a over the topic and the partition number. */
static uint64_t hash_key(const char *topic, int32_t partition) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)topic; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (int i = 0; i < 4; i++) h = (h ^ (((uint32_t)partition >> (8 * i)) & 0xff)) * 1099511628211ULL;
    return h;
}

/* The partition's node, or NULL. */
static part *find(const sio_offsets *t, const char *topic, int32_t partition) {
    uint64_t h = hash_key(topic, partition);
    for (part *p = t->buckets[h & (t->nbuckets - 1)]; p != NULL; p = p->next)
        if (p->hash == h && p->partition == partition && strcmp(p->topic, topic) == 0) return p;
    return NULL;
}

/* Doubles the bucket array when partitions outnumber buckets; on failure
 * the table just stays denser. */
static void maybe_grow(sio_offsets *t) {
    if (t->nparts <= t->nbuckets) return;
    size_t nb = t->nbuckets * 2;
    part **b = calloc(nb, sizeof *b);
    if (b == NULL) return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (part *p = t->buckets[i], *next; p != NULL; p = next) {
            next = p->next;
            p->next = b[p->hash & (nb - 1)];
            b[p->hash & (nb - 1)] = p;
        }
    }
    free(t->buckets);
    t->buckets = b, t->nbuckets = nb;
}

/* Unlinks p from its chain (it must be there). */
static void unlink_part(sio_offsets *t, part *p) {
    part **pp = &t->buckets[p->hash & (t->nbuckets - 1)];
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    t->nparts--;
}

/* Forgets p's window and counts, keeping its identity. */
static void reset_part(sio_offsets *t, part *p) {
    t->inflight -= p->inflight;
    free(p->ring);
    p->ring = NULL;
    p->cap = p->head = p->n = p->inflight = 0;
    p->next_off = -1;
    p->pos = 0, p->has_pos = false;
}

/* Frees p (already unlinked) and takes its in-flight count off t. */
static void free_part(sio_offsets *t, part *p) {
    reset_part(t, p);
    free(p->topic);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */

sio_offsets *sio_offsets_create(sio_err *err) {
    sio_offsets *t = calloc(1, sizeof *t);
    if (t != NULL) t->nbuckets = 16, t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (t == NULL || t->buckets == NULL) {
        free(t);
        sio_err_set(err, SIO_E_NOMEM, "offsets: out of memory");
        return NULL;
    }
    return t;
}

void sio_offsets_destroy(sio_offsets *t) {
    if (t == NULL) return;
    sio_offsets_revoke_all(t);
    free(t->buckets);
    free(t);
}

int sio_offsets_assign(sio_offsets *t, const char *topic, int32_t partition, sio_err *err) {
    part *p = find(t, topic, partition);
    if (p != NULL) {
        reset_part(t, p);
        p->gen = ++t->last_gen;
        return 0;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        return sio_err_set(err, SIO_E_NOMEM, "offsets: out of memory");
    }
    p->hash = hash_key(topic, partition);
    p->partition = partition;
    p->gen = ++t->last_gen;
    p->next_off = -1;
    p->next = t->buckets[p->hash & (t->nbuckets - 1)];
    t->buckets[p->hash & (t->nbuckets - 1)] = p;
    t->nparts++;
    maybe_grow(t);
    return 0;
}

void sio_offsets_revoke(sio_offsets *t, const char *topic, int32_t partition) {
    part *p = find(t, topic, partition);
    if (p == NULL) return;
    unlink_part(t, p);
    free_part(t, p);
}

void sio_offsets_revoke_all(sio_offsets *t) {
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (part *p = t->buckets[i], *next; p != NULL; p = next) {
            next = p->next;
            free_part(t, p);
        }
        t->buckets[i] = NULL;
    }
    t->nparts = 0;
}

/* ------------------------------------------------------------------------ */
/* The window                                                                */

/* The i-th entry of p's window, counted from the front. */
static entry *at(const part *p, size_t i) {
    return &p->ring[(p->head + i) & (p->cap - 1)];
}

/* Makes room for one more entry, doubling the ring (kept in order). */
static int ring_reserve(part *p, sio_err *err) {
    if (p->n < p->cap) return 0;
    size_t cap = p->cap ? p->cap * 2 : 16;
    entry *r = malloc(cap * sizeof *r);
    if (r == NULL) return sio_err_set(err, SIO_E_NOMEM, "offsets: out of memory");
    for (size_t i = 0; i < p->n; i++) r[i] = *at(p, i);
    free(p->ring);
    p->ring = r, p->cap = cap, p->head = 0;
    return 0;
}

/* Index of offset in p's window, or -1.  Contiguous offsets hit the direct
 * index; gaps fall back to a binary search (the window is sorted). */
static long long locate(const part *p, int64_t offset) {
    if (p->n == 0 || offset < at(p, 0)->offset || offset >= p->next_off) return -1;
    uint64_t guess = (uint64_t)(offset - at(p, 0)->offset);
    if (guess < p->n && at(p, guess)->offset == offset) return (long long)guess;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(p, mid)->offset < offset) lo = mid + 1;
        else hi = mid;
    }
    return lo < p->n && at(p, lo)->offset == offset ? (long long)lo : -1;
}

/* Pops finished entries off the front; returns the committable position. */
static int64_t pop_done(part *p) {
    while (p->n > 0 && at(p, 0)->done) {
        p->head = (p->head + 1) & (p->cap - 1);
        p->n--;
    }
    if (p->n > 0) return at(p, 0)->offset;
    if (p->cap > KEEP_RING) {
        free(p->ring);
        p->ring = NULL, p->cap = p->head = 0;
    }
    return p->next_off;
}

/* ------------------------------------------------------------------------ */
/* Track and done                                                            */

int sio_offsets_track(sio_offsets *t, const char *topic, int32_t partition, int64_t offset,
                      uint64_t *gen, sio_err *err) {
    part *p = find(t, topic, partition);
    if (p == NULL)
        return sio_err_set(err, SIO_E_INVAL, "offsets: %s [%d] is not assigned", topic,
                           (int)partition);
    if (offset < 0 || offset < p->next_off)
        return sio_err_set(err, SIO_E_INVAL,
                           "offsets: %s [%d] offset %lld is not above the last tracked (%lld)",
                           topic, (int)partition, (long long)offset, (long long)p->next_off - 1);
    if (ring_reserve(p, err) != 0) return -1;
    entry *e = &p->ring[(p->head + p->n) & (p->cap - 1)];
    e->offset = offset, e->done = false;
    p->n++, p->inflight++, t->inflight++;
    p->next_off = offset + 1;
    if (gen != NULL) *gen = p->gen;
    return 0;
}

int sio_offsets_done(sio_offsets *t, const char *topic, int32_t partition, int64_t offset,
                     uint64_t gen, int64_t *commit_to) {
    part *p = find(t, topic, partition);
    if (p == NULL || p->gen != gen) return 0; /* revoked or re-assigned since */
    long long i = locate(p, offset);
    if (i < 0 || at(p, (size_t)i)->done) return 0;
    at(p, (size_t)i)->done = true;
    p->inflight--, t->inflight--;
    if (i != 0) return 0; /* an earlier offset is still unfinished */
    int64_t pos = pop_done(p);
    if (p->has_pos && pos <= p->pos) return 0;
    p->pos = pos, p->has_pos = true;
    if (commit_to != NULL) *commit_to = pos;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */

int sio_offsets_current(const sio_offsets *t, const char *topic, int32_t partition, uint64_t gen) {
    const part *p = find(t, topic, partition);
    return p != NULL && p->gen == gen;
}

int sio_offsets_position(const sio_offsets *t, const char *topic, int32_t partition,
                         int64_t *pos) {
    const part *p = find(t, topic, partition);
    if (p == NULL || !p->has_pos) return 0;
    if (pos != NULL) *pos = p->pos;
    return 1;
}

size_t sio_offsets_inflight(const sio_offsets *t) {
    return t->inflight;
}

size_t sio_offsets_partition_inflight(const sio_offsets *t, const char *topic,
                                      int32_t partition) {
    const part *p = find(t, topic, partition);
    return p ? p->inflight : 0;
}

size_t sio_offsets_partition_window(const sio_offsets *t, const char *topic, int32_t partition) {
    const part *p = find(t, topic, partition);
    return p ? p->n : 0;
}

size_t sio_offsets_each_committable(const sio_offsets *t, sio_offsets_each_fn fn, void *ud) {
    size_t calls = 0;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (const part *p = t->buckets[i]; p != NULL; p = p->next) {
            if (!p->has_pos) continue;
            fn(ud, p->topic, p->partition, p->pos);
            calls++;
        }
    }
    return calls;
}
