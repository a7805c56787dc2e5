/* test_luajson.c - Lua values <-> JSON trees (src/sandbox/luajson.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
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
    assert_null(encode_lua("return {x = 0/0}", &err));
    assert_contains(err.msg, "cannot encode NaN");
    assert_null(encode_lua("local t = {}; t.t = t; return t", &err));
    assert_contains(err.msg, "nested deeper");
    assert_null(encode_lua("return {f = print}", &err));
    assert_contains(err.msg, "cannot encode a function");
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lua_to_json),
        cmocka_unit_test(json_to_lua),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
