/* test_aio.c - async ops on a uv loop: timers, HTTP (allow-list, errors,
 * concurrency), and the clear errors of capabilities that are absent.
 * Nothing here depends on speed: requests that must be in flight together
 * or time out are held at the test server's gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

/* The fixture's server is started first, so the allow-list can name its
 * port. */
static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    f->httpd = test_httpd_start(0);
    assert_non_null(f->httpd);
    char entry[32];
    snprintf(entry, sizeof entry, "127.0.0.1:%d", test_httpd_port(f->httpd));
    const char *allow[] = {entry, "[::1]", "api.example.com:8443", NULL};
    sio_aio_cfg cfg = {.done = on_done, .cb_data = &f->r, .http_allow = allow,
                       .http_timeout_ms = 3600000}; /* held requests wait for the test */
    sio_err err;
    f->aio = sio_aio_create(&f->loop, &cfg, &err);
    assert_non_null(f->aio);
    *state = f;
    return 0;
}

/* GET url through f's aio; returns the op id (0 when refused, err set). */
static uint64_t get(fixture *f, const char *url, long timeout_ms, sio_err *err) {
    return sio_aio_http(f->aio, f, "GET", 3, url, strlen(url), NULL, 0, NULL, 0, timeout_ms, err);
}

static void url_of(fixture *f, char *buf, size_t n, const char *path) {
    snprintf(buf, n, "http://127.0.0.1:%d%s", test_httpd_port(f->httpd), path);
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
    char url[128];
    url_of(f, url, sizeof url, "/hello");
    sio_err err;
    const sio_http_header hdrs[] = {{"X-Test", 6, "1", 1}};
    uint64_t id = sio_aio_http(f->aio, f, "GET", 3, url, strlen(url), hdrs, 1, NULL, 0, 0, &err);
    assert_true(id > 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.codes[0], SIO_E_OK);
    assert_int_equal(f->r.status[0], 200);
    assert_string_equal(f->r.bodies[0], "{\"path\":\"/hello\",\"n\":1}");
    char *head = test_httpd_request(f->httpd, 0);
    assert_non_null(strstr(head, "\r\nX-Test: 1\r\n"));
    free(head);
}

/* Runs the loop on this thread until the server holds n requests. */
static void run_until_held(fixture *f, int n) {
    while (test_httpd_held(f->httpd) < n) uv_run(&f->loop, UV_RUN_ONCE);
}

static void http_requests_run_concurrently(void **state) {
    fixture *f = *state;
    test_httpd_hold(f->httpd);
    char url[128];
    url_of(f, url, sizeof url, "/c");
    sio_err err;
    for (int i = 0; i < 50; i++) assert_true(get(f, url, 0, &err));
    /* All 50 reach the server and wait there at the same time. */
    run_until_held(f, 50);
    assert_int_equal(f->r.n, 0);
    test_httpd_open(f->httpd);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 50);
    for (int i = 0; i < 50; i++) assert_int_equal(f->r.status[i], 200);
    assert_int_equal(test_httpd_max_open(f->httpd), 50);
}

static void http_refuses_hosts_off_the_allow_list(void **state) {
    fixture *f = *state;
    sio_err err;
    assert_int_equal(get(f, "http://example.com/", 0, &err), 0);
    assert_int_equal(err.code, SIO_E_SANDBOX);
    assert_non_null(strstr(err.msg, "example.com:80 is not on the allow-list"));
    assert_int_equal(get(f, "file:///etc/passwd", 0, &err), 0);
    assert_int_equal(err.code, SIO_E_SANDBOX);
    assert_non_null(strstr(err.msg, "scheme 'file'"));
    assert_int_equal(get(f, "http://", 0, &err), 0);
    assert_int_equal(err.code, SIO_E_INVAL);
    assert_int_equal(sio_aio_pending(f->aio), 0);
}

/* "host:port" allows that port with either scheme; "host" alone its
 * scheme's default port only; IPv6 in brackets.  An allowed request
 * starts (and is dropped here without waiting for it). */
static void http_allow_list_matches_ports(void **state) {
    fixture *f = *state;
    static const struct {
        const char *url;
        int ok;
    } cases[] = {
        {"http://127.0.0.1/", 0},           {"http://127.0.0.1:6379/", 0},
        {"https://127.0.0.1/", 0},          {"http://[::1]/", 1},
        {"https://[::1]/", 1},              {"http://[::1]:8080/", 0},
        {"http://[::1]:80/", 1},            {"https://api.example.com:8443/", 1},
        {"http://API.example.com:8443/", 1}, {"https://api.example.com/", 0},
        {"http://api.example.com/", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sio_err err;
        uint64_t id = get(f, cases[i].url, 0, &err);
        if ((id != 0) != cases[i].ok)
            fail_msg("%s: %s (%s)", cases[i].url, cases[i].ok ? "refused" : "allowed",
                     id ? "" : err.msg);
        if (id) sio_aio_cancel(f->aio, id);
        else assert_int_equal(err.code, SIO_E_SANDBOX);
    }
    char url[128];
    url_of(f, url, sizeof url, "/");
    sio_err err;
    uint64_t id = get(f, url, 0, &err);
    assert_true(id > 0);
    sio_aio_cancel(f->aio, id);
}

static void http_errors_have_transient_classes(void **state) {
    fixture *f = *state;
    test_httpd_hold(f->httpd); /* never answered: only the timeout can end it */
    char slow[128];
    url_of(f, slow, sizeof slow, "/slow");
    sio_err err;
    assert_true(get(f, slow, 100, &err));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.codes[0], SIO_E_TIMEOUT);
    /* A port bound but not listening (ours for the test): refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char refused[128];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    const char *allow[] = {"*", NULL};
    sio_aio_cfg cfg = {.done = on_done, .cb_data = &f->r, .http_allow = allow};
    sio_aio *any = sio_aio_create(&f->loop, &cfg, &err);
    assert_non_null(any);
    assert_true(sio_aio_http(any, f, "GET", 3, refused, strlen(refused), NULL, 0, NULL, 0, 0, &err));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    close(fd);
    assert_int_equal(f->r.n, 2);
    assert_int_equal(f->r.codes[1], SIO_E_UNAVAILABLE);
    sio_aio_destroy(any);
    assert_int_equal(sio_code_class(SIO_E_TIMEOUT), SIO_TRANSIENT);
    assert_int_equal(sio_code_class(SIO_E_UNAVAILABLE), SIO_TRANSIENT);
}

/* An allow-list entry that is not host or host:port fails creation. */
static void a_bad_allow_entry_is_refused(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *allow[] = {"http://x.io", NULL};
    sio_aio_cfg cfg = {.done = on_done, .http_allow = allow};
    sio_err err;
    assert_null(sio_aio_create(&loop, &cfg, &err));
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_non_null(strstr(err.msg, "is not a host name"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void absent_capabilities_say_so(void **state) {
    fixture *f = *state;
    sio_err err;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    assert_int_equal(sio_aio_redis(f->aio, f, 1, argv, lens, &err), 0);
    assert_int_equal(err.code, SIO_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "redis is not configured"));
    assert_int_equal(sio_aio_produce(f->aio, f, "t", "k", 1, "v", 1, &err), 0);
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
        cmocka_unit_test_setup_teardown(http_allow_list_matches_ports, setup, teardown),
        cmocka_unit_test(a_bad_allow_entry_is_refused),
        cmocka_unit_test_setup_teardown(http_errors_have_transient_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(absent_capabilities_say_so, setup, teardown),
        cmocka_unit_test(owner_lists_and_reentrant_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
