/* mem.c - see mem.h. */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

char *sio_memdup(const void *p, size_t n) {
    char *o = malloc(n + 1);
    if (o) {
        if (n) memcpy(o, p, n);
        o[n] = '\0';
    }
    return o;
}
