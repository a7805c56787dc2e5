/* test_redact.c - secret values replaced in texts, JSON trees and JSON
 * texts, as they are and JSON-escaped; lines that cannot be read withheld;
 * the process's log lines redacted (log.c's one writer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asserts.h"
#include "json.h"
#include "log.h"
#include "redact.h"

static sio_redactor *with(const char *name, const char *value) {
    sio_redactor *r = sio_redactor_new();
    sio_err err;
    assert_non_null(r);
    assert_int_equal(sio_redact_add(r, name, value, strlen(value), &err), 0);
    return r;
}

/* sio_redact_text on a NUL-terminated s: the result, or s itself (copied)
 * when nothing matched. */
static char *text(sio_redactor *r, const char *s) {
    size_t n = 0;
    char *out = sio_redact_text(r, s, strlen(s), &n, NULL);
    if (out == NULL) return strdup(s);
    assert_int_equal(n, strlen(out));
    return out;
}

static void every_occurrence_replaced(void **state) {
    (void)state;
    sio_redactor *r = with("api_token", "s3cr3t");
    char *out = text(r, "Bearer s3cr3t, again s3cr3ts3cr3t.");
    assert_string_equal(out, "Bearer [redacted:api_token], again [redacted:api_token][redacted:api_token].");
    free(out);
    assert_null(sio_redact_text(r, "nothing here s3cr3", 18, NULL, NULL));
    sio_redactor_free(r);
}

static void longest_value_first(void **state) {
    (void)state;
    sio_redactor *r = with("short", "abc");
    sio_err err;
    assert_int_equal(sio_redact_add(r, "long", "xabcx", 5, &err), 0);
    assert_int_equal(sio_redact_add(r, "again", "abc", 3, &err), 0); /* held: kept as "short" */
    assert_int_equal(sio_redact_add(r, "empty", "", 0, &err), 0);    /* ignored */
    assert_int_equal(sio_redact_count(r), 2);
    char *out = text(r, "xabcx abc");
    assert_string_equal(out, "[redacted:long] [redacted:short]");
    free(out);
    sio_redactor_free(r);
}

/* A value inside a JSON text (a step's payload encoded by cjson, which
 * writes '/' as "\/") or a JSON text in a JSON string is still found. */
static void escaped_forms_found(void **state) {
    (void)state;
    sio_redactor *r = with("tok", "a/b\"c\\d\ne");
    char *out = text(r, "{\"t\":\"a\\/b\\\"c\\\\d\\ne\"}");
    assert_string_equal(out, "{\"t\":\"[redacted:tok]\"}");
    free(out);
    out = text(r, "x a\\u002fb\\u0022c\\u005cd\\u000ae y"); /* every byte as \u00XX */
    assert_string_equal(out, "x [redacted:tok] y");
    free(out);
    out = text(r, "raw a/b\"c\\d\ne end");
    assert_string_equal(out, "raw [redacted:tok] end");
    free(out);
    sio_redactor_free(r);
}

static void json_trees_in_place(void **state) {
    (void)state;
    sio_redactor *r = with("tok", "s3cr3t");
    sio_err err;
    const char *doc = "{\"a\":\"x s3cr3t\",\"b\":[1,\"s3cr3t\",{\"s3cr3t\":true}],"
                      "\"command\":{\"attrs\":\"s3cr3t\"}}";
    json_t *v = sio_json_parse(doc, strlen(doc), &err);
    assert_non_null(v);
    assert_int_equal(sio_redact_json(r, v, "command"), 3);
    char *t = sio_json_dump(v, NULL);
    assert_string_equal(t, "{\"a\":\"x [redacted:tok]\",\"b\":[1,\"[redacted:tok]\",{\"[redacted:tok]\":true}],"
                           "\"command\":{\"attrs\":\"s3cr3t\"}}");
    free(t);
    json_decref(v);
    sio_redactor_free(r);
}

static void json_texts_and_withheld_lines(void **state) {
    (void)state;
    sio_redactor *r = with("tok", "s3cr3t");
    const char *line = "{\"msg\":\"token s3cr3t\",\"payload\":\"{\\\"k\\\":\\\"s3cr3t\\\"}\"}";
    size_t n = 0;
    char *out = sio_redact_json_text(r, line, strlen(line), NULL, &n);
    assert_non_null(out);
    assert_string_equal(out, "{\"msg\":\"token [redacted:tok]\",\"payload\":\"{\\\"k\\\":\\\"[redacted:tok]\\\"}\"}");
    free(out);
    assert_null(sio_redact_json_text(r, "{\"msg\":\"clean\"}", 15, NULL, &n));
    /* a log line's own "ts" is left as it is */
    const char *ts = "{\"ts\":\"s3cr3t\",\"msg\":\"s3cr3t\"}";
    out = sio_redact_json_text(r, ts, strlen(ts), "ts", &n);
    assert_non_null(out);
    assert_string_equal(out, "{\"ts\":\"s3cr3t\",\"msg\":\"[redacted:tok]\"}");
    free(out);
    /* not JSON (a line cut short) and holding the value: withheld */
    const char *cut = "{\"msg\":\"token s3cr3t";
    out = sio_redact_json_text(r, cut, strlen(cut), NULL, &n);
    assert_non_null(out);
    assert_contains(out, "log line withheld");
    assert_null(strstr(out, "s3cr3t"));
    sio_err err;
    json_t *v = sio_json_parse(out, n, &err);
    assert_non_null(v);
    json_decref(v);
    free(out);
    sio_redactor_free(r);
}

static void nothing_held_changes_nothing(void **state) {
    (void)state;
    sio_redactor *r = sio_redactor_new();
    assert_null(sio_redact_text(r, "s3cr3t", 6, NULL, NULL));
    assert_null(sio_redact_json_text(r, "{\"a\":1}", 7, NULL, NULL));
    sio_redact_reset(r);
    assert_int_equal(sio_redact_count(r), 0);
    sio_redactor_free(r);
}

/* Every log line goes through sio_log_emit, which redacts with the
 * process's redactor whatever the sink: stderr is a pipe here, read back;
 * a sandbox's sink (the harness's capture) gets the redacted line too, and
 * the fields it was lent are left as they were. */
static char captured[1024];
static void capture(void *ud, const char *line, size_t len) {
    (void)ud;
    snprintf(captured, sizeof captured, "%.*s", (int)len, line);
}

static void log_lines_redacted(void **state) {
    (void)state;
    sio_err err;
    assert_int_equal(sio_redact_add(sio_redact_global(), "db_password", "hunter2-x", 9, &err), 0);
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDERR_FILENO);
    sio_log_json(SIO_LOG_WARN, "connecting with hunter2-x",
                 json_pack("{s:s}", "url", "postgres://u:hunter2-x@db/x"));
    json_t *lent = json_pack("{s:s}", "detail", "pw=hunter2-x");
    sio_log_emit(NULL, NULL, "warn", "lent fields", 11, lent);
    const char *msg = "from the sandbox: hunter2-x";
    sio_log_emit(NULL, NULL, "info", msg, strlen(msg), NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char got[4096];
    ssize_t n = read(fds[0], got, sizeof got - 1);
    close(fds[0]);
    assert_true(n > 0);
    got[n] = '\0';
    assert_null(strstr(got, "hunter2"));
    assert_contains(got, "\"msg\":\"connecting with [redacted:db_password]\"");
    assert_contains(got, "\"url\":\"postgres://u:[redacted:db_password]@db/x\"");
    assert_contains(got, "\"detail\":\"pw=[redacted:db_password]\"");
    assert_contains(got, "\"msg\":\"from the sandbox: [redacted:db_password]\"");
    /* the caller's fields are its own: not rewritten */
    assert_string_equal(json_string_value(json_object_get(lent, "detail")), "pw=hunter2-x");
    /* three lines, each valid JSON */
    int lines = 0;
    for (char *p = got, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1, lines++) {
        json_t *v = sio_json_parse(p, (size_t)(nl - p), &err);
        if (v == NULL) fail_msg("not JSON: %.*s (%s)", (int)(nl - p), p, err.msg);
        json_decref(v);
    }
    assert_int_equal(lines, 3);
    /* another sink */
    sio_log_emit(capture, NULL, "info", "print: hunter2-x", 16, lent);
    assert_null(strstr(captured, "hunter2"));
    assert_contains(captured, "\"msg\":\"print: [redacted:db_password]\"");
    json_decref(lent);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_occurrence_replaced),
        cmocka_unit_test(longest_value_first),
        cmocka_unit_test(escaped_forms_found),
        cmocka_unit_test(json_trees_in_place),
        cmocka_unit_test(json_texts_and_withheld_lines),
        cmocka_unit_test(nothing_held_changes_nothing),
        cmocka_unit_test(log_lines_redacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
