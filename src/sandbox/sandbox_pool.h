/*
 * sandbox_pool.h - a small-block allocator for one lua_State.
 *
 * Lua allocates and frees many small objects per command (tables, closures,
 * strings, coroutines) and always tells the allocator the old size, so
 * blocks of up to SIO_POOL_MAX bytes can come from per-size free lists
 * instead of malloc: no header, no locking (a state belongs to one thread),
 * no consolidation.  Blocks are carved from 64 KiB chunks; a freed block
 * goes back to its list and the chunks are released only with the pool.
 */
#ifndef SIO_SANDBOX_POOL_H
#define SIO_SANDBOX_POOL_H

#include <stddef.h>

#define SIO_POOL_MAX 256
#define SIO_POOL_CLASSES (SIO_POOL_MAX / 16)

typedef struct sio_pool {
    void *free[SIO_POOL_CLASSES]; /* per 16-byte size class */
    char *chunk;                  /* current chunk (its first word links chunks) */
    size_t left;                  /* bytes left in it */
    void *chunks;                 /* every chunk, for release */
} sio_pool;

/* A block of n bytes (0 < n <= SIO_POOL_MAX), or NULL when memory is short. */
void *sio_pool_alloc(sio_pool *p, size_t n);

/* Returns a block of n bytes (the size it was allocated with). */
void sio_pool_free(sio_pool *p, void *block, size_t n);

/* Releases every chunk.  The pool is empty afterwards. */
void sio_pool_release(sio_pool *p);

#endif
