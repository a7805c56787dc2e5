/* mem.h - small memory helpers every layer uses. */
#ifndef SIO_MEM_H
#define SIO_MEM_H

#include <stddef.h>

/* A copy of the n bytes at p with a NUL after them (malloc'd, the caller
 * frees), or NULL when out of memory.  p may be NULL when n is 0. */
char *sio_memdup(const void *p, size_t n);

#endif
