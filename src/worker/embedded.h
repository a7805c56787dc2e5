/*
 * embedded.h - the engine's Lua sources, compiled into the binary.
 *
 * cmake/embed.cmake turns the files under lua/sio/ into a table of {module, source};
 * sio_embedded_install puts a loader for each into package.preload, so the
 * trusted engine's `require "sio.engine"` needs no files at run time.
 */
#ifndef SIO_EMBEDDED_H
#define SIO_EMBEDDED_H

#include <lua.h>
#include <stddef.h>

/* Registers every embedded module in package.preload of L (which must have
 * the package library open).  Returns the number registered. */
int sio_embedded_install(lua_State *L);

/* The source of module name ("sio.engine"), or NULL.  *len gets its length.
 * Static storage. */
const char *sio_embedded_source(const char *name, size_t *len);

#endif
