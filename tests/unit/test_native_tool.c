/*
 * test_native_tool.c - tools written in C through sio/tool.h: registered by
 * name, called with the step's rendered args as JSON, answering now or
 * later from another thread, failing as transient or permanent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio/tool.h"
#include "json.h"
#include "outcome.h"
#include "worker.h"

/* shout: {"text": "..."} -> the text in upper case, answered at once. */
static void shout(sio_tool_call *call, const char *args, size_t len, void *ud) {
    (void)ud;
    const char *t = strstr(args, "\"text\":\"");
    if (t == NULL) {
        sio_tool_fail(call, 0, "shout: args need a text");
        return;
    }
    t += 8;
    char out[256];
    size_t n = 0;
    for (; t < args + len && *t != '"' && n < sizeof out - 1; t++) out[n++] = (char)toupper(*t);
    sio_tool_done(call, out, n);
}

/* later: answers from another thread after 50 ms. */
static void *answer_later(void *arg) {
    usleep(50 * 1000);
    sio_tool_done(arg, "{\"late\":true}", 13);
    return NULL;
}

static void later(sio_tool_call *call, const char *args, size_t len, void *ud) {
    (void)args, (void)len, (void)ud;
    pthread_t t;
    pthread_create(&t, NULL, answer_later, call);
    pthread_detach(t);
}

static void flaky(sio_tool_call *call, const char *args, size_t len, void *ud) {
    (void)args, (void)len, (void)ud;
    sio_tool_fail(call, 1, "backend busy");
}

static char dir[64];
static char last[1024];
static int last_ok;

static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    (void)ud;
    last_ok = result != NULL;
    outcome_text(result, e, last, sizeof last);
    json_decref(result);
}

static void run(sio_worker *w, const char *intent, const char *attrs) {
    json_t *a = sio_json_parse(attrs, strlen(attrs), NULL);
    assert_non_null(a);
    sio_run_job job = {.workflow = intent, .attrs = a, .cbs = {.done = on_done}};
    last[0] = '\0';
    sio_worker_submit_run(w, &job);
    sio_worker_run_until_idle(w);
    json_decref(a);
}

static void native_tools_run_in_steps(void **state) {
    (void)state;
    assert_int_equal(sio_tool_register("shout", shout, NULL), 0);
    assert_int_equal(sio_tool_register("later", later, NULL), 0);
    assert_int_equal(sio_tool_register("flaky", flaky, NULL), 0);
    assert_int_equal(sio_tool_register("shout", shout, NULL), -1); /* taken */

    snprintf(dir, sizeof dir, "/tmp/sio-test-native.XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/native.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("intent: native\nsteps:\n"
          "  - id: a\n    tool: {name: shout, args: {text: \"${A.query}\"}}\n"
          "  - id: b\n    tool: {name: later}\n"
          "  - id: c\n    run: \"return A.a.payload .. '/' .. tostring(A.b.json.late)\"\n",
          f);
    fclose(f);
    snprintf(path, sizeof path, "%s/flaky.yaml", dir);
    f = fopen(path, "w");
    fputs("intent: flaky\nsteps:\n  - id: x\n    tool: {name: flaky}\n", f);
    fclose(f);

    sio_worker_cfg cfg = {.workflows_dir = dir};
    sio_err err;
    sio_worker *w = sio_worker_create(&cfg, &err);
    if (w == NULL) fail_msg("%s", err.msg);
    assert_null(sio_worker_load_errors(w));
    run(w, "native", "{\"query\":\"hello\"}");
    assert_int_equal(last_ok, 1);
    assert_non_null(strstr(last, "\"c\":\"HELLO/true\"")); /* jansson does not escape '/' */
    run(w, "flaky", "{}");
    assert_int_equal(last_ok, 0);
    assert_non_null(strstr(last, "\"class\":\"transient\""));
    assert_non_null(strstr(last, "backend busy"));
    sio_worker_destroy(w);

    /* A workflow naming an unregistered native tool does not load, and the
     * set is refused as a whole. */
    snprintf(path, sizeof path, "%s/unknown.yaml", dir);
    f = fopen(path, "w");
    fputs("intent: unknown\nsteps:\n  - id: x\n    tool: {name: nosuch}\n", f);
    fclose(f);
    w = sio_worker_create(&cfg, &err);
    assert_null(w);
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_non_null(strstr(err.msg, "unknown.yaml:4: step x: unknown tool 'nosuch'"));
    remove(path);

    /* A native tool with a built-in's name: the set does not load either
     * (the engine's built-ins keep their names), and the error names it. */
    assert_int_equal(sio_tool_register("echo", shout, NULL), 0);
    w = sio_worker_create(&cfg, &err);
    assert_null(w);
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_non_null(strstr(err.msg, "native tool 'echo' (sio_tool_register) has the name of a built-in tool"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(native_tools_run_in_steps)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
