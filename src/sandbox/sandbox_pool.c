/* sandbox_pool.c - see sandbox_pool.h. */
#include "sandbox_pool.h"

#include <stdlib.h>

#define CHUNK (64 * 1024)

static size_t class_of(size_t n) {
    return (n + 15) / 16 - 1;
}

void *sio_pool_alloc(sio_pool *p, size_t n) {
    size_t c = class_of(n);
    void *b = p->free[c];
    if (b != NULL) {
        p->free[c] = *(void **)b;
        return b;
    }
    size_t sz = (c + 1) * 16;
    if (p->left < sz) {
        char *chunk = malloc(CHUNK);
        if (chunk == NULL) return NULL;
        *(void **)chunk = p->chunks; /* the first 16 bytes link the chunks */
        p->chunks = chunk;
        p->chunk = chunk + 16;
        p->left = CHUNK - 16;
    }
    b = p->chunk;
    p->chunk += sz;
    p->left -= sz;
    return b;
}

void sio_pool_free(sio_pool *p, void *block, size_t n) {
    size_t c = class_of(n);
    *(void **)block = p->free[c];
    p->free[c] = block;
}

void sio_pool_release(sio_pool *p) {
    for (void *c = p->chunks, *next; c; c = next) {
        next = *(void **)c;
        free(c);
    }
    *p = (sio_pool){0};
}
