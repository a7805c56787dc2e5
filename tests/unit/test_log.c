/* test_log.c - the one logging route (src/core/log.h): every line is one
 * valid JSON object on stderr, carrying the thread's trace; a rate-limited
 * line loses nothing uncounted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asserts.h"
#include "json.h"
#include "log.h"
#include "redact.h"

static char path[] = "/tmp/sio-test-log-XXXXXX";
static int saved_stderr = -1;

/* stderr goes to a temporary file for the test. */
static int capture(void **state) {
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    return 0;
}

static int release(void **state) {
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    /* what was not a log line (cmocka's failure messages) goes to stderr */
    FILE *f = fopen(path, "r");
    char buf[1024];
    while (f && fgets(buf, sizeof buf, f))
        if (buf[0] != '{') fputs(buf, stderr);
    if (f) fclose(f);
    unlink(path);
    strcpy(path, "/tmp/sio-test-log-XXXXXX");
    sio_log_set_trace(NULL, NULL);
    sio_log_set_level(SIO_LOG_INFO);
    return 0;
}

/* Every line written so far, parsed (each must be one valid JSON object). */
static json_t *lines(void) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        assert_int_equal(line[len - 1], '\n');
        sio_err err;
        json_t *v = sio_json_parse(line, (size_t)len - 1, &err);
        if (v == NULL) fail_msg("not JSON (%s): %s", err.msg, line);
        assert_true(json_is_object(v));
        json_array_append_new(all, v);
    }
    free(line);
    fclose(f);
    return all;
}

static const char *field(json_t *line, const char *key) {
    return json_string_value(json_object_get(line, key));
}

/* A sink that keeps the last line. */
typedef struct sink_buf {
    char text[512];
    size_t len;
    int calls;
} sink_buf;

static void to_buf(void *ud, const char *line, size_t len) {
    sink_buf *b = ud;
    b->calls++;
    b->len = len < sizeof b->text ? len : sizeof b->text;
    memcpy(b->text, line, b->len);
}

static void lines_are_json_with_the_trace(void **state) {
    (void)state;
    sio_log_json(SIO_LOG_INFO, "plain", NULL);
    sio_log_json(SIO_LOG_WARN, "bad \xff bytes \"quoted\"\n",
                 json_pack("{s:o,s:i}", "detail", sio_json_cstr("caf\xc3\xa9 \xc0"), "n", 7));
    const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                             0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    sio_log_set_trace(tid, sid);
    sio_log_json(SIO_LOG_ERROR, "traced", json_pack("{s:s}", "k", "v"));
    sio_log_set_trace(NULL, NULL);
    sio_log_json(SIO_LOG_DEBUG, "below the level", NULL); /* dropped */
    sio_log_json(SIO_LOG_INFO, "untraced again", NULL);
    json_t *all = lines();
    assert_int_equal(json_array_size(all), 4);
    json_t *l0 = json_array_get(all, 0), *l1 = json_array_get(all, 1), *l2 = json_array_get(all, 2),
           *l3 = json_array_get(all, 3);
    assert_string_equal(field(l0, "level"), "info");
    assert_string_equal(field(l0, "msg"), "plain");
    assert_non_null(field(l0, "ts"));
    assert_null(json_object_get(l0, "trace_id"));
    assert_string_equal(field(l1, "msg"), "bad \xef\xbf\xbd bytes \"quoted\"\n");
    assert_string_equal(field(l1, "detail"), "caf\xc3\xa9 \xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(l1, "n")), 7);
    assert_string_equal(field(l2, "level"), "error");
    assert_string_equal(field(l2, "k"), "v");
    assert_string_equal(field(l2, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(field(l2, "span_id"), "00f067aa0ba902b7");
    assert_null(json_object_get(l3, "trace_id"));
    json_decref(all);
    /* the same route to a sink of one's own (a sandbox's: host.log, print)
     * carries the thread's trace too, and a script cannot forge it */
    sink_buf got = {0};
    json_t *f = json_pack("{s:i,s:s}", "worker", 2, "trace_id", "forged");
    sio_log_set_trace(tid, sid);
    sio_log_emit(to_buf, &got, "info", "sink", 4, f);
    sio_log_set_trace(NULL, NULL);
    json_decref(f);
    assert_int_equal(got.calls, 1);
    assert_int_equal(got.text[got.len - 1], '\n');
    json_t *v = sio_json_parse(got.text, got.len - 1, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "worker")), 2);
    assert_string_equal(field(v, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(field(v, "span_id"), "00f067aa0ba902b7");
    json_decref(v);
}

/* A sink that keeps a whole line of any length. */
typedef struct big_sink {
    char *text;
    size_t len;
} big_sink;

static void to_big(void *ud, const char *line, size_t len) {
    big_sink *b = ud;
    free(b->text);
    b->text = malloc(len + 1);
    memcpy(b->text, line, len);
    b->text[len] = '\0';
    b->len = len;
}

/* A line is written straight from its parts unless a secret is
 * registered, then through a redacted tree: both give the same text (bar
 * the time), whatever the fields hold and however long the line. */
static void both_routes_write_the_same_line(void **state) {
    (void)state;
    char long_text[3000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    json_t *f = json_pack("{s:o,s:I,s:f,s:[i,s,n,b],s:{s:s},s:s,s:s,s:s}", "id",
                          sio_json_cstr("a\xff\x01\"b"), "offset", (json_int_t)-41, "ms", 0.25,
                          "list", 1, "two", 1, "nested", "k", "v\n", "msg", "not the message",
                          "long", long_text, "level", "not the level");
    const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const uint8_t sid[8] = {0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x01, 0x02};
    big_sink direct = {0}, tree = {0};
    sio_log_set_trace(tid, sid);
    sio_log_emit(to_big, &direct, "warn", "one \xc3\xa9 line", 11, f);
    sio_redactor *red = sio_redact_global();
    assert_int_equal(sio_redact_add(red, "unused", "never-in-the-line", 17, NULL), 0);
    sio_log_emit(to_big, &tree, "warn", "one \xc3\xa9 line", 11, f);
    sio_redact_reset(red);
    sio_log_set_trace(NULL, NULL);
    json_decref(f);
    assert_true(direct.len > sizeof long_text);
    const char *a = strstr(direct.text, ",\"level\""), *b = strstr(tree.text, ",\"level\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_true(strncmp(direct.text, "{\"ts\":\"", 7) == 0);
    json_t *v = sio_json_parse(direct.text, direct.len - 1, NULL);
    assert_non_null(v);
    assert_string_equal(field(v, "msg"), "one \xc3\xa9 line");
    assert_string_equal(field(v, "span_id"), "a0b0c0d0e0f00102");
    json_decref(v);
    free(direct.text);
    free(tree.text);
}

/* Every call of a limited line is either written or counted as suppressed
 * in a later line (or still pending in the limiter): nothing goes missing
 * uncounted, whatever the clock does during the burst. */
static void a_limited_line_counts_what_it_holds_back(void **state) {
    (void)state;
    static sio_log_limit lim = SIO_LOG_LIMIT(3);
    int calls = 0, written = 0;
    for (int i = 0; i < 100; i++, calls++) written += sio_log_limited(&lim, SIO_LOG_WARN, "flood", NULL);
    assert_true(written >= 3); /* the first window's */
    assert_true(written <= 6); /* at most two windows' worth */
    /* the next line written carries the count: call until one is (a new
     * second opens a window; the bound is for a broken limiter) */
    time_t until = time(NULL) + 10;
    int more;
    do {
        more = sio_log_limited(&lim, SIO_LOG_WARN, "flood", json_pack("{s:i}", "i", calls));
        calls++;
        written += more;
    } while (!more && time(NULL) < until);
    assert_true(more);
    json_t *all = lines();
    json_int_t suppressed = 0;
    size_t i;
    json_t *l;
    json_array_foreach(all, i, l) suppressed += json_integer_value(json_object_get(l, "suppressed"));
    assert_int_equal(json_array_size(all), (size_t)written);
    assert_true(suppressed > 0);
    assert_int_equal(written + suppressed + (json_int_t)atomic_load(&lim.suppressed), calls);
    json_decref(all);
    /* below the level: neither written nor counted */
    sio_log_set_level(SIO_LOG_ERROR);
    uint64_t before = atomic_load(&lim.suppressed);
    for (int k = 0; k < 10; k++) assert_int_equal(sio_log_limited(&lim, SIO_LOG_WARN, "x", NULL), 1);
    assert_int_equal(atomic_load(&lim.suppressed), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lines_are_json_with_the_trace, capture, release),
        cmocka_unit_test_setup_teardown(a_limited_line_counts_what_it_holds_back, capture, release),
        cmocka_unit_test(both_routes_write_the_same_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
