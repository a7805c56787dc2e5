/* test_sandbox.c - the Lua sandbox: escapes, frozen libraries, require,
 * and per-execution limits, driven through the public C API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "asserts.h"
#include "luahost.h"
#include "sandbox.h"

typedef struct fx {
    sio_sandbox *sb;
    lua_State *L;
    char log[16384];
    size_t loglen;
    char out[2048];     /* description of the last run */
    uint64_t instr;     /* counters of the last run */
    uint64_t limited_instr; /* instructions of the last limited() run */
    size_t peak;
    char dir[64];       /* temp lua_dir, when used */
} fx;

/* Trusted helpers in the state's real _G. */
static const char *harness =
    "host = require 'sio.host'\n"
    "function make(src, preload)\n"
    "  local env = host.safe_env(preload)\n"
    "  local fn, err = host.compile(src, '=user', env)\n"
    "  if not fn then error('compile: ' .. err, 0) end\n"
    "  return coroutine.create(fn)\n"
    "end\n"
    "function describe(ok, v)\n"
    "  if ok then return 'ok:' .. tostring(v) end\n"
    "  if type(v) == 'table' then\n"
    "    return 'err:' .. tostring(v.class) .. ':' .. tostring(v.message)\n"
    "      .. (v.limit and ':limit' or '')\n"
    "  end\n"
    "  return 'err:' .. tostring(v)\n"
    "end\n";

static void log_sink(void *ud, const char *line, size_t len) {
    fx *f = ud;
    if (f->loglen + len < sizeof f->log) {
        memcpy(f->log + f->loglen, line, len);
        f->loglen += len;
        f->log[f->loglen] = '\0';
    }
}

static fx *fx_new(const char *lua_dir) {
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    sio_sandbox_cfg cfg = {.lua_dir = lua_dir,
                           .limits = {.mem_limit_bytes = 8u << 20, .instr_limit = 5000000},
                           .log = log_sink,
                           .log_ud = f,
                           .preload = SIO_HOST_PRELOAD};
    sio_err err;
    f->sb = sio_sandbox_create(&cfg, &err);
    if (f->sb == NULL) fail_msg("create: %s", err.msg);
    f->L = sio_sandbox_state(f->sb);
    if (luaL_dostring(f->L, harness) != LUA_OK) fail_msg("%s", lua_tostring(f->L, -1));
    return f;
}

static int setup(void **state) {
    *state = fx_new(NULL);
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    sio_sandbox_destroy(f->sb);
    free(f);
    return 0;
}

/* Runs src as one command: fresh env (preload: a Lua expression evaluated
 * in trusted code, or NULL), a new exec with lim (NULL = defaults).  Fills
 * f->out with "ok:<first result>" or "err:<class>:<message>[:limit]" /
 * "err:<message>", and returns the exec's kill reason. */
static sio_kill run_with(fx *f, const char *src, const char *preload, const sio_limits *lim) {
    lua_State *L = f->L;
    int top = lua_gettop(L);
    lua_getglobal(L, "make");
    lua_pushstring(L, src);
    if (preload == NULL) {
        lua_pushnil(L);
    } else if (luaL_loadstring(L, preload) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fail_msg("preload: %s", lua_tostring(L, -1));
    }
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        snprintf(f->out, sizeof f->out, "%s", lua_tostring(L, -1));
        lua_settop(L, top);
        return SIO_KILL_NONE;
    }
    lua_State *co = lua_tothread(L, -1);
    sio_err err;
    sio_exec *ex = sio_exec_create(f->sb, lim, &err);
    assert_non_null(ex);
    assert_int_equal(sio_exec_bind(ex, co, &err), 0);
    int nres = 0;
    int st = sio_exec_resume(ex, co, L, 0, &nres);
    lua_getglobal(L, "describe");
    lua_pushboolean(L, st == LUA_OK);
    if (st == LUA_OK && nres > 0) {
        lua_xmove(co, L, nres);
        lua_settop(L, top + 4); /* make, co, describe, ok, first result */
    } else if (st != LUA_OK) {
        lua_xmove(co, L, 1);
    }
    if (lua_pcall(L, lua_gettop(L) - top - 2, 1, 0) != LUA_OK)
        fail_msg("describe: %s", lua_tostring(L, -1));
    snprintf(f->out, sizeof f->out, "%s", lua_tostring(L, -1));
    sio_kill k = sio_exec_kill_reason(ex);
    f->instr = sio_exec_instructions(ex);
    f->peak = sio_exec_mem_peak(ex);
    sio_exec_destroy(ex);
    lua_settop(L, top);
    return k;
}

static sio_kill run(fx *f, const char *src) { return run_with(f, src, NULL, NULL); }

/* The state keeps working after whatever the previous run did. */
static void still_fine(fx *f) {
    assert_int_equal(run(f, "local t = {} for i = 1, 100 do t[i] = i end return #t"), SIO_KILL_NONE);
    assert_string_equal(f->out, "ok:100");
}

/* src must fail (not by a limit) with a message containing want. */
static void refused(fx *f, const char *src, const char *want) {
    assert_int_equal(run(f, src), SIO_KILL_NONE);
    if (strncmp(f->out, "err:", 4) != 0) fail_msg("'%s' was not refused: %s", src, f->out);
    assert_contains(f->out, want);
    still_fine(f);
}

/* src (with preload, see run_with) must end with the limit error for
 * kill k. */
static void limited_pre(fx *f, const char *src, const char *preload, sio_kill k,
                        const sio_limits *lim) {
    sio_kill got = run_with(f, src, preload, lim);
    if (got != k) fail_msg("'%s': kill %d, want %d (%s)", src, got, k, f->out);
    char want[128];
    snprintf(want, sizeof want, "err:permanent:%s:limit", sio_kill_message(k));
    assert_string_equal(f->out, want);
    f->limited_instr = f->instr;
    still_fine(f);
}

static void limited(fx *f, const char *src, sio_kill k, const sio_limits *lim) {
    limited_pre(f, src, NULL, k, lim);
}

/* --- escapes --------------------------------------------------------------*/

static void escapes_fail_cleanly(void **state) {
    fx *f = *state;
    refused(f, "os.execute('true')", "field 'execute'");
    refused(f, "os.exit(1)", "field 'exit'");
    refused(f, "os.getenv('HOME')", "field 'getenv'");
    refused(f, "io.open('/etc/passwd')", "global 'io'");
    refused(f, "debug.getregistry()", "global 'debug'");
    refused(f, "package.loadlib('libc.so.6', 'system')", "global 'package'");
    refused(f, "dofile('/etc/passwd')", "global 'dofile'");
    refused(f, "loadfile('/etc/passwd')", "global 'loadfile'");
    refused(f, "collectgarbage('stop')", "global 'collectgarbage'");
    refused(f, "string.dump(function() end)", "field 'dump'");
    refused(f, "return (''):dump()", "method 'dump'");
    refused(f, "return getmetatable('').__index", "attempt to index a boolean value");
    refused(f, "setmetatable(_G, nil)", "cannot change a protected metatable");
    refused(f, "setmetatable(string, {})", "cannot change a protected metatable");
    assert_int_equal(run(f, "return tostring(getmetatable('')) .. tostring(getmetatable(_G))"
                            " .. tostring(getmetatable(string))"),
                     SIO_KILL_NONE);
    assert_string_equal(f->out, "ok:falsefalsefalse");
    assert_int_equal(run(f, "return rawequal(_G, _ENV) and type(_G.string.format)"), SIO_KILL_NONE);
    assert_string_equal(f->out, "ok:function");
}

static void binary_chunks_refused(void **state) {
    fx *f = *state;
    const char *bin = "return { bin = string.dump(function() return 'pwned' end) }";
    run_with(f, "local f, e = load(require 'bin') return tostring(f) .. '|' .. e", bin, NULL);
    assert_contains(f->out, "ok:nil|");
    assert_contains(f->out, "attempt to load a binary chunk (mode is 't')");
    run_with(f, "local f, e = load(require 'bin', 'x', 'b') return tostring(f) .. '|' .. e", bin,
             NULL);
    assert_contains(f->out, "attempt to load a binary chunk");
    still_fine(f);
    /* text chunks load, bound to the calling env unless one is given */
    run(f, "x = 5; return load('x = x + 1; return x')()");
    assert_string_equal(f->out, "ok:6");
    run(f, "return load('return y', 'c', 't', {y = 7})()");
    assert_string_equal(f->out, "ok:7");
    run(f, "local f, e = load('return +') return e");
    assert_contains(f->out, "unexpected symbol");
}

static void require_refuses_system_modules(void **state) {
    fx *f = *state;
    refused(f, "require 'os'", "module 'os' not found");
    refused(f, "require 'io'", "module 'io' not found");
    refused(f, "require 'cjson'", "module 'cjson' not found");
    refused(f, "require 'debug'", "module 'debug' not found");
    refused(f, "require '../etc/passwd'", "invalid module name '../etc/passwd'");
    refused(f, "require '/etc/passwd'", "invalid module name");
    refused(f, "require 'a..b'", "invalid module name");
    refused(f, "require 'sio.host'", "module 'sio.host' is internal to the engine");
    refused(f, "require 'sio'", "module 'sio' is internal to the engine");
    /* the engine's user-visible sio module comes through preload */
    run_with(f, "return require('sio').name", "return { sio = { name = 'api' } }", NULL);
    assert_string_equal(f->out, "ok:api");
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void require_resolves_lua_dir(void **state) {
    (void)state;
    char dir[] = "/tmp/sio_sandbox_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/pkg", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(dir, "counter.lua", "loads = (loads or 0) + 1\nreturn { n = loads }\n");
    write_file(dir, "pkg/init.lua", "return { name = ..., io = type(io) }\n");
    write_file(dir, "pkg/sub.lua", "local x = \nreturn x +\n");
    write_file(dir, "bad.lua", "error('boom')\n");
    char link[128];
    snprintf(link, sizeof link, "%s/passwd.lua", dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);

    fx *f = fx_new(dir);
    /* cached per env: two requires, one load */
    run(f, "local a = require 'counter'; local b = require 'counter'\n"
           "return tostring(a == b) .. loads");
    assert_string_equal(f->out, "ok:true1");
    run(f, "return require('counter').n .. tostring(loads)"); /* fresh env: fresh instance */
    assert_string_equal(f->out, "ok:11");
    run(f, "local m = require 'pkg' return m.name .. ':' .. m.io");
    assert_string_equal(f->out, "ok:pkg:nil");
    refused(f, "require 'pkg.sub'", "pkg/sub.lua:2: unexpected symbol near 'return'");
    refused(f, "require 'bad'", "bad.lua:1: boom");
    refused(f, "require 'passwd'", "module 'passwd' not found");
    refused(f, "require 'nope'", "module 'nope' not found");
    teardown((void **)&f);

    unlink(link);
    char path[160];
    const char *files[] = {"counter.lua", "pkg/init.lua", "pkg/sub.lua", "bad.lua"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(sub);
    rmdir(dir);
}

/* --- frozen libraries and isolation ---------------------------------------*/

static void shared_tables_are_read_only(void **state) {
    fx *f = *state;
    refused(f, "string.upper = nil", "attempt to modify read-only table 'string' (key 'upper')");
    refused(f, "string.evil = print", "read-only table 'string'");
    refused(f, "table.insert = print", "read-only table 'table'");
    refused(f, "math.pi = 3", "read-only table 'math'");
    refused(f, "os.time = nil", "read-only table 'os'");
    refused(f, "coroutine.create = nil", "read-only table 'coroutine'");
    refused(f, "utf8.char = nil", "read-only table 'utf8'");
    refused(f, "rawset(string, 'upper', print)", "attempt to modify read-only table");
    refused(f, "rawset(math, 'x', 1)", "attempt to modify read-only table");
    refused(f, "local mt = getmetatable('') mt.__index = {}", "attempt to index a boolean value");
    /* nothing leaked into the next command */
    run(f, "return type(string.upper) .. type(rawget(string, 'evil')) .. math.pi");
    assert_contains(f->out, "ok:functionnil3.14159");
    run(f, "return ('abc'):upper()");
    assert_string_equal(f->out, "ok:ABC");
    /* but they can still be read and iterated */
    run(f, "local n, dump = 0, false\n"
           "for k, v in pairs(string) do n = n + 1; dump = dump or k == 'dump' end\n"
           "return n > 10 and not dump and next(string) ~= nil\n"
           "  and type(rawget(string, 'format')) == 'function' and rawlen(string) == 0");
    assert_string_equal(f->out, "ok:true");
    /* own tables: rawset works */
    run(f, "local t = {} rawset(t, 'a', 1) return t.a");
    assert_string_equal(f->out, "ok:1");
}

static void globals_do_not_leak(void **state) {
    fx *f = *state;
    run(f, "x = 42; print = nil; string = nil; _G.y = 1; return x");
    assert_string_equal(f->out, "ok:42");
    run(f, "return tostring(x) .. tostring(y) .. type(print) .. type(string)");
    assert_string_equal(f->out, "ok:nilnilfunctiontable");
}

static void gc_metamethods_refused(void **state) {
    fx *f = *state;
    refused(f, "setmetatable({}, {__gc = function() end})", "__gc metamethods are not allowed");
    refused(f, "setmetatable({}, {__gc = false})", "__gc metamethods are not allowed");
    run(f, "local t = setmetatable({}, {__index = function() return 1 end}) return t.x");
    assert_string_equal(f->out, "ok:1");
}

static void print_goes_to_host_log(void **state) {
    fx *f = *state;
    f->loglen = 0;
    run(f, "print('hello', 1, nil, true)");
    assert_string_equal(f->out, "ok:nil");
    assert_contains(f->log, "\"level\":\"info\",\"msg\":\"hello\\t1\\tnil\\ttrue\"}\n");
}

/* --- limits ---------------------------------------------------------------*/

static void infinite_loops_are_killed(void **state) {
    fx *f = *state;
    limited(f, "while true do end", SIO_KILL_INSTR, NULL);
    assert_true(f->limited_instr >= 5000000 && f->limited_instr < 5100000);
    limited(f, "for i = 1, 10 do pcall(function() while true do end end) end return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "while true do pcall(error, 'x') end", SIO_KILL_INSTR, NULL);
    limited(f, "xpcall(function() while true do end end, function(e) return e end)"
               " return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "local co = coroutine.create(function() while true do end end)\n"
               "local ok, e = coroutine.resume(co) return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "pcall(coroutine.wrap(function() while true do end end)) return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "local co = coroutine.wrap(function()\n"
               "  local inner = coroutine.create(function() while true do end end)\n"
               "  coroutine.resume(inner) end)\n"
               "pcall(co) return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "local f, e = load(function() while true do end end) return 'escaped'",
            SIO_KILL_INSTR, NULL);
    limited(f, "local ok = pcall(require, 'x') while true do end", SIO_KILL_INSTR, NULL);
}

/* Code Lua runs while unwinding a limit error: xpcall's message handler
 * (called inside the count hook, where hooks are off) and __close
 * handlers.  Each must end with the limit error, not spin.  The alarm
 * only turns a regression (a hang) into a failure instead of a ctest
 * timeout; a passing run takes a fraction of a second. */
static void limits_hold_while_unwinding(void **state) {
    fx *f = *state;
    sio_limits small = {.instr_limit = 2000000}; /* the count is not the point */
    alarm(120);
    limited(f, "xpcall(function() while true do end end, function(m) while true do end end)"
               " return 'escaped'",
            SIO_KILL_INSTR, &small);
    limited(f, "xpcall(error, function(m) while true do end end, 'x') return 'escaped'",
            SIO_KILL_INSTR, &small);
    limited(f, "xpcall(function() while true do end end, function(m)\n"
               "  return xpcall(function() while true do end end, function() while true do end end)\n"
               "end) return 'escaped'",
            SIO_KILL_INSTR, &small);
    limited(f, "local spin = setmetatable({}, {__close = function() while true do end end})\n"
               "pcall(function() local x <close> = spin while true do end end) return 'escaped'",
            SIO_KILL_INSTR, &small);
    limited(f, "local spin = setmetatable({}, {__close = function() while true do end end})\n"
               "local co = coroutine.wrap(function() local x <close> = spin while true do end end)\n"
               "pcall(co) return 'escaped'",
            SIO_KILL_INSTR, &small);
    limited(f, "local spin = setmetatable({}, {__close = function() while true do end end})\n"
               "local co = coroutine.create(function() local x <close> = spin\n"
               "  coroutine.yield() end)\n"
               "coroutine.resume(co) pcall(coroutine.close, co) while true do end",
            SIO_KILL_INSTR, &small);
    limited(f, "local spin = setmetatable({}, {__close = function() while true do end end})\n"
               "local x <close> = spin while true do end",
            SIO_KILL_INSTR, &small);
    /* a handler still runs for ordinary errors */
    run(f, "return select(2, xpcall(error, function(m) return 'handled ' .. m end, 'x'))");
    assert_string_equal(f->out, "ok:handled x");
    alarm(0);
}

static void deadline_is_enforced(void **state) {
    fx *f = *state;
    sio_limits lim = {.instr_limit = UINT64_MAX, .deadline_ms = 50};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    limited(f, "while true do end", SIO_KILL_DEADLINE, &lim);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    assert_true(ms >= 50); /* not before it; how soon after depends on the machine */
}

static void memory_bombs_are_killed(void **state) {
    fx *f = *state;
    limited(f, "return #string.rep('x', 1e8)", SIO_KILL_MEMORY, NULL);
    limited(f, "return #string.rep('x', 2^30)", SIO_KILL_MEMORY, NULL);
    refused(f, "return #string.rep('x', 2^40)", "resulting string too large");
    limited(f, "pcall(string.rep, 'x', 1e8) return 'escaped'", SIO_KILL_MEMORY, NULL);
    limited(f, "local s = 'x' while true do s = s .. s end", SIO_KILL_MEMORY, NULL);
    limited(f, "local t = {} for i = 1, 1e9 do t[i] = i end", SIO_KILL_MEMORY, NULL);
    limited(f, "local t = {} for i = 1, 1e9 do t[#t + 1] = {i} end", SIO_KILL_MEMORY, NULL);
    limited(f, "local t = {} for i = 1, 1e9 do t['k' .. i] = true end", SIO_KILL_MEMORY, NULL);
    limited(f, "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end",
            SIO_KILL_MEMORY, NULL);
    assert_true(f->peak <= (8u << 20) + (64u << 10));
    /* quadratic copying is work, charged by the bytes it allocates */
    limited(f, "local s = '' for i = 1, 1e9 do s = s .. 'x' end", SIO_KILL_INSTR, NULL);
    /* garbage alone never kills: 200 MB of churn under an 8 MiB limit (and
     * the instructions its copying costs) */
    sio_limits churn = {.instr_limit = 100000000};
    run_with(f, "local n = 0 for i = 1, 200 do local s = ('x'):rep(1e6) n = n + #s end return n",
             NULL, &churn);
    assert_string_equal(f->out, "ok:200000000");
}

/* --- JSON work (issue 9.4) -------------------------------------------------*/

/* User code gets the codec as require 'json'. */
static const char *const with_json = "return {json = require 'sio.json'}";

/* A table of 10 references nested 9 deep: 10^9 values once written out. */
#define FANOUT                                                                   \
    "local json = require 'json'\n"                                              \
    "local t = {'x'} for d = 1, 9 do local n = {} for i = 1, 10 do n[i] = t end t = n end\n"

/* Converting is charged as it goes: shared references cost what they
 * expand to, and the tree and the text count against the memory limit.
 * (The alarm turns a regression - an endless conversion - into a
 * failure.) */
static void json_work_is_charged(void **state) {
    fx *f = *state;
    alarm(120);
    limited_pre(f, FANOUT "return #json.encode(t)", with_json, SIO_KILL_INSTR, NULL);
    limited_pre(f, FANOUT "pcall(json.encode, t) return 'escaped'", with_json, SIO_KILL_INSTR,
                NULL);
    /* with instructions unlimited, the text meets the memory limit */
    sio_limits roomy = {.mem_limit_bytes = 2u << 20, .instr_limit = UINT64_MAX,
                        .deadline_ms = 600000};
    limited_pre(f, FANOUT "return #json.encode(t)", with_json, SIO_KILL_MEMORY, &roomy);
    assert_true(f->peak <= (2u << 20) + (64u << 10));
    /* 100 KB referenced 60 times: a 6 MB text, and the string made of it,
     * do not fit in 8 MB; 20 times does */
    limited_pre(f, "local json = require 'json'\n"
                   "local s, t = ('x'):rep(1e5), {} for i = 1, 60 do t[i] = s end\n"
                   "return #json.encode(t)",
                with_json, SIO_KILL_MEMORY, NULL);
    run_with(f, "local json = require 'json'\n"
                "local s, t = ('x'):rep(1e5), {} for i = 1, 20 do t[i] = s end\n"
                "return #json.encode(t)",
             with_json, NULL);
    assert_string_equal(f->out, "ok:2000061");
    /* decoding: the parsed tree counts as well as the Lua values */
    limited_pre(f, "local json = require 'json'\n"
                   "return #json.decode('[' .. ('0,'):rep(1e6) .. '0]')",
                with_json, SIO_KILL_MEMORY, NULL);
    limited_pre(f, "local json = require 'json'\n"
                   "local s = json.encode(('x'):rep(2e6))\n"
                   "local t = {} for i = 1, 1e9 do t[i] = json.decode(s) end",
                with_json, SIO_KILL_MEMORY, NULL);
    alarm(0);
}

/* Runs src with instruction limits, then memory limits, from a twelfth
 * of what it needs up to all of it: the limit strikes in every phase of a
 * conversion (building the tree, writing or parsing the text, building the
 * Lua values).  Each run ends with that limit's error or succeeds, the
 * state stays usable, and LeakSanitizer (at exit) sees nothing left over. */
static void sweep_limits(fx *f, const char *src, const char *want) {
    assert_int_equal(run_with(f, src, with_json, NULL), SIO_KILL_NONE);
    assert_string_equal(f->out, want);
    uint64_t instr = f->instr;
    size_t peak = f->peak;
    for (int i = 1; i < 12; i++) {
        sio_limits l = {.instr_limit = instr * (uint64_t)i / 12};
        sio_kill k = run_with(f, src, with_json, &l);
        if (k != SIO_KILL_INSTR && strcmp(f->out, want) != 0)
            fail_msg("instr limit %llu: %s", (unsigned long long)l.instr_limit, f->out);
    }
    for (int i = 1; i < 12; i++) {
        sio_limits l = {.mem_limit_bytes = peak * (size_t)i / 12};
        sio_kill k = run_with(f, src, with_json, &l);
        if (k != SIO_KILL_MEMORY && strcmp(f->out, want) != 0)
            fail_msg("memory limit %zu: %s", l.mem_limit_bytes, f->out);
        if (k == SIO_KILL_MEMORY) assert_true(f->peak <= l.mem_limit_bytes + (64u << 10));
    }
    still_fine(f);
}

static void json_limits_leave_nothing_behind(void **state) {
    fx *f = *state;
    sweep_limits(f, "local json = require 'json'\n"
                    "local t = {} for i = 1, 3000 do t[i] = {id = i, s = ('n'):rep(i % 300)} end\n"
                    "return #json.encode(t)",
                 "ok:504394");
    sweep_limits(f, "local json = require 'json'\n"
                    "local s = '[' .. ('{\"id\":1,\"s\":\"' .. ('n'):rep(200) .. '\"},'):rep(3000)"
                    " .. '0]'\n"
                    "return #json.decode(s)",
                 "ok:3001");
}

static void deep_recursion_is_an_error(void **state) {
    fx *f = *state;
    sio_limits big = {.mem_limit_bytes = 256u << 20, .instr_limit = 100000000};
    run_with(f, "local function r(n) return 1 + r(n + 1) end return r(1)", NULL, &big);
    assert_contains(f->out, "stack overflow");
    still_fine(f);
    /* with the default 8 MiB it is the memory limit that stops it */
    limited(f, "local function r(n) return 1 + r(n + 1) end return r(1)", SIO_KILL_MEMORY, NULL);
    refused(f, "local function f() return coroutine.wrap(f)() end return f()", "stack overflow");
    refused(f, "local function f() local co = coroutine.create(f)\n"
               "  local ok, e = coroutine.resume(co) error(e, 0) end return f()",
            "stack overflow");
    refused(f, "local t = setmetatable({}, {__index = function(t, k) return t[k] end})"
               " return t.x",
            "stack overflow");
    refused(f, "local function f() local ok, e = pcall(f) error(e, 0) end f()", "stack overflow");
    refused(f, "local f, e = load('return ' .. string.rep('(', 1e5)) error(e, 0)",
            "C stack overflow");
}

static void pathological_patterns_end(void **state) {
    fx *f = *state;
    refused(f, "return string.rep('a', 1e5):find(string.rep('a?', 1e5) .. string.rep('a', 1e5))",
            "pattern too complex");
    limited(f, "return string.rep('a', 40):find(string.rep('a?', 40) .. string.rep('a', 40))",
            SIO_KILL_INSTR, NULL);
    limited(f, "return string.rep('a', 5000):match('(.-)(.-)(.-)(.-)b')", SIO_KILL_INSTR, NULL);
    limited(f, "return (string.rep('a', 40)):gsub(string.rep('a?', 40) .. string.rep('a', 40),"
               " '')",
            SIO_KILL_INSTR, NULL);
    limited(f, "for x in string.rep('a', 3000):gmatch('.-.-.-b') do end", SIO_KILL_INSTR, NULL);
    limited(f, "local ok = pcall(string.find, string.rep('a', 5000), '(.-)(.-)(.-)(.-)b')"
               " return 'escaped'",
            SIO_KILL_INSTR, NULL);
    /* plain finds are linear */
    run(f, "local s = string.rep('a', 1e6) return s:find(string.rep('a', 1e5) .. 'b', 1, true)");
    assert_string_equal(f->out, "ok:nil");
}

static void c_loops_are_charged(void **state) {
    fx *f = *state;
    run(f, "return #string.rep('', 2^62) + #string.rep('', 2^62, '')");
    assert_string_equal(f->out, "ok:0");
    limited(f, "table.move({}, 1, 2^53, 2)", SIO_KILL_INSTR, NULL);
    limited(f, "table.insert(setmetatable({}, {__len = function() return 2^40 end}), 1, 'x')",
            SIO_KILL_INSTR, NULL);
    limited(f, "table.remove(setmetatable({}, {__len = function() return 2^40 end}), 1)",
            SIO_KILL_INSTR, NULL);
    /* C loops over elements that metamethods written in C produce: each
     * element is charged, sort's n log n up front (the alarm turns the
     * endless loop of a regression into a failure) */
    sio_limits small = {.instr_limit = 1000000};
    alarm(120);
    limited(f, "table.concat(setmetatable({}, {__index = table.concat}), '', 1, 2^40)",
            SIO_KILL_INSTR, &small);
    limited(f, "table.sort(setmetatable({}, {__len = function() return 2^31 - 2 end,\n"
               "  __index = table.concat, __newindex = rawequal}))",
            SIO_KILL_INSTR, &small);
    alarm(0);
    run(f, "local t = {5, 3, 9, 1} table.sort(t) local a = table.concat(t, ',')\n"
           "table.sort(t, function(x, y) return x > y end)\n"
           "return a .. '|' .. table.concat(t, '-', 2, 3) .. '|' .. table.concat({}, 'x')"
           " .. '|' .. table.concat({1, 2.5, 'z'})");
    assert_string_equal(f->out, "ok:1,3,5,9|5-3||12.5z");
    refused(f, "return table.concat({1, {}, 3})", "invalid value (at index 2) in table for 'concat'");
    refused(f, "local t = {} for i = 1, 100 do t[i] = i end\n"
               "table.sort(t, function(a, b) return true end)", "invalid order function");
    run(f, "local t = setmetatable({}, {__index = function(_, i) return 10 - i end,\n"
           "  __len = function() return 4 end}) table.sort(t)\n"
           "return rawget(t, 1) .. rawget(t, 4)");
    assert_string_equal(f->out, "ok:69");
    refused(f, "table.sort({1, 'x'})", "attempt to compare");
    run(f, "local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 9)\n"
           "local r = table.remove(t, 2) table.move(t, 1, 4, 2)\n"
           "return table.concat(t, ',') .. '|' .. r");
    assert_string_equal(f->out, "ok:0,0,2,3,9|1");
}

static void counters_are_reported(void **state) {
    fx *f = *state;
    run(f, "local t = {} for i = 1, 1e5 do t[i] = i end return #t");
    assert_string_equal(f->out, "ok:100000");
    assert_true(f->instr >= 300000 && f->instr < 2000000);
    assert_true(f->peak >= 1000000 && f->peak < (8u << 20));
    assert_null(sio_kill_message(SIO_KILL_NONE));
}

/* Interleaved commands: each exec is charged for its own work only. */
static void execs_are_independent(void **state) {
    fx *f = *state;
    lua_State *L = f->L;
    sio_exec *a = sio_exec_create(f->sb, NULL, NULL);
    sio_exec *b = sio_exec_create(f->sb, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    lua_getglobal(L, "make");
    lua_pushliteral(L, "while true do coroutine.yield() end");
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
    lua_State *ca = lua_tothread(L, -1);
    lua_getglobal(L, "make");
    lua_pushliteral(L, "for i = 1, 10 do coroutine.yield() end return 'done'");
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
    lua_State *cb = lua_tothread(L, -1);
    assert_int_equal(sio_exec_bind(a, ca, NULL), 0);
    assert_int_equal(sio_exec_bind(b, cb, NULL), 0);
    assert_int_equal(sio_exec_bind(a, L, NULL), -1); /* not the main thread */
    int nres, sa = LUA_YIELD, sb = LUA_YIELD;
    for (int i = 0; i < 30000 && sa == LUA_YIELD; i++) {
        sa = sio_exec_resume(a, ca, L, 0, &nres);
        if (sa == LUA_YIELD) lua_pop(ca, nres);
        if (sb == LUA_YIELD) {
            sb = sio_exec_resume(b, cb, L, 0, &nres);
            if (sb == LUA_YIELD) lua_pop(cb, nres);
        }
    }
    assert_int_equal(sb, LUA_OK);
    assert_int_equal(sio_exec_kill_reason(b), SIO_KILL_NONE);
    assert_int_equal(sa, LUA_YIELD); /* ~3 instructions per yield: still alive */
    assert_true(sio_exec_instructions(a) > sio_exec_instructions(b));
    /* a thread outliving its exec is unbound, not dangling */
    sio_exec_destroy(a);
    sio_exec_enter(b);
    sa = lua_resume(ca, L, 0, &nres);
    sio_exec_leave(b);
    assert_int_equal(sa, LUA_YIELD);
    lua_pop(ca, nres);
    sio_exec_destroy(b);
    lua_settop(L, 0);
    sio_exec_destroy(NULL);
}

/* A thread bound unarmed (the engine's) counts none of its own
 * instructions until sio_exec_arm (host.exec_arm); from then on it, the
 * coroutines made after it and a suspended one armed on the way
 * (host.exec_arm(co)) are all metered; a thread bound unarmed again (the
 * worker reuses threads) has lost the hook of its last execution;
 * host.exec_disarm stops the count again, unless a metatable was set. */
static const char *arming =
    "function count_then_arm() local n = 0 for i = 1, 200000 do n = n + i end\n"
    "  coroutine.yield(n) host.exec_arm() while true do end end\n"
    "function arm_old() local c = host.coroutine_create(function() coroutine.yield() while true do end end)\n"
    "  coroutine.resume(c) host.exec_arm(c) return coroutine.resume(c) end\n"
    "function arm_new() host.exec_arm()\n"
    "  return coroutine.resume(host.coroutine_create(function() while true do end end)) end\n"
    "function trusted_loop() local n = 0 for i = 1, 200000 do n = n + i end return n end\n"
    "function arm_disarm(taint) host.exec_arm() trusted_loop()\n"
    "  if taint then host.safe_env().setmetatable({}, {}) end\n"
    "  host.exec_disarm() return trusted_loop() end\n";

/* Runs global fn on a thread bound to a new exec (armed or not) until it
 * yields or ends; returns the exec (the caller destroys it). */
static sio_exec *run_bound(fx *f, lua_State *co, const char *fn, int armed, int want) {
    sio_exec *ex = sio_exec_create(f->sb, NULL, NULL);
    assert_non_null(ex);
    if (armed) assert_int_equal(sio_exec_bind(ex, co, NULL), 0);
    else assert_int_equal(sio_exec_bind_unarmed(ex, co, NULL), 0);
    assert_int_equal(sio_exec_armed(ex), armed);
    lua_getglobal(co, fn);
    int nres = 0;
    assert_int_equal(sio_exec_resume(ex, co, f->L, 0, &nres), want);
    lua_settop(co, 0);
    return ex;
}

static void unarmed_until_armed(void **state) {
    fx *f = *state;
    lua_State *L = f->L;
    if (luaL_dostring(L, arming) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
    lua_State *co = lua_newthread(L); /* anchored on L's stack */
    sio_exec *ex = run_bound(f, co, "count_then_arm", 0, LUA_YIELD);
    assert_true(sio_exec_instructions(ex) < 1000); /* ~400,000 ran */
    int nres = 0;
    assert_int_equal(sio_exec_resume(ex, co, L, 0, &nres), LUA_ERRRUN);
    assert_int_equal(sio_exec_kill_reason(ex), SIO_KILL_INSTR);
    assert_true(sio_exec_armed(ex));
    sio_exec_destroy(ex);
    const char *spinners[] = {"arm_old", "arm_new"};
    for (int i = 0; i < 2; i++) {
        ex = run_bound(f, lua_newthread(L), spinners[i], 0, LUA_OK);
        assert_int_equal(sio_exec_kill_reason(ex), SIO_KILL_INSTR);
        sio_exec_destroy(ex);
    }
    lua_State *reused = lua_newthread(L);
    ex = run_bound(f, reused, "trusted_loop", 1, LUA_OK);
    assert_true(sio_exec_instructions(ex) >= 300000); /* 2 a turn */
    sio_exec_destroy(ex);
    ex = run_bound(f, reused, "trusted_loop", 0, LUA_OK);
    assert_true(sio_exec_instructions(ex) < 1000);
    sio_exec_destroy(ex);
    /* disarmed again, the second loop is not counted - unless a metatable
     * was set in between (the first period is charged up front) */
    ex = run_bound(f, reused, "arm_disarm", 0, LUA_OK); /* (taint nil) */
    assert_true(sio_exec_instructions(ex) >= 400000 + 1000 && sio_exec_instructions(ex) < 600000);
    assert_false(sio_exec_armed(ex));
    sio_exec_destroy(ex);
    ex = sio_exec_create(f->sb, NULL, NULL);
    assert_int_equal(sio_exec_bind_unarmed(ex, reused, NULL), 0);
    lua_getglobal(reused, "arm_disarm");
    lua_pushboolean(reused, 1);
    int n2 = 0;
    assert_int_equal(sio_exec_resume(ex, reused, L, 1, &n2), LUA_OK);
    assert_true(sio_exec_instructions(ex) >= 800000);
    assert_true(sio_exec_armed(ex));
    sio_exec_destroy(ex);
    lua_settop(reused, 0);
    lua_settop(L, 0);
    still_fine(f);
}

static void state_cap_is_enforced(void **state) {
    (void)state;
    sio_sandbox_cfg cfg = {.state_mem_cap = 16u << 20};
    sio_sandbox *sb = sio_sandbox_create(&cfg, NULL);
    assert_non_null(sb);
    lua_State *L = sio_sandbox_state(sb);
    assert_int_equal(luaL_dostring(L, "return pcall(string.rep, 'x', 32 * 1024 * 1024)"), LUA_OK);
    assert_false(lua_toboolean(L, -2));
    assert_string_equal(lua_tostring(L, -1), "not enough memory");
    lua_settop(L, 0);
    assert_int_equal(luaL_dostring(L, "return #string.rep('x', 1024 * 1024)"), LUA_OK);
    assert_int_equal(lua_tointeger(L, -1), 1 << 20);
    assert_true(sio_sandbox_mem_used(sb) < (16u << 20));
    sio_sandbox_destroy(sb);
    sio_sandbox_destroy(NULL);
    sio_err err;
    sio_sandbox_cfg bad = {.lua_dir = "/nonexistent/dir"};
    assert_null(sio_sandbox_create(&bad, &err));
    assert_int_equal(err.code, SIO_E_INVAL);
    assert_contains(err.msg, "/nonexistent/dir");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(escapes_fail_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(binary_chunks_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(require_refuses_system_modules, setup, teardown),
        cmocka_unit_test(require_resolves_lua_dir),
        cmocka_unit_test_setup_teardown(shared_tables_are_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(globals_do_not_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(gc_metamethods_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(print_goes_to_host_log, setup, teardown),
        cmocka_unit_test_setup_teardown(infinite_loops_are_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_hold_while_unwinding, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_is_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_bombs_are_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(json_work_is_charged, setup, teardown),
        cmocka_unit_test_setup_teardown(json_limits_leave_nothing_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_recursion_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(pathological_patterns_end, setup, teardown),
        cmocka_unit_test_setup_teardown(c_loops_are_charged, setup, teardown),
        cmocka_unit_test_setup_teardown(counters_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(execs_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(unarmed_until_armed, setup, teardown),
        cmocka_unit_test(state_cap_is_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
