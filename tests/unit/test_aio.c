/* test_aio.c - async ops on a uv loop: timers, HTTP (allow-list, errors,
 * concurrency), and the clear errors of capabilities that are absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio.h"
#include "httpd.h"

#define MAX_DONE 512

typedef struct rec {
    int n;
    uint64_t ids[MAX_DONE];
    void *owners[MAX_DONE];
    sio_code codes[MAX_DONE];
    long status[MAX_DONE];
    char bodies[MAX_DONE][128];
} rec;

static void on_done(void *owner, uint64_t id, const sio_aio_result *res, void *data) {
    rec *r = data;
    assert_true(r->n < MAX_DONE);
    r->ids[r->n] = id;
    r->owners[r->n] = owner;
    r->codes[r->n] = res->err.code;
    r->status[r->n] = res->http_status;
    snprintf(r->bodies[r->n], sizeof r->bodies[0], "%.*s", (int)res->body_len,
             res->body ? res->body : "");
    r->n++;
}

typedef struct fixture {
    uv_loop_t loop;
    rec r;
    sio_aio *aio;
    test_httpd *httpd;
} fixture;

static const char *allow_local[] = {"127.0.0.1", NULL};

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    sio_aio_cfg cfg = {.done = on_done, .cb_data = &f->r, .http_allow = allow_local,
                       .http_timeout_ms = 3000};
    sio_err err;
    f->aio = sio_aio_create(&f->loop, &cfg, &err);
    assert_non_null(f->aio);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    sio_aio_destroy(f->aio);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_httpd_stop(f->httpd);
    free(f);
    return 0;
}

static void timers_complete_in_deadline_order(void **state) {
    fixture *f = *state;
    int a, b, c;
    sio_err err;
    uint64_t t30 = sio_aio_timer(f->aio, &a, 30, &err);
    uint64_t t10 = sio_aio_timer(f->aio, &b, 10, &err);
    uint64_t t20 = sio_aio_timer(f->aio, &c, 20, &err);
    assert_true(t30 && t10 && t20);
    assert_int_equal(f->r.n, 0); /* never from inside the starting call */
    assert_int_equal(sio_aio_pending(f->aio), 3);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 3);
    assert_int_equal(f->r.ids[0], t10);
    assert_ptr_equal(f->r.owners[0], &b);
    assert_int_equal(f->r.ids[1], t20);
    assert_int_equal(f->r.ids[2], t30);
    assert_int_equal(sio_aio_pending(f->aio), 0);
}

static void forgotten_ops_complete_silently(void **state) {
    fixture *f = *state;
    int a, b;
    sio_err err;
    sio_aio_timer(f->aio, &a, 5, &err);
    uint64_t keep = sio_aio_timer(f->aio, &b, 5, &err);
    sio_aio_forget(f->aio, &a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.ids[0], keep);
    assert_int_equal(sio_aio_pending(f->aio), 0);
}

static void http_get_returns_status_and_body(void **state) {
    fixture *f = *state;
    f->httpd = test_httpd_start(0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", test_httpd_port(f->httpd));
    sio_err err;
    const char *hdrs[] = {"X-Test: 1", NULL};
    uint64_t id = sio_aio_http(f->aio, f, "GET", url, hdrs, NULL, 0, 0, &err);
    assert_true(id > 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.codes[0], SIO_E_OK);
    assert_int_equal(f->r.status[0], 200);
    assert_string_equal(f->r.bodies[0], "{\"path\":\"/hello\",\"n\":1}");
}

static void http_requests_run_concurrently(void **state) {
    fixture *f = *state;
    f->httpd = test_httpd_start(300);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/c", test_httpd_port(f->httpd));
    sio_err err;
    for (int i = 0; i < 50; i++) assert_true(sio_aio_http(f->aio, f, "GET", url, NULL, NULL, 0, 0, &err));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 50);
    for (int i = 0; i < 50; i++) assert_int_equal(f->r.status[i], 200);
    /* All 50 were held by the server at the same time. */
    assert_int_equal(test_httpd_max_open(f->httpd), 50);
}

static void http_refuses_hosts_off_the_allow_list(void **state) {
    fixture *f = *state;
    sio_err err;
    assert_int_equal(sio_aio_http(f->aio, f, "GET", "http://example.com/", NULL, NULL, 0, 0, &err), 0);
    assert_int_equal(err.code, SIO_E_SANDBOX);
    assert_non_null(strstr(err.msg, "'example.com' is not on the allow-list"));
    assert_int_equal(sio_aio_http(f->aio, f, "GET", "file:///etc/passwd", NULL, NULL, 0, 0, &err), 0);
    assert_int_equal(err.code, SIO_E_SANDBOX);
    assert_non_null(strstr(err.msg, "scheme 'file'"));
    assert_int_equal(sio_aio_http(f->aio, f, "GET", "http://", NULL, NULL, 0, 0, &err), 0);
    assert_int_equal(err.code, SIO_E_INVAL);
    assert_int_equal(sio_aio_pending(f->aio), 0);
}

static void http_errors_have_transient_classes(void **state) {
    fixture *f = *state;
    f->httpd = test_httpd_start(2000);
    char slow[128];
    snprintf(slow, sizeof slow, "http://127.0.0.1:%d/slow", test_httpd_port(f->httpd));
    sio_err err;
    assert_true(sio_aio_http(f->aio, f, "GET", slow, NULL, NULL, 0, 100, &err));
    /* Port 9 (discard) is closed on loopback here: connection refused. */
    assert_true(sio_aio_http(f->aio, f, "GET", "http://127.0.0.1:9/", NULL, NULL, 0, 0, &err));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 2);
    int timeout = f->r.codes[0] == SIO_E_TIMEOUT ? 0 : 1;
    assert_int_equal(f->r.codes[timeout], SIO_E_TIMEOUT);
    assert_int_equal(f->r.codes[1 - timeout], SIO_E_UNAVAILABLE);
    assert_int_equal(sio_code_class(SIO_E_TIMEOUT), SIO_TRANSIENT);
    assert_int_equal(sio_code_class(SIO_E_UNAVAILABLE), SIO_TRANSIENT);
}

static void absent_capabilities_say_so(void **state) {
    fixture *f = *state;
    sio_err err;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    assert_int_equal(sio_aio_redis(f->aio, f, 1, argv, lens, &err), 0);
    assert_int_equal(err.code, SIO_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "redis is not configured"));
    assert_int_equal(sio_aio_produce(f->aio, f, "t", "k", 1, "v", 1, NULL, 0, &err), 0);
    assert_non_null(strstr(err.msg, "kafka is not configured"));
}

/* An owner with its own op list (cfg.owner_ops), whose completion callback
 * forgets it and cancels the op being completed: the op is out of reach
 * by then, so nothing is freed twice; many ops keep the index busy. */
typedef struct owner {
    struct sio_op *ops;
    int fired;
    sio_aio *aio;
    uint64_t first;
} owner;

static struct sio_op **owner_list(void *o) {
    return &((owner *)o)->ops;
}

static void on_owner_done(void *o, uint64_t id, const sio_aio_result *res, void *data) {
    (void)res, (void)data;
    owner *w = o;
    w->fired++;
    sio_aio_cancel(w->aio, id);  /* the op being completed: a no-op */
    sio_aio_forget(w->aio, w);   /* drops the owner's other timers */
}

static void owner_lists_and_reentrant_forget(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sio_aio_cfg cfg = {.done = on_owner_done, .owner_ops = owner_list};
    sio_err err;
    sio_aio *aio = sio_aio_create(&loop, &cfg, &err);
    enum { OWNERS = 50, PER = 40 };
    owner *os = calloc(OWNERS, sizeof *os);
    for (int i = 0; i < OWNERS; i++) {
        os[i].aio = aio;
        for (int k = 0; k < PER; k++) assert_true(sio_aio_timer(aio, &os[i], 1 + (uint64_t)k, &err));
    }
    assert_int_equal(sio_aio_pending(aio), OWNERS * PER);
    sio_aio_forget(aio, &os[0]); /* one owner goes away before anything fires */
    assert_int_equal(sio_aio_pending(aio), (OWNERS - 1) * PER);
    assert_null(os[0].ops);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(os[0].fired, 0);
    for (int i = 1; i < OWNERS; i++) {
        assert_int_equal(os[i].fired, 1); /* the first timer, then forgotten */
        assert_null(os[i].ops);
    }
    assert_int_equal(sio_aio_pending(aio), 0);
    sio_aio_destroy(aio);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(os);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(timers_complete_in_deadline_order, setup, teardown),
        cmocka_unit_test_setup_teardown(forgotten_ops_complete_silently, setup, teardown),
        cmocka_unit_test_setup_teardown(http_get_returns_status_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(http_requests_run_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(http_refuses_hosts_off_the_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(http_errors_have_transient_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(absent_capabilities_say_so, setup, teardown),
        cmocka_unit_test(owner_lists_and_reentrant_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
