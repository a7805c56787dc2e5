/* embedded.c - package.preload loaders for the embedded engine sources. */
#include "embedded.h"

#include <lauxlib.h>
#include <string.h>

struct sio_embedded {
    const char *name;
    const char *src;
    size_t len;
};
extern const struct sio_embedded sio_embedded_lua[];

const char *sio_embedded_source(const char *name, size_t *len) {
    for (const struct sio_embedded *e = sio_embedded_lua; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            if (len) *len = e->len;
            return e->src;
        }
    }
    return NULL;
}

/* package.preload loader: compiles the embedded text (never binary) with
 * chunkname "@lua/sio/x.lua" so tracebacks point at the source tree. */
static int load_embedded(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    size_t len;
    const char *src = sio_embedded_source(name, &len);
    if (src == NULL) return luaL_error(L, "no embedded module '%s'", name);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "@lua/");
    for (const char *p = name; *p; p++) luaL_addchar(&b, *p == '.' ? '/' : *p);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b);
    if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1); /* we are inside require's protected call */
    return 1;
}

int sio_embedded_install(lua_State *L) {
    int n = 0;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const struct sio_embedded *e = sio_embedded_lua; e->name; e++, n++) {
        lua_pushcfunction(L, load_embedded);
        lua_setfield(L, -2, e->name);
    }
    lua_pop(L, 1);
    return n;
}
