/* test_ops.c - the operations listener (src/telemetry/ops.h) over real
 * HTTP: /metrics, /healthz (a thread that stops beating is named),
 * /readyz (checks and probes), /workflows, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asserts.h"
#include "catalog.h"
#include "health.h"
#include "json.h"
#include "metrics.h"
#include "ops.h"

typedef struct resp {
    long status;
    char type[128];
    char body[1 << 16];
    size_t len;
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    resp *r = ud;
    size_t k = size * n;
    if (r->len + k >= sizeof r->body) k = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return size * n;
}

static void get(int port, const char *method, const char *path, resp *r) {
    memset(r, 0, sizeof *r);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(r->type, sizeof r->type, "%s", ct);
    curl_easy_cleanup(c);
}

static sio_ops *ops;
static int port;

static int up(void **state) {
    (void)state;
    sio_health_reset();
    sio_catalog_reset();
    sio_err err;
    ops = sio_ops_start("127.0.0.1", 0, &err);
    if (ops == NULL) fail_msg("%s", err.msg);
    port = sio_ops_port(ops);
    assert_true(port > 0);
    return 0;
}

static int down(void **state) {
    (void)state;
    sio_ops_stop(ops);
    return 0;
}

static void metrics_endpoint(void **state) {
    (void)state;
    sio_metric_inc(SIO_M_DEDUPE_REPLAYS, 0);
    resp r;
    get(port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    assert_contains(r.body, "# TYPE sio_dedupe_replays_total counter\n");
    get(port, "POST", "/metrics", &r);
    assert_int_equal(r.status, 405);
    get(port, "GET", "/nope", &r);
    assert_int_equal(r.status, 404);
}

static void healthz_names_the_wedged_thread(void **state) {
    (void)state;
    resp r;
    int a = sio_health_register("consumer"), b = sio_health_register("worker-0");
    get(port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "\"status\":\"ok\"");
    /* worker-0 stops beating; consumer keeps beating.  The bound is 1 ms,
     * so the next turn of this loop that sees 503 is the observed event. */
    sio_health_set_stall_ms(1);
    for (int i = 0; i < 100000; i++) {
        sio_health_beat(a);
        get(port, "GET", "/healthz", &r);
        if (r.status == 503 && strstr(r.body, "\"wedged\":[\"worker-0\"]")) break;
    }
    assert_int_equal(r.status, 503);
    assert_contains(r.body, "\"wedged\":[\"worker-0\"]");
    sio_health_unregister(b); /* stopped on purpose: no longer watched */
    sio_health_set_stall_ms(60000);
    get(port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    sio_health_unregister(a);
}

static int redis_down(void *data, char *why, size_t n) {
    snprintf(why, n, "redis at %s did not answer: Connection refused", (const char *)data);
    return 0;
}

static void readyz_checks(void **state) {
    (void)state;
    resp r;
    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_contains(r.body, "\"kafka\":{\"ok\":false,\"error\":\"not joined yet\"}");
    sio_health_set_ready(SIO_READY_KAFKA, 1, NULL);
    sio_health_set_ready(SIO_READY_WORKFLOWS, 1, NULL);
    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "\"status\":\"ready\"");
    sio_health_set_probe(SIO_READY_REDIS, redis_down, "127.0.0.1:1");
    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_contains(r.body, "\"redis\":{\"ok\":false,\"error\":\"redis at 127.0.0.1:1 did not answer");
    sio_health_set_probe(SIO_READY_REDIS, NULL, NULL);
}

static void workflows_endpoint(void **state) {
    (void)state;
    char path[] = "/tmp/sio-wf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "abc", 3) == 3);
    close(fd);
    const char *const steps[] = {"s1"};
    sio_metrics_wf wf = {"noop", steps, 1};
    const char *files[] = {"noop.yaml"}, *paths[] = {path};
    sio_catalog_publish(2, &wf, files, paths, 1);
    sio_catalog_reload(0, "workflows/bad.yaml:3: unknown tool 'x'\nworkflows/b.lua:1: oops");
    resp r;
    get(port, "GET", "/workflows", &r);
    unlink(path);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "application/json");
    json_t *doc = sio_json_parse(r.body, r.len, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 2);
    json_t *w = json_array_get(json_object_get(doc, "workflows"), 0);
    assert_string_equal(json_string_value(json_object_get(w, "intent")), "noop");
    assert_string_equal(json_string_value(json_object_get(w, "file")), "noop.yaml");
    /* sha256("abc") */
    assert_string_equal(json_string_value(json_object_get(w, "sha256")),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    json_t *last = json_object_get(doc, "last_reload");
    assert_string_equal(json_string_value(json_object_get(last, "result")), "rejected");
    assert_int_equal(json_array_size(json_object_get(last, "errors")), 2);
    json_decref(doc);
}

static void busy_port_is_a_clear_error(void **state) {
    (void)state;
    sio_err err;
    sio_ops *again = sio_ops_start("127.0.0.1", port, &err);
    assert_null(again);
    assert_int_equal(err.code, SIO_E_IO);
    assert_contains(err.msg, "OPS_ADDR 127.0.0.1:");
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(metrics_endpoint, up, down),
        cmocka_unit_test_setup_teardown(healthz_names_the_wedged_thread, up, down),
        cmocka_unit_test_setup_teardown(readyz_checks, up, down),
        cmocka_unit_test_setup_teardown(workflows_endpoint, up, down),
        cmocka_unit_test_setup_teardown(busy_port_is_a_clear_error, up, down),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sio_catalog_reset();
    curl_global_cleanup();
    return rc;
}
