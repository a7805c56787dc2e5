/*
 * luajson.c - Lua values <-> JSON, and the Lua codec sio.json (see
 * luajson.h).
 *
 * Writing.  Lua values are written straight to text by json.h's writing
 * rules, into a buffer from the state's allocator held by a userdata (one
 * per state, anchored in the registry and kept between encodes while it
 * is at most TEXT_KEEP bytes): the text's growth is charged to the running
 * execution like any Lua allocation (memory, and an instruction per 16
 * bytes), and a raise anywhere - a limit, an error - leaves nothing behind
 * (the next encode starts the buffer afresh, and frees it after use when
 * it has grown past TEXT_KEEP).  Each value also costs an instruction, each
 * string one per 16
 * bytes.  JSON has no sharing, so a table referenced a billion times costs
 * a billion values: the budget, not the machine, runs out.
 *
 * Reading.  Texts are parsed by sio_json_parse into a jansson tree, whose
 * memory is outside the Lua allocator: every byte jansson allocates is
 * charged to the execution through a JSON meter (json.h) installed around
 * the jansson call.  Nothing raises while the tree is held: a refusal is
 * recorded, the tree freed, and only then the limit error raised; building
 * the Lua values from the tree (which can raise) runs under lua_pcall.
 * C callers that want a tree from a Lua value (sio_lua_to_json) get it
 * built by the same walk as the text, node by node: no text is written
 * and parsed back.  The tree is held by a userdata until it is handed
 * over (one per state, anchored in the registry like the text buffer: a
 * tree a raise left there is freed by the next conversion, or with the
 * state), and the meter is installed
 * only around each jansson call, never across a Lua call that may raise.
 */
#include "luajson.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sandbox_int.h"

#define PATH_SEG_MAX 40            /* bytes of a key shown in an error's path */
/* Instructions a value costs: what writing or reading one takes in C,
 * measured against the VM's instructions (bench/: writing a value takes
 * about as long as 50 instructions, reading one - a jansson node made,
 * converted, freed - several times that). */
#define WRITE_COST 32
#define READ_COST 128
#define TEXT_MT "sio.json.text"    /* metatable of the text buffers */
#define TREE_MT "sio.json.tree"    /* metatable of the tree holders */
#define TEXT_KEEP ((size_t)16 << 10) /* text buffer kept between encodes */

/* --- charging ---------------------------------------------------------------*/

/* cost plus one instruction per SIO_BYTES_PER_INSTR bytes; raises the
 * limit error when ex is (or becomes) killed. */
static void charge(lua_State *L, sio_exec *ex, uint64_t cost, size_t bytes) {
    if (sio_exec_spend_on(ex, cost + bytes / SIO_BYTES_PER_INSTR) != 0) sio_exec_charge(L, 0);
}

/* A jansson call under a meter that charges the exec, crediting at most
 * what it was charged (a block it did not allocate gives nothing back). */
typedef struct metered {
    lua_State *L;
    sio_exec *ex;
    sio_json_meter meter;
    const sio_json_meter *prev;
    size_t held; /* charged and not credited */
} metered;

static int metered_charge(void *ud, size_t bytes) {
    metered *m = ud;
    if (sio_exec_mem_charge_on(m->ex, m->L, bytes) != 0) return -1;
    m->held += bytes;
    return 0;
}

static void metered_credit(void *ud, size_t bytes) {
    metered *m = ud;
    if (bytes > m->held) bytes = m->held;
    m->held -= bytes;
    sio_exec_mem_release_on(m->ex, bytes);
}

static void meter_init(metered *m, lua_State *L) {
    *m = (metered){.L = L, .ex = sio_exec_of(L)};
    m->meter = (sio_json_meter){.charge = metered_charge, .credit = metered_credit, .ud = m};
}

static void meter_on(metered *m) { m->prev = sio_json_meter_set(&m->meter); }

static void meter_off(metered *m) { sio_json_meter_set(m->prev); }

/* What jansson built is freed or handed to the caller: whatever is still
 * charged stops counting against the exec. */
static void meter_done(metered *m) {
    sio_exec_mem_release_on(m->ex, m->held);
    m->held = 0;
}

/* sio_json_parse under a meter.  A refused allocation kills the exec;
 * jansson's lexer carries on past a refused append, so a tree parsed
 * while the exec was killed is not trusted.  Returns the tree (charged
 * until meter_done) or NULL with err set. */
static json_t *metered_parse(metered *m, lua_State *L, const char *s, size_t n, sio_err *err) {
    meter_init(m, L);
    meter_on(m);
    json_t *v = sio_json_parse(s, n, err);
    if (v != NULL && m->ex != NULL && sio_exec_kill_reason(m->ex) != SIO_KILL_NONE) {
        json_decref(v);
        v = NULL;
    }
    meter_off(m);
    return v;
}

/* --- JSON to Lua ------------------------------------------------------------*/

static void push_value(lua_State *L, sio_exec *ex, const json_t *v) {
    luaL_checkstack(L, 3, "JSON nesting too deep");
    charge(L, ex, READ_COST, json_is_string(v) ? json_string_length(v) : 0);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *e;
        void *it;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_keylen_foreach_safe((json_t *)v, it, k, klen, e) {
            charge(L, ex, 0, klen);
            lua_pushlstring(L, k, klen);
            push_value(L, ex, e);
            lua_rawset(L, -3);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_value(L, ex, json_array_get(v, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
    case JSON_REAL: lua_pushnumber(L, (lua_Number)json_real_value(v)); break;
    case JSON_TRUE:
    case JSON_FALSE: lua_pushboolean(L, json_is_true(v)); break;
    case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
    }
}

void sio_lua_push_json(lua_State *L, const json_t *v) {
    push_value(L, sio_exec_of(L), v);
}

/* --- the text buffer --------------------------------------------------------*/

/* A text being written: a block from the state's allocator, owned by the
 * userdata, freed by its __gc (or text_free once copied out). */
typedef struct text {
    char *p;
    size_t len, cap;
} text;

static int text_free(lua_State *L) {
    text *t = luaL_checkudata(L, 1, TEXT_MT);
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    if (t->p != NULL) f(ud, t->p, t->cap, 0);
    t->p = NULL;
    t->len = t->cap = 0;
    return 0;
}

/* The state's one text (l_encode never runs Lua code while it writes, so
 * it is never written twice at once), anchored in the registry: its
 * buffer is kept between calls.  Pushes it, emptied. */
static const char scratch_key = 0;
static text *text_scratch(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &scratch_key) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        text *t = lua_newuserdatauv(L, sizeof *t, 0);
        memset(t, 0, sizeof *t);
        if (luaL_newmetatable(L, TEXT_MT)) {
            lua_pushcfunction(L, text_free);
            lua_setfield(L, -2, "__gc");
        }
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);
    }
    text *t = lua_touserdata(L, -1);
    t->len = 0;
    return t;
}

/* Pops the text on top of the stack; a buffer grown past what small
 * values need is freed now rather than kept. */
static void text_done(lua_State *L) {
    text *t = lua_touserdata(L, -1);
    if (t->cap > TEXT_KEEP) {
        lua_pushcfunction(L, text_free);
        lua_insert(L, -2);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
}

/* Makes room for n more bytes, doubling.  Growth the exec's memory limit
 * cannot take (after a full collection: garbage never kills) kills it, as
 * Lua's own allocations do, and raises the limit error; a refusal past
 * that (the whole state's cap) raises "not enough memory". */
static void text_grow(lua_State *L, sio_exec *ex, text *t, size_t n) {
    size_t cap = t->cap ? t->cap : 256;
    while (n > cap - t->len) {
        if (cap > ((size_t)-1) / 4) luaL_error(L, "JSON text too large");
        cap *= 2;
    }
    if (sio_exec_mem_room_on(ex, L, cap - t->cap) != 0) sio_exec_charge(L, 0);
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    char *p = f(ud, t->p, t->cap, cap);
    if (p == NULL) {
        lua_pushliteral(L, "not enough memory");
        lua_error(L);
    }
    t->p = p;
    t->cap = cap;
}

/* --- Lua to JSON ------------------------------------------------------------*/

/* One encoding: where it writes, who pays, and its error.  Text mode
 * writes to t; tree mode (m != NULL) adds each value to `parent` (under
 * `key` when it is an object) or, first, to *root. */
typedef struct enc {
    lua_State *L;
    sio_exec *ex;
    text *t;
    sio_json_out out;
    sio_err *err;
    int has_path; /* err->msg starts with the path of the failing value */
    metered *m;
    json_t **root;   /* in the holder userdata */
    json_t *parent;
    const char *key; /* borrowed from the Lua stack while the value is added */
    size_t klen;
} enc;

static int enc_write(void *ud, const char *s, size_t n) {
    enc *e = ud;
    if (n > e->t->cap - e->t->len) text_grow(e->L, e->ex, e->t, n);
    memcpy(e->t->p + e->t->len, s, n);
    e->t->len += n;
    return 0;
}

static void put(enc *e, const char *s, size_t n) {
    if (e->m == NULL) enc_write(e, s, n);
}

/* Tree mode: adds v (a new reference, may be NULL: a refused allocation)
 * where the walk is, under the meter.  Returns -1 with err set when v is
 * NULL or cannot be added. */
static int add(enc *e, json_t *v) {
    int rc = v == NULL ? -1
             : e->parent == NULL ? (*e->root = v, 0)
             : e->key != NULL ? json_object_setn_new_nocheck(e->parent, e->key, e->klen, v)
                              : json_array_append_new(e->parent, v);
    meter_off(e->m);
    if (rc != 0) sio_err_set(e->err, SIO_E_NOMEM, "out of memory building the JSON tree");
    return rc;
}

static int tree_holder_gc(lua_State *L) {
    json_t **root = lua_touserdata(L, 1);
    json_decref(*root);
    *root = NULL;
    return 0;
}

/* The state's one tree holder (sio_lua_to_json runs no Lua code while it
 * builds, so one conversion at a time), emptied of what a raise left. */
static const char holder_key = 0;
static json_t **tree_holder(lua_State *L) {
    json_t **root;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &holder_key) == LUA_TUSERDATA) {
        root = lua_touserdata(L, -1);
        lua_pop(L, 1);
        json_decref(*root); /* (not charged any more: its exec is gone or killed) */
        *root = NULL;
        return root;
    }
    lua_pop(L, 1);
    root = lua_newuserdatauv(L, sizeof *root, 0);
    *root = NULL;
    if (luaL_newmetatable(L, TREE_MT)) {
        lua_pushcfunction(L, tree_holder_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &holder_key);
    return root;
}

/* Puts seg in front of err's message as the error unwinds: the first
 * segment makes "seg: message", the next ones "seg.rest" / "seg[2]...". */
static void path_prepend(enc *e, const char *seg, size_t n) {
    char *m = e->err->msg;
    size_t mlen = strlen(m), sep = e->has_path ? (m[0] == '[' ? 0 : 1) : 2;
    if (n + sep + mlen >= sizeof e->err->msg) return;
    memmove(m + n + sep, m, mlen + 1);
    memcpy(m, seg, n);
    if (sep == 1) m[n] = '.';
    if (sep == 2) memcpy(m + n, ": ", 2);
    e->has_path = 1;
}

static void path_key(enc *e, const char *k, size_t klen) {
    char seg[PATH_SEG_MAX + 8];
    int n = snprintf(seg, sizeof seg, "%.*s%s", (int)(klen > PATH_SEG_MAX ? PATH_SEG_MAX : klen),
                     k, klen > PATH_SEG_MAX ? "..." : "");
    path_prepend(e, seg, strnlen(seg, (size_t)n));
}

static void path_index(enc *e, lua_Integer i) {
    char seg[32];
    int n = snprintf(seg, sizeof seg, "[%lld]", (long long)i);
    path_prepend(e, seg, (size_t)n);
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

/* Pushes s with each byte of an invalid UTF-8 sequence replaced by U+FFFD,
 * and each NUL byte too when key is set: the text a string key becomes.
 * (JSON allows "\u0000" in a key, but jansson - so sio_json_parse, so
 * anything of ours reading what the service wrote - refuses it; values
 * keep their NULs.) */
static void push_scrubbed(lua_State *L, const char *s, size_t n, int key) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n;) {
        size_t k = key && s[i] == '\0' ? 0 : sio_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) luaL_addstring(&b, "\xEF\xBF\xBD");
        else luaL_addlstring(&b, s + i, k);
        i += k ? k : 1;
    }
    luaL_pushresult(&b);
}

/* Whether table t has a value at the key on top of the stack. */
static int has_key(lua_State *L, int t) {
    lua_pushvalue(L, -1);
    int found = lua_rawget(L, t) != LUA_TNIL;
    lua_pop(L, 1);
    return found;
}

/* Pushes the text of the key below the value on top of the stack (a
 * string, or a number as tostring writes it) and returns it; NULL with err
 * set for other key types, or when another key of the table (at tidx) has
 * the same text: 1 and "1", or two strings that differ only in bytes that
 * are not UTF-8 (*seen, a table made below the key on the first such key,
 * remembers their texts). */
static const char *key_text(enc *e, int tidx, int *seen, size_t *len) {
    lua_State *L = e->L;
    int kt = lua_type(L, -2), clash = 0;
    if (kt == LUA_TSTRING) {
        const char *k = lua_tolstring(L, -2, len);
        if (sio_utf8_valid(k, *len) == *len && memchr(k, '\0', *len) == NULL) {
            lua_pushvalue(L, -2);
            return k;
        }
        if (*seen == 0) {
            lua_newtable(L);
            lua_insert(L, -3);
            *seen = lua_gettop(L) - 2;
        }
        push_scrubbed(L, k, *len, 1);
        clash = has_key(L, tidx) || has_key(L, *seen);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, *seen);
    } else if (kt == LUA_TNUMBER) {
        char num[64];
        if (lua_isinteger(L, -2)) {
            snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -2));
        } else {
            snprintf(num, sizeof num - 2, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, -2));
            if (num[strspn(num, "-0123456789")] == '\0') strcat(num, ".0"); /* as tostring */
        }
        lua_pushstring(L, num);
        clash = has_key(L, tidx);
    } else {
        sio_err_set(e->err, SIO_E_INVAL, "cannot use a %s as a JSON object key",
                    lua_typename(L, kt));
        return NULL;
    }
    const char *k = lua_tolstring(L, -1, len);
    if (clash) {
        sio_err_set(e->err, SIO_E_INVAL, "two keys of one table both encode as \"%s\"", k);
        return NULL;
    }
    return k;
}

static int enc_value(enc *e, int idx, int depth);

static int enc_array(enc *e, int idx, lua_Integer n, int depth) {
    lua_State *L = e->L;
    json_t *arr = NULL;
    if (e->m != NULL) {
        meter_on(e->m);
        if (add(e, arr = json_array()) != 0) return -1;
    }
    put(e, "[", 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) put(e, ",", 1);
        e->parent = arr;
        e->key = NULL;
        lua_rawgeti(L, idx, i);
        int rc = enc_value(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (rc != 0) {
            path_index(e, i);
            return -1;
        }
    }
    put(e, "]", 1);
    return 0;
}

static int enc_object(enc *e, int idx, int depth) {
    lua_State *L = e->L;
    int seen = 0, first = 1;
    json_t *obj = NULL;
    if (e->m != NULL) {
        meter_on(e->m);
        if (add(e, obj = json_object()) != 0) return -1;
    }
    put(e, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t klen;
        const char *k = key_text(e, idx, &seen, &klen); /* pushes the text */
        if (k == NULL) return -1;
        if (!first) put(e, ",", 1);
        first = 0;
        if (e->m == NULL) sio_json_write_string(&e->out, k, klen);
        put(e, ":", 1);
        e->parent = obj;
        e->key = k;
        e->klen = klen;
        if (enc_value(e, lua_gettop(L) - 1, depth + 1) != 0) {
            path_key(e, k, klen);
            return -1;
        }
        lua_pop(L, 2); /* the text and the value; the key stays for lua_next */
    }
    put(e, "}", 1);
    return 0;
}

static int enc_table(enc *e, int idx, int depth) {
    lua_State *L = e->L;
    int top = lua_gettop(L);
    if (depth >= SIO_LUAJSON_MAX_DEPTH || !lua_checkstack(L, 8)) {
        sio_err_set(e->err, SIO_E_INVAL, "cannot encode as JSON: nested deeper than %d levels "
                    "(a cycle?)", SIO_LUAJSON_MAX_DEPTH);
        return -1;
    }
    lua_Integer n = array_length(L, idx);
    charge(L, e->ex, (uint64_t)n, 0); /* array_length walked n keys */
    int rc = n > 0 ? enc_array(e, idx, n, depth) : enc_object(e, idx, depth);
    lua_settop(L, top);
    return rc;
}

/* Tree mode: adds the scalar at idx (checked by enc_value; s, len its
 * string, if any), a string with each byte of an invalid UTF-8 sequence
 * replaced as the text writer does. */
static int add_scalar(enc *e, int idx, const char *s, size_t len) {
    lua_State *L = e->L;
    int scrubbed = s != NULL && sio_utf8_valid(s, len) != len;
    if (scrubbed) {
        push_scrubbed(L, s, len, 0);
        s = lua_tolstring(L, -1, &len);
    }
    meter_on(e->m);
    json_t *v;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: v = json_boolean(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
        v = lua_isinteger(L, idx) ? json_integer((json_int_t)lua_tointeger(L, idx))
                                  : json_real((double)lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: v = json_stringn_nocheck(s, len); break;
    default: v = json_null(); break;
    }
    int rc = add(e, v);
    if (scrubbed) lua_pop(L, 1);
    return rc;
}

static int enc_value(enc *e, int idx, int depth) {
    lua_State *L = e->L;
    size_t len = 0;
    int t = lua_type(L, idx);
    const char *s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    charge(L, e->ex, WRITE_COST, len);
    if (t == LUA_TTABLE) return enc_table(e, idx, depth);
    if (t == LUA_TNUMBER && !lua_isinteger(L, idx) && !isfinite((double)lua_tonumber(L, idx))) {
        sio_err_set(e->err, SIO_E_INVAL, "cannot encode %s as JSON",
                    isnan((double)lua_tonumber(L, idx)) ? "NaN" : "an infinite number");
        return -1;
    }
    if (t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER && t != LUA_TSTRING &&
        !(t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL)) {
        sio_err_set(e->err, SIO_E_INVAL, "cannot encode a %s as JSON", luaL_typename(L, idx));
        return -1;
    }
    if (e->m != NULL) return add_scalar(e, idx, s, len);
    switch (t) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) put(e, "true", 4);
        else put(e, "false", 5);
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) sio_json_write_integer(&e->out, (long long)lua_tointeger(L, idx));
        else sio_json_write_real(&e->out, (double)lua_tonumber(L, idx));
        return 0;
    case LUA_TSTRING: sio_json_write_string(&e->out, s, len); return 0;
    default: put(e, "null", 4); return 0; /* nil, json.null */
    }
}

/* Writes the value at idx into a new text, pushed.  Returns it, or NULL
 * with err set (the value cannot be JSON).  Raises for limits and memory. */
static text *encode(lua_State *L, int idx, sio_err *err) {
    idx = lua_absindex(L, idx);
    enc e = {.L = L, .ex = sio_exec_of(L), .err = err};
    e.out = (sio_json_out){.write = enc_write, .ud = &e};
    sio_err_clear(err);
    e.t = text_scratch(L);
    return enc_value(&e, idx, 0) == 0 ? e.t : NULL;
}

json_t *sio_lua_to_json(lua_State *L, int idx, sio_err *err) {
    sio_err local;
    metered m;
    if (err == NULL) err = &local;
    sio_err_clear(err);
    idx = lua_absindex(L, idx);
    meter_init(&m, L);
    /* A scalar's node is made after the last call that can raise: no
     * holder needed. */
    json_t *scalar = NULL, **root = &scalar;
    if (lua_type(L, idx) == LUA_TTABLE) root = tree_holder(L);
    enc e = {.L = L, .ex = m.ex, .err = err, .m = &m, .root = root};
    json_t *v = NULL;
    if (enc_value(&e, idx, 0) == 0) {
        v = *root; /* now the caller's */
    } else {
        meter_on(&m); /* credits what was built */
        json_decref(*root);
        meter_off(&m);
    }
    *root = NULL;
    meter_done(&m);
    if (v == NULL) sio_exec_charge(L, 0); /* raises when killed */
    return v;
}

/* --- the Lua codec ----------------------------------------------------------*/

/* encode(value) -> text */
static int l_encode(lua_State *L) {
    sio_err err;
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    text *t = encode(L, 1, &err);
    if (t != NULL) lua_pushlstring(L, t->p, t->len);
    else lua_pushstring(L, err.msg);
    lua_insert(L, 2);
    text_done(L);
    return t != NULL ? 1 : lua_error(L);
}

/* pcall'd: pushes the Lua value of the tree [1] (light userdata). */
static int push_tree_cf(lua_State *L) {
    sio_lua_push_json(L, lua_touserdata(L, 1));
    return 1;
}

/* decode(text) -> value */
static int l_decode(lua_State *L) {
    sio_err err;
    metered m;
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    sio_exec_charge(L, 1 + len / SIO_BYTES_PER_INSTR); /* the parse; nothing held yet */
    json_t *v = metered_parse(&m, L, s, len, &err);
    if (v == NULL) {
        meter_done(&m);
        sio_exec_charge(L, 0); /* the limit error, when killed */
        lua_pushstring(L, err.msg);
        return lua_error(L);
    }
    lua_pushcfunction(L, push_tree_cf);
    lua_pushlightuserdata(L, v);
    int st = lua_pcall(L, 1, 1, 0);
    meter_on(&m); /* credits the tree's blocks as they are freed */
    json_decref(v);
    meter_off(&m);
    meter_done(&m);
    return st == LUA_OK ? 1 : lua_error(L);
}

int luaopen_sio_json(lua_State *L) {
    static const luaL_Reg fns[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
