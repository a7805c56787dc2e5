/* test_luahost.c - the sio.host module as the trusted engine uses it, and
 * the sandbox's pattern functions against Lua's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "luahost.h"
#include "asserts.h"
#include "sandbox.h"

typedef struct fx {
    sio_sandbox *sb;
    lua_State *L;
    char log[128 * 1024]; /* room for the longest line (64 KiB of fields) */
    size_t loglen;
    char out[4096];
} fx;

static void log_sink(void *ud, const char *line, size_t len) {
    fx *f = ud;
    if (f->loglen + len < sizeof f->log) {
        memcpy(f->log + f->loglen, line, len);
        f->loglen += len;
        f->log[f->loglen] = '\0';
    }
}

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sio_sandbox_cfg cfg = {.limits = {.instr_limit = 5000000}, .log = log_sink, .log_ud = f,
                           .preload = SIO_HOST_PRELOAD};
    f->sb = sio_sandbox_create(&cfg, NULL);
    assert_non_null(f->sb);
    f->L = sio_sandbox_state(f->sb);
    assert_int_equal(luaL_dostring(f->L, "host = require 'sio.host'"), LUA_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    sio_sandbox_destroy(f->sb);
    free(f);
    return 0;
}

/* Runs trusted chunk src on the main thread; its first result, tostring'ed,
 * goes to f->out ("error: ..." when it raised). */
static const char *trusted(fx *f, const char *src) {
    lua_State *L = f->L;
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        snprintf(f->out, sizeof f->out, "error: %s", luaL_tolstring(L, -1, NULL));
    else
        snprintf(f->out, sizeof f->out, "%s", luaL_tolstring(L, -1, NULL));
    lua_settop(L, 0);
    return f->out;
}

static void compile_names_and_errors(void **state) {
    fx *f = *state;
    assert_string_equal(trusted(f, "local fn, e = host.compile('x = = 1', '=flow.yaml') return e"),
                        "flow.yaml:1: unexpected symbol near '='");
    assert_contains(trusted(f, "local fn, e = host.compile('\\n\\nreturn +', '@lua/a.lua')"
                               " return e"),
                    "lua/a.lua:3:");
    assert_contains(trusted(f, "local fn, e = host.compile('return +', 'guard') return e"),
                    "guard:1:");
    assert_contains(trusted(f, "local fn, e = host.compile(string.dump(function() end)) return e"),
                    "attempt to load a binary chunk (mode is 't')");
    /* no env: the chunk sees no globals, never the trusted _G */
    assert_contains(trusted(f, "local fn = host.compile('return io', '=g') return select(2, pcall(fn))"),
                    "g:1: attempt to index a nil value (upvalue '_ENV')");
    /* the factory shape binds its own _ENV */
    assert_string_equal(trusted(f, "local fn = host.compile('local _ENV = ...; return function(A)"
                                   " return type(io) .. A.x end', '=guard')\n"
                                   "return fn(host.safe_env())({x = '!'})"),
                        "nil!");
    assert_string_equal(trusted(f, "local env = host.safe_env()\n"
                                   "local fn = host.compile('y = 3 return math.max(y, 2)', '=c', env)\n"
                                   "return fn() .. tostring(env.y) .. tostring(y)"),
                        "33nil");
    assert_contains(trusted(f, "return host.compile()"), "bad argument #1");
    assert_contains(f->out, "string expected, got no value");
}

static void safe_env_is_fresh_and_protected(void **state) {
    fx *f = *state;
    assert_string_equal(trusted(f, "local a, b = host.safe_env(), host.safe_env()\n"
                                   "a.x = 1\n"
                                   "return tostring(a ~= b) .. tostring(a._G == a)"
                                   " .. tostring(b.x) .. tostring(getmetatable(a))"
                                   " .. tostring(a.string == b.string) .. tostring(a.io)"),
                        "truetruenilfalsetruenil");
    assert_contains(trusted(f, "return select(2, pcall(setmetatable, host.safe_env(), {}))"),
                    "cannot change a protected metatable");
    assert_string_equal(trusted(f, "local env = host.safe_env({sio = {v = 1}, ['x.y'] = 'z'})\n"
                                   "local fn = host.compile('return require(\"sio\").v ..'"
                                   " .. ' require(\"x.y\")', '=c', env)\n"
                                   "return fn()"),
                        "1z");
}

/* host.safe_env runs once per command: it must stay cheap, i.e. never copy
 * the globals.  Asserted by shape, not by timing (performance belongs to
 * bench/): an env holds only what is bound to it (_G, its own require and
 * load) and reads everything else through one shared table of frozen
 * globals. */
static void safe_env_is_cheap(void **state) {
    fx *f = *state;
    assert_string_equal(trusted(f, "local a, b = host.safe_env(), host.safe_env()\n"
                                   "local keys = {} for k in next, a do keys[#keys + 1] = k end\n"
                                   "table.sort(keys)\n"
                                   "local ia = debug.getmetatable(a).__index\n"
                                   "local ib = debug.getmetatable(b).__index\n"
                                   "return table.concat(keys, ',') .. ' ' .. tostring(rawequal(ia, ib))\n"
                                   "  .. ' ' .. type(a.string)"),
                        "_G,load,require true table");
}

static void coroutines_inherit_the_exec(void **state) {
    fx *f = *state;
    lua_State *L = f->L;
    assert_int_equal(luaL_loadstring(L, "local c = host.coroutine_create(function()"
                                        "  while true do end end)\n"
                                        "local ok, e = coroutine.resume(c)\n" /* trusted resume */
                                        "local k = host.exec_killed()\n"
                                        "return ok, k.class, k.message, k.limit, e.message"),
                     LUA_OK);
    lua_State *co = lua_newthread(L);
    lua_rotate(L, -2, 1);
    lua_xmove(L, co, 1);
    sio_exec *ex = sio_exec_create(f->sb, NULL, NULL);
    assert_int_equal(sio_exec_bind(ex, co, NULL), 0);
    sio_exec_enter(ex);
    assert_int_equal(luaL_dostring(L, "return host.exec_killed()"), LUA_OK); /* entered */
    assert_false(lua_toboolean(L, -1));
    lua_pop(L, 1);
    int nres;
    /* the trusted code may finish the resume: the hook fires every 1000
     * instructions, so a few instructions after the kill still run */
    int st = lua_resume(co, L, 0, &nres);
    sio_exec_leave(ex);
    assert_int_equal(st, LUA_OK);
    assert_int_equal(nres, 5);
    assert_false(lua_toboolean(co, -5));
    assert_string_equal(lua_tostring(co, -4), "permanent");
    assert_string_equal(lua_tostring(co, -3), "instruction limit exceeded");
    assert_true(lua_toboolean(co, -2));
    assert_string_equal(lua_tostring(co, -1), "instruction limit exceeded");
    assert_int_equal(sio_exec_kill_reason(ex), SIO_KILL_INSTR);
    lua_pop(co, nres);
    /* sio_exec_push_error gives the same table */
    assert_int_equal(sio_exec_push_error(ex, L), 0);
    lua_getfield(L, -1, "message");
    assert_string_equal(lua_tostring(L, -1), "instruction limit exceeded");
    sio_exec_destroy(ex);
    lua_settop(L, 0);
    assert_string_equal(trusted(f, "return host.exec_killed()"), "false");
}

static void time_and_ids(void **state) {
    fx *f = *state;
    assert_string_equal(trusted(f, "local a = host.now() local b = host.now()\n"
                                   "return math.type(a) == 'float' and b >= a and a > 0"),
                        "true");
    double before = (double)time(NULL);
    double t = atof(trusted(f, "return string.format('%.3f', host.time())"));
    double after = (double)time(NULL);
    assert_true(t >= before && t < after + 1); /* wall clock, in seconds */
    assert_string_equal(trusted(f, "local seen = {}\n"
                                   "for i = 1, 10000 do\n"
                                   "  local u = host.uuid()\n"
                                   "  if seen[u] or not u:match('^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-"
                                   "[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$') then return u end\n"
                                   "  seen[u] = true\n"
                                   "end return 'unique'"),
                        "unique");
}

static void log_writes_json_lines(void **state) {
    fx *f = *state;
    f->loglen = 0;
    trusted(f, "host.log('warn', 'he said \"hi\"\\n', {n = 1, x = 1.5, ok = true,"
               " list = {1, 'two'}, sub = {a = {b = 'c'}}, fn = print, level = 'dropped',"
               " [3] = 'numeric key ignored'})");
    assert_contains(f->log, "{\"ts\":");
    assert_contains(f->log, "\"level\":\"warn\",\"msg\":\"he said \\\"hi\\\"\\n\"");
    assert_contains(f->log, "\"n\":1");
    assert_contains(f->log, "\"x\":1.5");
    assert_contains(f->log, "\"list\":[1,\"two\"]");
    assert_contains(f->log, "\"sub\":{\"a\":{\"b\":\"c\"}}");
    assert_contains(f->log, "\"fn\":\"<function>\"");
    assert_null(strstr(f->log, "dropped"));
    assert_int_equal(f->log[f->loglen - 1], '\n');
    assert_null(memchr(f->log, '\n', f->loglen - 1)); /* exactly one line */
    /* the line is valid JSON, read strictly */
    lua_State *L = f->L;
    lua_pushlstring(L, f->log, f->loglen - 1);
    lua_setglobal(L, "line");
    const char *r = trusted(f, "local v = require('sio.json').decode(line)\n"
                               "return v.level .. v.msg .. v.list[2] .. v.sub.a.b .. (v.ts:match('^%d+%-%d+%-%d+T[%d:.]+Z$') and 'iso' or v.ts)");
    assert_string_equal(r, "warnhe said \"hi\"\ntwociso");
    /* bytes that are not UTF-8 are written as U+FFFD, valid ones as they are */
    f->loglen = 0;
    trusted(f, "host.log('info', 'bad \\255 caf\\195\\169', {['k\\192'] = 'v\\237\\160\\128'})");
    assert_contains(f->log, "\"msg\":\"bad \xEF\xBF\xBD caf\xC3\xA9\"");
    assert_contains(f->log, "\"k\xEF\xBF\xBD\":\"v\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    /* a line stays whole and valid when its fields are too big for it */
    f->loglen = 0;
    trusted(f, "host.log('info', 'big', {a = string.rep('x', 40000), b = string.rep('y', 40000)})");
    assert_true(f->loglen < 64 * 1024 + 256);
    lua_pushlstring(L, f->log, f->loglen - 1);
    lua_setglobal(L, "line");
    /* which field keeps its text follows the table's order, not fixed */
    assert_string_equal(trusted(f, "local v, whole = require('sio.json').decode(line), 0\n"
                                   "for _, k in ipairs{'a', 'b'} do\n"
                                   "  if type(v[k]) == 'string' and #v[k] == 40000 then whole = whole + 1 end\n"
                                   "end return tostring(v.truncated) .. whole"),
                        "true1");
    /* cycles and depth are bounded */
    f->loglen = 0;
    trusted(f, "local t = {} t.t = t host.log('info', 'cycle', {t = t})");
    assert_contains(f->log, "\"<table>\"");
    assert_contains(trusted(f, "return select(2, pcall(host.log, 'info', 'm', 5))"),
                    "bad argument #3");
    assert_contains(f->out, "table or nil expected, got number");
}

static void needs_a_sandbox_state(void **state) {
    (void)state;
    lua_State *L = luaL_newstate();
    lua_pushcfunction(L, luaopen_sio_host);
    assert_int_not_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
    assert_contains(lua_tostring(L, -1), "not created by sio_sandbox_create");
    assert_null(sio_sandbox_of(L));
    lua_close(L);
}

/* The sandbox's find/match/gmatch/gsub must agree with Lua's own. */
static void patterns_match_lua(void **state) {
    fx *f = *state;
    const char *src =
        "local S = host.safe_env().string\n"
        "local cases = {\n"
        "  {'hello world', 'o w'}, {'hello world', 'l+'}, {'hello', '^h(.-)o$'},\n"
        "  {'  trim me  ', '^%s*(.-)%s*$'}, {'key = value', '(%w+)%s*=%s*(%w+)'},\n"
        "  {'THE (quick) fox', '%((%a+)%)'}, {'f(a(b)c)d', '%b()'}, {'abc', '()b()'},\n"
        "  {'THE quick', '%f[%a]%a+'}, {'abcabc', '(abc)%1'}, {'a.b', '%.'},\n"
        "  {'x=1, y=22', '%a=(%d+)'}, {'[x]', '[]x[]+'}, {'a-b', '[a%-]+'}, {'', ''},\n"
        "  {'abc', ''}, {'abc', 'b*'}, {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'ab$', 'b%$'},\n"
        "  {'a\\0b', '%z'}, {'a\\0b', '\\0'}, {'hello', 'l?l'}, {'Hi There', '%u%l+'},\n"
        "  {'caf\\195\\169', '[\\128-\\255]+'}, {'x', '[^%d]'}, {'12ab', '^[%x]+$'},\n"
        "  {'end', 'd$'}, {'a$b', 'a$b'}, {'one two  three', '%S+'}, {'a,b,,c', '([^,]*)'},\n"
        "}\n"
        "local bad = {'%', '[a', '(()', '%b', '%f', 'a)', '%1', '(a%2)'}\n"
        "local function pack(...) return select('#', ...), {...} end\n"
        "local function same(f1, f2, ...)\n"
        "  local n1, r1 = pack(pcall(f1, ...))\n"
        "  local n2, r2 = pack(pcall(f2, ...))\n"
        "  if n1 ~= n2 then return false end\n"
        "  for i = 1, n1 do\n"
        "    local a, b = r1[i], r2[i]\n"
        "    if i == 2 and not r1[1] then a = tostring(a):gsub('^.-: ', '') b = tostring(b):gsub('^.-: ', '') end\n"
        "    if a ~= b then return false, tostring(a) .. ' vs ' .. tostring(b) end\n"
        "  end\n"
        "  return true\n"
        "end\n"
        "local function gm(fn, s, p, i) local t = {} for a, b in fn(s, p, i) do t[#t+1] = tostring(a) .. '/' .. tostring(b) end return table.concat(t, ';') end\n"
        "local function check(s, p)\n"
        "  for _, init in ipairs({1, 2, -2, 0, 100, -100}) do\n"
        "    for _, fn in ipairs({'find', 'match'}) do\n"
        "      local ok, why = same(string[fn], S[fn], s, p, init)\n"
        "      if not ok then return fn .. '(' .. s .. ', ' .. p .. ', ' .. init .. ') ' .. tostring(why) end\n"
        "    end\n"
        "    local ok, why = same(function(...) return gm(string.gmatch, ...) end, function(...) return gm(S.gmatch, ...) end, s, p, init)\n"
        "    if not ok then return 'gmatch(' .. s .. ', ' .. p .. ') ' .. tostring(why) end\n"
        "  end\n"
        "  for _, r in ipairs({'<%0>', '%1-%1', '%%', 'x', {hello = 'HI', l = false}, function(a, b) return b and a .. b or a:upper() end, '%2'}) do\n"
        "    for _, max in ipairs({nil, 1, 0}) do\n"
        "      local ok, why = same(string.gsub, S.gsub, s, p, r, max)\n"
        "      if not ok then return 'gsub(' .. s .. ', ' .. p .. ', ' .. tostring(r) .. ') ' .. tostring(why) end\n"
        "    end\n"
        "  end\n"
        "  local ok, why = same(string.find, S.find, s, p, 1, true)\n"
        "  if not ok then return 'plain find(' .. s .. ', ' .. p .. ') ' .. tostring(why) end\n"
        "end\n"
        "for _, c in ipairs(cases) do local e = check(c[1], c[2]) if e then return string.format('%q', e) end end\n"
        "for _, p in ipairs(bad) do local e = check('abc(d)', p) if e then return string.format('%q', e) end end\n"
        "return 'same'\n";
    assert_string_equal(trusted(f, src), "same");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(compile_names_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(safe_env_is_fresh_and_protected, setup, teardown),
        cmocka_unit_test_setup_teardown(safe_env_is_cheap, setup, teardown),
        cmocka_unit_test_setup_teardown(coroutines_inherit_the_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(time_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(log_writes_json_lines, setup, teardown),
        cmocka_unit_test(needs_a_sandbox_state),
        cmocka_unit_test_setup_teardown(patterns_match_lua, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
