/*
 * sandbox_log.c - the sandbox's log lines: host.log and print write one JSON
 * line each through log.h's route (sio_log_emit) to the sink the sandbox
 * was created with.  Fields are read from Lua values with raw access, so no
 * user metamethod runs, into a jansson tree; a line holds at most
 * LOG_MAX_LINE bytes of field text (the rest is left out and the line says
 * "truncated": true).
 */
#include <math.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "sandbox_int.h"

#define LOG_MAX_LINE (64 * 1024)
#define LOG_MAX_DEPTH 8

/* The bytes of field text still allowed in the line. */
typedef struct budget {
    size_t left;
    int cut; /* something was left out */
} budget;

/* Takes n bytes of the budget; 0 when they do not fit (then nothing is). */
static int spend(budget *b, size_t n) {
    if (b->cut || n > b->left) {
        b->cut = 1;
        return 0;
    }
    b->left -= n;
    return 1;
}

static json_t *value_of(lua_State *L, int idx, int depth, budget *b);

/* A table: an array when t[1] is present, else an object of its string
 * keys.  Raw access only: no user metamethod runs here. */
static json_t *table_of(lua_State *L, int idx, int depth, budget *b) {
    if (depth >= LOG_MAX_DEPTH || !lua_checkstack(L, 3)) return json_string("<table>");
    size_t n = lua_rawlen(L, idx);
    if (n > 0) {
        json_t *a = json_array();
        for (size_t i = 1; a && i <= n && spend(b, 1); i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            json_array_append_new(a, value_of(L, lua_gettop(L), depth + 1, b));
            lua_pop(L, 1);
        }
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (o && lua_next(L, idx)) {
        size_t kl;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &kl);
            json_t *key = NULL; /* the name as valid UTF-8 (U+FFFD for bad bytes) */
            if (memchr(k, '\0', kl) == NULL && spend(b, kl + 4) &&
                (key = sio_json_text(k, kl)) != NULL)
                json_object_set_new(o, json_string_value(key),
                                    value_of(L, lua_gettop(L), depth + 1, b));
            json_decref(key);
        }
        lua_pop(L, 1);
    }
    return o;
}

static json_t *value_of(lua_State *L, int idx, int depth, budget *b) {
    size_t n;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        return isfinite(lua_tonumber(L, idx)) ? json_real(lua_tonumber(L, idx)) : json_null();
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        return spend(b, n + 2) ? sio_json_text(s, n) : json_null();
    case LUA_TTABLE: return table_of(L, idx, depth, b);
    default: return json_sprintf("<%s>", lua_typename(L, lua_type(L, idx)));
    }
}

void sio_sandbox_log(lua_State *L, const char *level, const char *msg, size_t msglen,
                     int fields_idx) {
    budget b = {.left = LOG_MAX_LINE};
    json_t *fields = NULL;
    if (fields_idx != 0 && lua_istable(L, fields_idx)) {
        fields = table_of(L, lua_absindex(L, fields_idx), 0, &b);
        if (fields && !json_is_object(fields)) { /* an array given as fields */
            json_t *o = json_pack("{s:o}", "fields", fields);
            fields = o;
        }
        if (fields && b.cut) json_object_set_new(fields, "truncated", json_true());
    }
    if (msglen > LOG_MAX_LINE) msglen = LOG_MAX_LINE;
    sio_sandbox *sb = sio_sandbox_of(L);
    sio_log_emit(sb->log, sb->log_ud, level, msg, msglen, fields);
    json_decref(fields);
}
