/*
 * worker_settings.c - the settings runner.init takes, as a Lua table built
 * from the configuration (src/core/config.c holds the defaults).  Its own
 * file so the busted harness's module (src/testing) links it without the
 * rest of the worker.
 */
#include <lauxlib.h>

#include "config.h"
#include "worker.h"

/* [1] a sio_config (light userdata): pushes runner.init's settings. */
static int settings_k(lua_State *L) {
    const sio_config *c = lua_touserdata(L, 1);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, c->retry_attempts);
    lua_setfield(L, -2, "retry_attempts");
    lua_pushinteger(L, (lua_Integer)c->retry_backoff_base_ms);
    lua_setfield(L, -2, "retry_backoff_base_ms");
    lua_pushinteger(L, (lua_Integer)c->retry_backoff_max_ms);
    lua_setfield(L, -2, "retry_backoff_max_ms");
    lua_pushinteger(L, (lua_Integer)c->publish_limit);
    lua_setfield(L, -2, "publish_limit");
    lua_pushinteger(L, (lua_Integer)c->http_timeout_ms);
    lua_setfield(L, -2, "http_timeout_ms");
    return 1;
}

int sio_worker_push_settings(lua_State *L, const sio_config *cfg, sio_err *err) {
    const sio_config *own = NULL;
    if (cfg == NULL) { /* the defaults: the settings table of config.c */
        char *argv[] = {"worker", NULL};
        cfg = own = sio_config_load(1, argv, NULL, NULL, err);
        if (cfg == NULL) return -1;
    }
    int rc = 0;
    if (!lua_checkstack(L, 3)) {
        rc = sio_err_set(err, SIO_E_NOMEM, "settings: out of memory");
    } else {
        lua_pushcfunction(L, settings_k);
        lua_pushlightuserdata(L, (void *)cfg);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            rc = sio_err_set(err, SIO_E_NOMEM, "settings: %s", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    sio_config_destroy(own);
    return rc;
}

