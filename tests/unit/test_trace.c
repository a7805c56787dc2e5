/* test_trace.c - the span exporter's bounded queue (src/telemetry/trace.h):
 * ending spans never waits for the collector; what does not fit is dropped
 * and counted; every span is either exported or counted as dropped.  The
 * collector here never answers until the test says so, so the outcome does
 * not depend on how fast the machine ends 600 spans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "asserts.h"
#include "metrics.h"
#include "trace.h"

/* The value of an unlabelled counter in the exposition. */
static long long counter(const char *name) {
    char *t = sio_metrics_expose(NULL);
    assert_non_null(t);
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    char *p = strstr(t, want);
    long long v = p ? strtoll(p + strlen(want), NULL, 10) : -1;
    free(t);
    return v;
}

/* A collector that never answers: a listening socket the test does not
 * accept from until it wants to.  The exporter's connection waits in the
 * kernel's accept queue and its request is never answered, however long
 * the test takes, so nothing can be exported meanwhile. */
static int silent_collector(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads an HTTP request head from fd (until the blank line) into buf. */
static void read_head(int fd, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < n && strstr(buf, "\r\n\r\n") == NULL) {
        ssize_t k = read(fd, buf + len, n - 1 - len);
        assert_true(k > 0);
        len += (size_t)k;
        buf[len] = '\0';
    }
}

static void full_queue_drops_and_counts(void **state) {
    (void)state;
    int port, lfd = silent_collector(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);
    sio_trace_cfg cfg = {.url = url, .service_name = "t", .queue_max = 8,
                         .sampler = {SIO_SAMPLER_ALWAYS_ON, 1}};
    sio_err err;
    assert_int_equal(sio_trace_start(&cfg, &err), 0);
    for (int i = 0; i < 600; i++) {
        sio_span *s = sio_span_start("x", SIO_SPAN_INTERNAL, NULL);
        assert_true(sio_span_recording(s));
        sio_span_end(s); /* never waits: the test gets here with nobody answering */
    }
    /* nothing was answered, so nothing is exported; at most one batch (<= 8)
     * is in flight and 8 are queued, every other span was dropped */
    assert_int_equal(counter("sio_trace_spans_exported_total"), 0);
    assert_true(counter("sio_trace_spans_dropped_total") >= 600 - 16);
    /* the exporter did post: its request is waiting in the accept queue */
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    char head[4096];
    read_head(cfd, head, sizeof head);
    assert_true(strncmp(head, "POST /v1/traces HTTP/1.1\r\n", 26) == 0);
    assert_non_null(strcasestr(head, "\r\nContent-Type: application/x-protobuf\r\n"));
    /* the collector goes away: the request in flight fails, what is still
     * queued cannot be delivered; every span ends up counted */
    close(cfd);
    close(lfd);
    sio_trace_stop();
    assert_int_equal(counter("sio_trace_spans_exported_total"), 0);
    assert_int_equal(counter("sio_trace_spans_dropped_total"), 600);
    /* after stop nothing is recorded */
    sio_span *s = sio_span_start("late", SIO_SPAN_INTERNAL, NULL);
    assert_false(sio_span_recording(s));
    char tp[SIO_TRACEPARENT_LEN + 1];
    sio_span_traceparent(s, tp); /* ids still propagate */
    assert_int_equal(strlen(tp), SIO_TRACEPARENT_LEN);
    sio_span_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_queue_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
