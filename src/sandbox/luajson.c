/*
 * luajson.c - Lua values <-> jansson trees, and the Lua codec sio.json
 * (see luajson.h).
 *
 * Charging.  A conversion is work a command causes, so it is charged to
 * the command's execution as it goes: one instruction per value plus one
 * per SIO_BYTES_PER_INSTR bytes of string (sio_exec_spend), and every byte
 * jansson allocates - the tree, the parser's buffers, the dumped text - to
 * its memory limit, through a JSON meter (json.h) installed around each
 * jansson call.  JSON has no sharing, so a table referenced a billion
 * times costs a billion values: the budget, not the machine, runs out.
 *
 * No leaks.  Nothing here raises while a jansson tree or text is held:
 * conversion errors and limit breaches are reported through sio_err and
 * the exec's kill flag, what was built is freed, and only then is the
 * error raised.  The Lua calls that can raise while a tree or text is held
 * (building the decoded values, pushing the encoded text) run under
 * lua_pcall.
 */
#include "luajson.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sandbox_int.h"

#define PATH_SEG_MAX 40 /* bytes of a key shown in an error's path */

/* --- conversion context ---------------------------------------------------*/

/* One conversion: the thread whose exec pays, its meter, and the error. */
typedef struct conv {
    lua_State *L;
    sio_json_meter meter;
    const sio_json_meter *prev;
    size_t held;  /* bytes charged through the meter and not credited */
    int has_path; /* err->msg starts with the path of the failing value */
    sio_err *err;
} conv;

static int conv_charge(void *ud, size_t bytes) {
    conv *c = ud;
    if (sio_exec_mem_charge(c->L, bytes) != 0) return -1;
    c->held += bytes;
    return 0;
}

/* Credits at most what this conversion was charged: a block it did not
 * allocate gives nothing back. */
static void conv_credit(void *ud, size_t bytes) {
    conv *c = ud;
    if (bytes > c->held) bytes = c->held;
    c->held -= bytes;
    sio_exec_mem_release(c->L, bytes);
}

static void conv_init(conv *c, lua_State *L, sio_err *err) {
    memset(c, 0, sizeof *c);
    c->L = L;
    c->meter = (sio_json_meter){.charge = conv_charge, .credit = conv_credit, .ud = c};
    c->err = err;
    sio_err_clear(err);
}

static void meter_on(conv *c) { c->prev = sio_json_meter_set(&c->meter); }
static void meter_off(conv *c) { sio_json_meter_set(c->prev); }

/* The conversion's memory is freed or handed to the caller: whatever is
 * still charged stops counting against the exec. */
static void conv_done(conv *c) {
    sio_exec_mem_release(c->L, c->held);
    c->held = 0;
}

static sio_kill kill_of(lua_State *L) {
    sio_exec *ex = sio_exec_of(L);
    return ex ? sio_exec_kill_reason(ex) : SIO_KILL_NONE;
}

/* A jansson call returned NULL: the exec's limit, or the process is out of
 * memory.  Returns NULL. */
static json_t *no_memory(conv *c) {
    sio_kill k = kill_of(c->L);
    if (k != SIO_KILL_NONE) sio_err_set(c->err, SIO_E_LIMIT, "%s", sio_kill_message(k));
    else sio_err_set(c->err, SIO_E_NOMEM, "out of memory");
    return NULL;
}

/* v, or NULL (v freed, err set) when the exec was killed meanwhile: a
 * jansson call can run past an allocation the meter refused (its lexer
 * ignores a failed append), so its result is not trusted then. */
static json_t *checked(conv *c, json_t *v) {
    if (v == NULL || kill_of(c->L) == SIO_KILL_NONE) return v;
    json_decref(v);
    return no_memory(c);
}

/* Charges one value and its string bytes; 0, or -1 with err set. */
static int work(conv *c, size_t bytes) {
    if (sio_exec_spend(c->L, 1 + bytes / SIO_BYTES_PER_INSTR) == 0) return 0;
    no_memory(c);
    return -1;
}

/* Raises the error of a failed conversion: the limit error table when the
 * exec was killed, else err's message. */
static int raise_conv(lua_State *L, const sio_err *err) {
    sio_exec_charge(L, 0); /* raises when killed */
    lua_pushstring(L, err->msg);
    return lua_error(L);
}

/* --- JSON to Lua ------------------------------------------------------------*/

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

/* --- Lua to JSON: errors name the path ------------------------------------*/

/* Puts seg in front of err's message as the error unwinds: the first
 * segment makes "seg: message", the next ones "seg.rest" / "seg[2]...". */
static void path_prepend(conv *c, const char *seg, size_t n) {
    char *m = c->err->msg;
    size_t mlen = strlen(m), sep = c->has_path ? (m[0] == '[' ? 0 : 1) : 2;
    if (c->err->code != SIO_E_INVAL || n + sep + mlen >= sizeof c->err->msg) return;
    memmove(m + n + sep, m, mlen + 1);
    memcpy(m, seg, n);
    if (sep == 1) m[n] = '.';
    if (sep == 2) memcpy(m + n, ": ", 2);
    c->has_path = 1;
}

static void path_key(conv *c, const char *k, size_t klen) {
    char seg[PATH_SEG_MAX + 8];
    int n = snprintf(seg, sizeof seg, "%.*s%s", (int)(klen > PATH_SEG_MAX ? PATH_SEG_MAX : klen),
                     k, klen > PATH_SEG_MAX ? "..." : "");
    path_prepend(c, seg, strnlen(seg, (size_t)n));
}

static void path_index(conv *c, lua_Integer i) {
    char seg[32];
    int n = snprintf(seg, sizeof seg, "[%lld]", (long long)i);
    path_prepend(c, seg, (size_t)n);
}

/* --- Lua to JSON ------------------------------------------------------------*/

/* A JSON string of s, each byte of an invalid UTF-8 sequence replaced by
 * U+FFFD.  The scratch copy is charged like the tree. */
static json_t *string_json(conv *c, const char *s, size_t len) {
    size_t i = sio_utf8_valid(s, len);
    if (i == len) {
        json_t *j = json_stringn_nocheck(s, len);
        return j ? j : no_memory(c);
    }
    if (len - i > (SIZE_MAX - i) / 3) return no_memory(c);
    size_t cap = i + (len - i) * 3, o = i;
    if (sio_exec_mem_charge(c->L, cap) != 0) return no_memory(c);
    char *b = malloc(cap);
    json_t *j = NULL;
    if (b != NULL) {
        memcpy(b, s, i);
        while (i < len) {
            size_t k = sio_utf8_char((const unsigned char *)s + i, len - i);
            if (k == 0) {
                memcpy(b + o, "\xEF\xBF\xBD", 3);
                o += 3;
                i++;
            } else {
                memcpy(b + o, s + i, k);
                o += k;
                i += k;
            }
        }
        j = json_stringn_nocheck(b, o);
        free(b);
    }
    sio_exec_mem_release(c->L, cap);
    return j ? j : no_memory(c);
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

static json_t *to_json(conv *c, int idx, int depth);

static json_t *array_json(conv *c, int idx, lua_Integer n, int depth) {
    lua_State *L = c->L;
    json_t *a = json_array();
    if (a == NULL) return no_memory(c);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        json_t *e = to_json(c, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (e == NULL) {
            path_index(c, i);
            json_decref(a);
            return NULL;
        }
        if (json_array_append_new(a, e) != 0) { /* steals e */
            json_decref(a);
            return no_memory(c);
        }
    }
    return a;
}

/* The text of the key at the top of the stack (a string or a number, as
 * tostring would write it), without converting the key in place. */
static const char *key_text(conv *c, char *num, size_t size, size_t *len) {
    lua_State *L = c->L;
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) return lua_tolstring(L, -2, len);
    if (kt != LUA_TNUMBER) {
        sio_err_set(c->err, SIO_E_INVAL, "cannot use a %s as a JSON object key",
                    lua_typename(L, kt));
        return NULL;
    }
    if (lua_isinteger(L, -2)) {
        snprintf(num, size, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -2));
    } else {
        snprintf(num, size, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, -2));
        if (num[strspn(num, "-0123456789")] == '\0') strcat(num, ".0"); /* as tostring */
    }
    *len = strlen(num);
    return num;
}

static json_t *object_json(conv *c, int idx, int depth) {
    lua_State *L = c->L;
    json_t *o = json_object();
    if (o == NULL) return no_memory(c);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char num[64];
        size_t klen;
        const char *k = key_text(c, num, sizeof num - 2, &klen);
        json_t *key = k ? string_json(c, k, klen) : NULL;
        json_t *e = NULL;
        if (key != NULL && json_object_getn(o, json_string_value(key), json_string_length(key)))
            sio_err_set(c->err, SIO_E_INVAL, "two keys of one table both encode as \"%s\"",
                        json_string_value(key));
        else if (key != NULL && (e = to_json(c, lua_gettop(L), depth + 1)) == NULL)
            path_key(c, k, klen);
        lua_pop(L, 1); /* the value; the key stays for lua_next */
        if (e == NULL ||
            json_object_setn_new_nocheck(o, json_string_value(key), json_string_length(key), e)) {
            if (e != NULL) no_memory(c); /* set failed: e was freed */
            json_decref(key);
            json_decref(o);
            lua_pop(L, 1); /* the key: the walk ends here */
            return NULL;
        }
        json_decref(key);
    }
    return o;
}

static json_t *table_json(conv *c, int idx, int depth) {
    lua_Integer n = array_length(c->L, idx);
    if (work(c, (size_t)n) != 0) return NULL; /* array_length walked n keys */
    return n > 0 ? array_json(c, idx, n, depth) : object_json(c, idx, depth);
}

static json_t *number_json(conv *c, int idx) {
    if (lua_isinteger(c->L, idx)) return json_integer((json_int_t)lua_tointeger(c->L, idx));
    double d = (double)lua_tonumber(c->L, idx);
    if (!isfinite(d)) {
        sio_err_set(c->err, SIO_E_INVAL, "cannot encode %s as JSON",
                    isnan(d) ? "NaN" : "an infinite number");
        return NULL;
    }
    return json_real(d);
}

static json_t *to_json(conv *c, int idx, int depth) {
    lua_State *L = c->L;
    size_t len = 0;
    if (depth > SIO_LUAJSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        sio_err_set(c->err, SIO_E_INVAL, "cannot encode as JSON: nested deeper than %d levels "
                    "(a cycle?)", SIO_LUAJSON_MAX_DEPTH);
        return NULL;
    }
    if (lua_type(L, idx) == LUA_TSTRING) lua_tolstring(L, idx, &len);
    if (work(c, len) != 0) return NULL;
    json_t *v;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        v = number_json(c, idx);
        return v != NULL || c->err->code != SIO_E_OK ? v : no_memory(c);
    case LUA_TSTRING: return string_json(c, lua_tostring(L, idx), len);
    case LUA_TTABLE: return table_json(c, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return json_null();
        break;
    default: break;
    }
    sio_err_set(c->err, SIO_E_INVAL, "cannot encode a %s as JSON", luaL_typename(L, idx));
    return NULL;
}

json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err) {
    sio_err local;
    conv c;
    conv_init(&c, L, err ? err : &local);
    idx = lua_absindex(L, idx);
    meter_on(&c);
    json_t *v = checked(&c, to_json(&c, idx, 0));
    meter_off(&c);
    conv_done(&c); /* v now belongs to the caller */
    if (v == NULL) sio_exec_charge(L, 0);
    return v;
}

/* --- the Lua codec ----------------------------------------------------------*/

/* pcall'd: pushes the text [1] (light userdata) of length [2]. */
static int push_text_cf(lua_State *L) {
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

/* pcall'd: pushes the Lua value of the tree [1] (light userdata). */
static int push_tree_cf(lua_State *L) {
    sio_lua_push_json(L, lua_touserdata(L, 1));
    return 1;
}

/* Runs push(p, n) under lua_pcall, so that whatever it raises (memory,
 * limits) leaves the caller free to release what it holds first.  Leaves
 * the value or the error on top; returns the status. */
static int push_protected(lua_State *L, lua_CFunction push, void *p, size_t n) {
    lua_pushcfunction(L, push);
    lua_pushlightuserdata(L, p);
    lua_pushinteger(L, (lua_Integer)n);
    return lua_pcall(L, 2, 1, 0);
}

/* A conversion failed with nothing held: raises its error. */
static int conv_fail(conv *c) {
    conv_done(c);
    return raise_conv(c->L, c->err);
}

/* encode(value) -> text */
static int l_encode(lua_State *L) {
    sio_err err;
    conv c;
    size_t len = 0;
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    conv_init(&c, L, &err);
    meter_on(&c);
    json_t *v = checked(&c, to_json(&c, 1, 0));
    char *text = v ? sio_json_dump(v, &len) : NULL;
    if (text != NULL && kill_of(L) != SIO_KILL_NONE) {
        free(text);
        text = NULL;
    }
    if (v != NULL && text == NULL) no_memory(&c);
    json_decref(v);
    meter_off(&c);
    if (text == NULL) return conv_fail(&c);
    int st = push_protected(L, push_text_cf, text, len);
    free(text);
    conv_done(&c);
    return st == LUA_OK ? 1 : lua_error(L);
}

/* decode(text) -> value */
static int l_decode(lua_State *L) {
    sio_err err;
    conv c;
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    sio_exec_charge(L, 1 + len / SIO_BYTES_PER_INSTR); /* the parse; nothing held yet */
    conv_init(&c, L, &err);
    meter_on(&c);
    json_t *v = checked(&c, sio_json_parse(text, len, &err));
    meter_off(&c);
    if (v == NULL) return conv_fail(&c);
    int st = push_protected(L, push_tree_cf, v, 0);
    meter_on(&c);
    json_decref(v);
    meter_off(&c);
    conv_done(&c);
    return st == LUA_OK ? 1 : lua_error(L);
}

int luaopen_sio_json(lua_State *L) {
    static const luaL_Reg fns[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
