/* test_luajson.c - Lua values <-> JSON trees (src/sandbox/luajson.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "json.h"
#include "luajson.h"
#include "sandbox.h"

/* Runs src (which returns one value) in a fresh sandbox state and encodes
 * its result; returns the text (caller frees) or NULL with err set. */
static char *encode_lua(const char *src, sio_err *err) {
    sio_sandbox *sb = sio_sandbox_create(NULL, err);
    assert_non_null(sb);
    lua_State *L = sio_sandbox_state(sb);
    assert_int_equal(luaL_dostring(L, src), LUA_OK);
    json_t *v = sio_lua_to_json(L, -1, err);
    char *out = v ? sio_json_dump(v, NULL) : NULL;
    json_decref(v);
    sio_sandbox_destroy(sb);
    return out;
}

static void lua_to_json(void **state) {
    (void)state;
    sio_err err;
    char *s = encode_lua("return {id = 12345678901234567, xs = {1, 2.5, 'a'}, e = {}}", &err);
    assert_non_null(s);
    assert_contains(s, "\"id\":12345678901234567");
    assert_contains(s, "\"xs\":[1,2.5,\"a\"]");
    assert_contains(s, "\"e\":{}");
    free(s);
    s = encode_lua("return {bad = 'a\\255b'}", &err);
    assert_string_equal(s, "{\"bad\":\"a\xEF\xBF\xBD" "b\"}");
    free(s);
    /* a NUL in a key would be "\u0000", which sio_json_parse (jansson)
     * cannot read back: U+FFFD, as for a bad byte (found by fuzz/workflow_lua) */
    s = encode_lua("return {['a\\0b'] = 'c\\0d'}", &err);
    assert_string_equal(s, "{\"a\xEF\xBF\xBD" "b\":\"c\\u0000d\"}");
    json_t *back = sio_json_parse(s, strlen(s), &err);
    assert_non_null(back);
    json_decref(back);
    free(s);
    /* a value keeps its NUL even when it also holds a bad byte (the bad
     * byte alone becomes U+FFFD) */
    s = encode_lua("return {v = 'caf\\xe9\\0'}", &err);
    assert_string_equal(s, "{\"v\":\"caf\xEF\xBF\xBD\\u0000\"}");
    back = sio_json_parse(s, strlen(s), &err);
    assert_non_null(back);
    json_decref(back);
    free(s);
    assert_null(encode_lua("return {x = 0/0}", &err));
    assert_contains(err.msg, "x: cannot encode NaN as JSON");
    assert_null(encode_lua("local t = {}; t.t = t; return t", &err));
    assert_contains(err.msg, "nested deeper");
    assert_null(encode_lua("return {f = print}", &err));
    assert_contains(err.msg, "f: cannot encode a function as JSON");
}

static void json_to_lua(void **state) {
    (void)state;
    sio_err err;
    const char *in = "{\"id\":12345678901234567,\"xs\":[1,2.5,null,\"a\\u0000b\"],\"t\":true}";
    json_t *v = sio_json_parse(in, strlen(in), &err);
    assert_non_null(v);
    sio_sandbox *sb = sio_sandbox_create(NULL, &err);
    lua_State *L = sio_sandbox_state(sb);
    sio_lua_push_json(L, v);
    lua_setglobal(L, "v");
    assert_int_equal(luaL_dostring(L, "return math.type(v.id) == 'integer' and v.id == 12345678901234567"
                                      " and v.xs[2] == 2.5 and v.xs[3] ~= nil"
                                      " and #v.xs[4] == 3 and v.t == true"), LUA_OK);
    assert_true(lua_toboolean(L, -1));
    lua_getglobal(L, "v");
    json_t *back = sio_lua_to_json(L, -1, &err);
    assert_true(json_equal(v, back));
    json_decref(back);
    json_decref(v);
    sio_sandbox_destroy(sb);
}

/* Runs trusted chunk src (with json = require 'sio.json') in a fresh
 * sandbox state; returns its first result tostring'ed, or "error: <msg>",
 * in buf. */
static const char *eval(const char *src, char *buf, size_t size) {
    sio_sandbox *sb = sio_sandbox_create(NULL, NULL);
    assert_non_null(sb);
    lua_State *L = sio_sandbox_state(sb);
    assert_int_equal(luaL_dostring(L, "json = require 'sio.json'"), LUA_OK);
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        snprintf(buf, size, "error: %s", luaL_tolstring(L, -1, NULL));
    else
        snprintf(buf, size, "%s", luaL_tolstring(L, -1, NULL));
    sio_sandbox_destroy(sb);
    return buf;
}

#define EVAL(src) eval((src), out, sizeof out)

/* sio.json.decode reads with sio_json_parse's rules (issue 9.9): what a
 * strict reader would reject is an error, not a best guess. */
static void decode_is_strict(void **state) {
    (void)state;
    char out[1024];
    assert_contains(EVAL("return json.decode('{\"a\":1}\\0garbage')"),
                    "error: malformed JSON: end of file expected");
    assert_contains(EVAL("return json.decode('{\"a\":1} x')"), "end of file expected");
    assert_contains(EVAL("return json.decode('{\"a\":\"\\255\"}')"),
                    "error: malformed JSON: unable to decode byte 0xff");
    assert_contains(EVAL("return json.decode('[NaN]')"), "error: malformed JSON");
    assert_contains(EVAL("return json.decode('[1e999]')"), "real number overflow");
    assert_contains(EVAL("return json.decode('[123456789012345678901]')"), "too big integer");
    assert_contains(EVAL("return json.decode('{\"a\":1,\"a\":2}')"), "duplicate object key");
    assert_contains(EVAL("return json.decode('')"), "error: malformed JSON");
    assert_contains(EVAL("return json.decode()"), "bad argument #1");
    /* what is valid reads as it should */
    assert_string_equal(EVAL("local v = json.decode('{\"a\":[1,2.5,null,\"x\\\\u0000y\"],"
                             "\"t\":true}')\n"
                             "return math.type(v.a[1]) .. math.type(v.a[2]) .. tostring("
                             "v.a[3] == json.null) .. #v.a[4] .. tostring(v.t)"),
                        "integerfloattrue3true");
    assert_string_equal(EVAL("return json.decode('\"top\"') .. json.decode('7')"), "top7");
}

/* Integers exact, floats round-trip (issue 9.8), '/' not escaped, bad
 * UTF-8 replaced (never written), errors name the path. */
static void encode_rules(void **state) {
    (void)state;
    char out[1024];
    assert_string_equal(EVAL("return json.encode({12345678901234567, math.maxinteger,"
                             " math.mininteger, 2^53 + 1})"),
                        "[12345678901234567,9223372036854775807,-9223372036854775808,"
                        "9007199254740992.0]");
    assert_string_equal(EVAL("local t = {0.1, 1/3, 1e300, -0.0, 5e-324, 2.0}\n"
                             "local back = json.decode(json.encode(t))\n"
                             "for i = 1, #t do if back[i] ~= t[i] or math.type(back[i]) ~= "
                             "'float' then return 'changed ' .. i end end return 'same'"),
                        "same");
    assert_string_equal(EVAL("return json.decode(json.encode({id = 12345678901234567})).id"),
                        "12345678901234567");
    assert_string_equal(EVAL("return json.encode({'a/b', {}, json.null})"),
                        "[\"a/b\",{},null]");
    assert_string_equal(EVAL("return json.encode('ok \\255\\192\\128 caf\\195\\169')"),
                        "\"ok \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD caf\xC3\xA9\"");
    assert_string_equal(EVAL("return json.encode({['k\\255'] = 1})"),
                        "{\"k\xEF\xBF\xBD\":1}");
    assert_string_equal(EVAL("return json.encode({[1] = 'a', [3] = 'c', [1.5] = 'f'})"
                             ":len()"),
                        "27"); /* {"1":"a","3":"c","1.5":"f"} in some order */
    assert_string_equal(EVAL("return select(2, pcall(json.encode, {items = {1, {f = print}}}))"),
                        "items[2].f: cannot encode a function as JSON");
    assert_string_equal(EVAL("return select(2, pcall(json.encode, {{x = 0/0}}))"),
                        "[1].x: cannot encode NaN as JSON");
    assert_string_equal(EVAL("return select(2, pcall(json.encode, {[true] = 1}))"),
                        "cannot use a boolean as a JSON object key");
    assert_string_equal(EVAL("return select(2, pcall(json.encode, {a = {[1] = 1, ['1'] = 2,"
                             " x = 3}}))"),
                        "a: two keys of one table both encode as \"1\"");
    assert_contains(EVAL("local t = {} t.t = t return select(2, pcall(json.encode, t))"),
                    "nested deeper than 2048 levels (a cycle?)");
    assert_contains(EVAL("return select(2, pcall(json.encode, coroutine.create(print)))"),
                    "cannot encode a thread as JSON");
    /* whatever decodes encodes, up to the parser's depth */
    assert_string_equal(EVAL("local s = ('{\"a\":'):rep(2047) .. '{}' .. ('}'):rep(2047)\n"
                             "return json.encode(json.decode(s)) == s"),
                        "true");
}
int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lua_to_json),
        cmocka_unit_test(json_to_lua),
        cmocka_unit_test(decode_is_strict),
        cmocka_unit_test(encode_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
