/*
 * luajson.c - Lua values <-> jansson trees (see luajson.h).
 */
#include "luajson.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "sandbox_int.h"

/* One value plus its string bytes, as instructions of work. */
static void charge(lua_State *L, size_t bytes) {
    sio_exec_charge(L, 1 + bytes / SIO_BYTES_PER_INSTR);
}

void sio_lua_push_json(lua_State *L, const json_t *v) {
    luaL_checkstack(L, 3, "JSON nesting too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        charge(L, 0);
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        size_t klen;
        json_t *e;
        void *tmp;
        json_object_keylen_foreach_safe((json_t *)v, tmp, k, klen, e) {
            charge(L, klen);
            lua_pushlstring(L, k, klen);
            sio_lua_push_json(L, e);
            lua_rawset(L, -3);
        }
        break;
    }
    case JSON_ARRAY: {
        charge(L, 0);
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            sio_lua_push_json(L, json_array_get(v, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        charge(L, json_string_length(v));
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        charge(L, 0);
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        charge(L, 0);
        lua_pushnumber(L, (lua_Number)json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        charge(L, 0);
        lua_pushboolean(L, json_is_true(v));
        break;
    case JSON_NULL:
        charge(L, 0);
        lua_pushlightuserdata(L, NULL);
        break;
    }
}

/* A JSON string of s, each byte of an invalid UTF-8 sequence replaced by
 * U+FFFD; raises a memory error when out of memory. */
static json_t *utf8_string(lua_State *L, const char *s, size_t len) {
    json_t *j = sio_json_text(s, len);
    if (j == NULL) luaL_error(L, "not enough memory");
    return j;
}

/* Keys 1..n exactly, n >= 1: the table at idx is an array of n. */
static lua_Integer array_length(lua_State *L, int idx) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    if (n == 0) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n ? n : 0;
}

static json_t *to_json(lua_State *L, int idx, int depth, sio_err *err);

static json_t *table_to_json(lua_State *L, int idx, int depth, sio_err *err) {
    lua_Integer n = array_length(L, idx);
    if (n > 0) {
        json_t *a = json_array();
        for (lua_Integer i = 1; a && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_t *e = to_json(L, lua_gettop(L), depth + 1, err);
            lua_pop(L, 1);
            if (e == NULL || json_array_append_new(a, e) != 0) { /* steals e */
                if (e) sio_err_set(err, SIO_E_NOMEM, "out of memory");
                json_decref(a);
                return NULL;
            }
        }
        if (a == NULL) sio_err_set(err, SIO_E_NOMEM, "out of memory");
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (o && lua_next(L, idx)) {
        char num[64];
        size_t klen;
        const char *k;
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            k = lua_tolstring(L, -2, &klen);
        } else if (kt == LUA_TNUMBER) {
            if (lua_isinteger(L, -2)) snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -2));
            else snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, -2));
            k = num;
            klen = strlen(num);
        } else {
            sio_err_set(err, SIO_E_INVAL, "cannot encode a table key of type %s",
                        lua_typename(L, kt));
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        json_t *key = utf8_string(L, k, klen);
        json_t *e = to_json(L, lua_gettop(L), depth + 1, err);
        lua_pop(L, 1); /* the value; the key stays for lua_next */
        int rc = -1;
        if (key && e) /* steals e, even on failure */
            rc = json_object_setn_new_nocheck(o, json_string_value(key), json_string_length(key), e);
        else
            json_decref(e);
        if (key == NULL || (e && rc != 0)) sio_err_set(err, SIO_E_NOMEM, "out of memory");
        json_decref(key);
        if (rc != 0) {
            lua_pop(L, 1); /* the key: the walk ends here */
            json_decref(o);
            return NULL;
        }
    }
    if (o == NULL) sio_err_set(err, SIO_E_NOMEM, "out of memory");
    return o;
}

static json_t *to_json(lua_State *L, int idx, int depth, sio_err *err) {
    if (depth > SIO_LUAJSON_MAX_DEPTH) {
        sio_err_set(err, SIO_E_INVAL, "cannot encode: nested deeper than %d levels (a cycle?)",
                    SIO_LUAJSON_MAX_DEPTH);
        return NULL;
    }
    luaL_checkstack(L, 4, "JSON nesting too deep");
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        charge(L, 0);
        return json_null();
    case LUA_TBOOLEAN:
        charge(L, 0);
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        charge(L, 0);
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = (double)lua_tonumber(L, idx);
        if (!isfinite(d)) {
            sio_err_set(err, SIO_E_INVAL, "cannot encode %s", isnan(d) ? "NaN" : "an infinite number");
            return NULL;
        }
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        charge(L, len);
        return utf8_string(L, s, len);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            charge(L, 0);
            return json_null();
        }
        break;
    case LUA_TTABLE:
        charge(L, 0);
        return table_to_json(L, idx, depth, err);
    default:
        break;
    }
    sio_err_set(err, SIO_E_INVAL, "cannot encode a %s", luaL_typename(L, idx));
    return NULL;
}

json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err) {
    return to_json(L, lua_absindex(L, idx), 0, err);
}
