/*
 * sandbox_log.c - the sandbox's log lines: host.log and print write one JSON
 * line each (fields read from Lua values with raw access, so no user
 * metamethod runs), through the sink the sandbox was created with.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "sandbox_int.h"

#define LOG_MAX_LINE (64 * 1024)
#define LOG_MAX_DEPTH 8

/* Default sink: one write(2) per line, so lines from several workers do not
 * interleave (below PIPE_BUF). */
void sio_sandbox_log_stderr(void *ud, const char *line, size_t len) {
    (void)ud;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        line += n;
        len -= (size_t)n;
    }
}

void sio_sandbox_log_line(sio_sandbox *sb, const char *line, size_t len) {
    sb->log(sb->log_ud, line, len);
}

/* --- lines built from Lua values ------------------------------------------*/

/* A malloc'd line under construction.  Only Lua API calls that cannot
 * raise are made while it is alive, so it never leaks. */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    int full; /* LOG_MAX_LINE reached: further output dropped */
} jbuf;

static void jput(jbuf *j, const char *s, size_t n) {
    if (j->full || j->len + n + 2 > LOG_MAX_LINE) {
        j->full = 1;
        return;
    }
    if (j->len + n + 2 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 2) cap *= 2;
        char *q = realloc(j->p, cap);
        if (q == NULL) {
            j->full = 1;
            return;
        }
        j->p = q;
        j->cap = cap;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
}

static void jlit(jbuf *j, const char *s) { jput(j, s, strlen(s)); }

static int jwrite(void *ud, const char *s, size_t n) {
    jput(ud, s, n);
    return 0;
}

/* A JSON string by json.h's rules (valid UTF-8 whatever the bytes). */
static void jstr(jbuf *j, const char *s, size_t n) {
    sio_json_out o = {.write = jwrite, .ud = j};
    sio_json_write_string(&o, s, n);
}

static void jvalue(jbuf *j, lua_State *L, int idx, int depth);

/* A table: an array when t[1] is present, else an object of its string
 * and number keys.  Raw access only: no user metamethod runs here. */
static void jtable(jbuf *j, lua_State *L, int idx, int depth) {
    if (depth >= LOG_MAX_DEPTH || !lua_checkstack(L, 3)) {
        jlit(j, "\"<table>\"");
        return;
    }
    size_t n = lua_rawlen(L, idx);
    if (n > 0) {
        jput(j, "[", 1);
        for (size_t i = 1; i <= n && !j->full; i++) {
            if (i > 1) jput(j, ",", 1);
            lua_rawgeti(L, idx, (lua_Integer)i);
            jvalue(j, L, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        jput(j, "]", 1);
        return;
    }
    int first = 1;
    jput(j, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (!first) jput(j, ",", 1);
            first = 0;
            jstr(j, k, kl);
            jput(j, ":", 1);
            jvalue(j, L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
    jput(j, "}", 1);
}

static void jnumber(jbuf *j, lua_State *L, int idx) {
    sio_json_out o = {.write = jwrite, .ud = j};
    double d = (double)lua_tonumber(L, idx);
    if (lua_isinteger(L, idx)) sio_json_write_integer(&o, (long long)lua_tointeger(L, idx));
    else if (isfinite(d)) sio_json_write_real(&o, d);
    else jlit(j, "null");
}

static void jvalue(jbuf *j, lua_State *L, int idx, int depth) {
    size_t n;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: jlit(j, "null"); break;
    case LUA_TBOOLEAN: jlit(j, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER: jnumber(j, L, idx); break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        jstr(j, s, n);
        break;
    case LUA_TTABLE: jtable(j, L, idx, depth); break;
    default:
        jput(j, "\"<", 2);
        jlit(j, lua_typename(L, lua_type(L, idx)));
        jput(j, ">\"", 2);
    }
}

/* Appends the fields table's string keys, skipping ts/level/msg. */
static void jfields(jbuf *j, lua_State *L, int idx) {
    if (!lua_checkstack(L, 3)) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (strcmp(k, "ts") != 0 && strcmp(k, "level") != 0 && strcmp(k, "msg") != 0) {
                jput(j, ",", 1);
                jstr(j, k, kl);
                jput(j, ":", 1);
                jvalue(j, L, lua_gettop(L), 1);
            }
        }
        lua_pop(L, 1);
    }
}

void sio_sandbox_log(lua_State *L, const char *level, const char *msg, size_t msglen,
                  int fields_idx) {
    jbuf j = {0};
    char ts[64], when[40];
    snprintf(ts, sizeof ts, "{\"ts\":\"%s\",\"level\":", sio_log_timestamp(when, sizeof when));
    jlit(&j, ts);
    jstr(&j, level, strlen(level));
    jlit(&j, ",\"msg\":");
    jstr(&j, msg, msglen);
    if (fields_idx != 0) jfields(&j, L, lua_absindex(L, fields_idx));
    if (j.p == NULL) return; /* out of memory: the line is dropped */
    /* the closing brace always fits: jput keeps 2 bytes spare */
    memcpy(j.p + j.len, "}\n", 2);
    sio_sandbox_log_line(sio_sandbox_of(L), j.p, j.len + 2);
    free(j.p);
}
