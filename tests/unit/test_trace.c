/* test_trace.c - the span exporter's bounded queue (src/telemetry/trace.h):
 * ending spans never waits for the collector; what does not fit is dropped
 * and counted; every span is either exported or counted as dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "httpd.h"
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

static void full_queue_drops_and_counts(void **state) {
    (void)state;
    /* a collector that holds each request for 5 s: the first batch stays in
     * flight while the test ends 600 spans into a queue of 8 */
    test_httpd *h = test_httpd_start(5000);
    assert_non_null(h);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", test_httpd_port(h));
    sio_trace_cfg cfg = {.url = url, .service_name = "t", .queue_max = 8,
                         .sampler = {SIO_SAMPLER_ALWAYS_ON, 1}};
    sio_err err;
    assert_int_equal(sio_trace_start(&cfg, &err), 0);
    for (int i = 0; i < 600; i++) {
        sio_span *s = sio_span_start("x", SIO_SPAN_INTERNAL, NULL);
        assert_true(sio_span_recording(s));
        sio_span_end(s);
    }
    /* at most one batch (<= 8) in flight and 8 queued were accepted */
    assert_true(counter("sio_trace_spans_dropped_total") >= 600 - 16);
    sio_trace_stop();
    assert_int_equal(counter("sio_trace_spans_dropped_total") + counter("sio_trace_spans_exported_total"), 600);
    assert_true(test_httpd_requests(h) >= 1);
    test_httpd_stop(h);
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
