/*
 * test_loader.c - loading workflows into a worker: one rule at start-up
 * and on reload (the set goes live only when all of it is valid), each
 * file with a budget of its own, files named relative to the folder.
 *
 * Reloads run on the calling thread: sio_worker_reload marks one and
 * sio_worker_run_until_idle performs it, so nothing here waits on time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "worker.h"

static char dir[64];

static void write_file(const char *name, const char *text) { test_write_file(dir, name, text); }

static void remove_file(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static int make_dir(void **state) {
    (void)state;
    test_make_dir(dir, sizeof dir, "sio-test-loader");
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    return test_remove_dir(dir);
}

static const char NOOP[] = "intent: znoop\nsteps:\n  - id: s1\n    tool: {name: noop}\n";
static const char SPIN[] = "while true do end\nreturn { intent = 'spin', steps = {} }\n";

/* The last reload's outcome, from cfg.on_reload. */
typedef struct outcome {
    int calls, ok;
    char errors[2048];
} outcome;

static void on_reload(void *ud, int worker_id, int ok, long version, const char *errors) {
    (void)worker_id;
    (void)version;
    outcome *o = ud;
    o->calls++;
    o->ok = ok;
    snprintf(o->errors, sizeof o->errors, "%s", errors ? errors : "");
}

static sio_worker *create(outcome *o, uint64_t instr_limit, sio_err *err) {
    sio_worker_cfg cfg = {.workflows_dir = dir, .on_reload = on_reload, .reload_data = o,
                          .limits = {.instr_limit = instr_limit}};
    return sio_worker_create(&cfg, err);
}

static void reload(sio_worker *w) {
    sio_worker_reload(w);
    sio_worker_run_until_idle(w);
}

/* The outcome of running intent with attrs {} on w. */
typedef struct ran {
    int done, ok;
    char message[1024]; /* the error's */
} ran;

static void on_step_result(void *ud, const char *step_id, const char *payload, size_t len,
                           const json_t *query) {
    (void)ud, (void)step_id, (void)payload, (void)len, (void)query;
}

static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    ran *r = ud;
    r->done = 1;
    r->ok = result != NULL;
    if (result == NULL) snprintf(r->message, sizeof r->message, "%s", e->message);
    json_decref(result);
}

static ran run(sio_worker *w, const char *intent) {
    ran r = {0, 0, ""};
    sio_run_cbs cbs = {.step_result = on_step_result, .done = on_done};
    sio_err err;
    json_t *attrs = json_object();
    if (sio_worker_run(w, intent, attrs, &cbs, &r, &err) == NULL) fail_msg("run: %s", err.msg);
    sio_worker_run_until_idle(w);
    json_decref(attrs);
    assert_true(r.done);
    return r;
}

/* Two files of one intent: refused at start-up, as on reload. */
static void a_duplicate_intent_is_refused_at_start_and_on_reload(void **state) {
    (void)state;
    outcome o = {0};
    sio_err err;
    write_file("a.yaml", NOOP);
    write_file("b.yaml", NOOP);
    sio_worker *w = create(&o, 0, &err);
    if (w != NULL) fail_msg("a set with a duplicate intent was served (partially)");
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_non_null(strstr(err.msg, "b.yaml:1: duplicate intent 'znoop' (already defined in a.yaml)"));

    remove_file("b.yaml");
    w = create(&o, 0, &err);
    if (w == NULL) fail_msg("%s", err.msg);
    write_file("b.yaml", NOOP);
    reload(w);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.ok, 0);
    assert_non_null(strstr(o.errors, "b.yaml:1: duplicate intent 'znoop' (already defined in a.yaml)"));
    assert_int_equal(run(w, "znoop").ok, 1); /* the previous set still serves */
    sio_worker_destroy(w);
    remove_file("a.yaml");
    remove_file("b.yaml");
}

/* A Lua workflow file that spins at load uses up its own budget only: the
 * error names it, and nothing else is reported (its neighbours loaded). */
static void each_file_loads_with_its_own_budget(void **state) {
    (void)state;
    outcome o = {0};
    sio_err err;
    write_file("a_spin.lua", SPIN);
    write_file("z_noop.yaml", NOOP);
    sio_worker *w = create(&o, 1000000, &err);
    assert_null(w);
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_non_null(strstr(err.msg, "a_spin.lua: instruction limit exceeded"));
    if (strstr(err.msg, "z_noop.yaml") != NULL) fail_msg("a valid file was blamed: %s", err.msg);

    remove_file("a_spin.lua");
    w = create(&o, 1000000, &err);
    if (w == NULL) fail_msg("%s", err.msg);
    write_file("a_spin.lua", SPIN);
    write_file("m_too.yaml", "intent: too\nsteps:\n  - id: s1\n    tool: {name: echo}\n");
    reload(w);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.errors, "a_spin.lua: instruction limit exceeded");

    write_file("a_spin.lua", "return { intent = 'spin', steps = { { id = 's', tool = { name = 'noop' } } } }\n");
    reload(w);
    assert_int_equal(o.ok, 1);
    assert_int_equal(run(w, "spin").ok, 1);
    assert_int_equal(run(w, "too").ok, 1);
    sio_worker_destroy(w);
    remove_file("a_spin.lua");
    remove_file("z_noop.yaml");
    remove_file("m_too.yaml");
}

/* Messages name files relative to the workflows folder, never by the path
 * the host read them from. */
static void errors_name_files_relative_to_the_folder(void **state) {
    (void)state;
    outcome o = {0};
    sio_err err;
    write_file("rt.yaml", "intent: rt\nsteps:\n  - id: s1\n    run: |\n      local x\n      x.y = 1\n");
    sio_worker *w = create(&o, 0, &err);
    if (w == NULL) fail_msg("%s", err.msg);
    ran r = run(w, "rt");
    assert_int_equal(r.ok, 0);
    assert_non_null(strstr(r.message, "rt.yaml:6: attempt to index a nil value"));
    if (strstr(r.message, dir) != NULL) fail_msg("the host's path leaked: %s", r.message);

    write_file("rt.yaml", "intent: rt\nsteps:\n  - id: s1\n    tool: {name: nosuch}\n");
    reload(w);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.errors, "rt.yaml:4: step s1: unknown tool 'nosuch'");
    sio_worker_destroy(w);
    remove_file("rt.yaml");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_duplicate_intent_is_refused_at_start_and_on_reload),
        cmocka_unit_test(each_file_loads_with_its_own_budget),
        cmocka_unit_test(errors_name_files_relative_to_the_folder),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
