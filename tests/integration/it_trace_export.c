/* it_trace_export.c - spans reach a real OpenTelemetry Collector (the one
 * scripts/otelcol builds: OTLP/HTTP receiver, file exporter) with their
 * parent/child structure, a continued incoming traceparent, attributes and
 * error status intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asserts.h"
#include "json.h"
#include "metrics.h"
#include "trace.h"

extern char **environ;

static char dir[] = "/tmp/sio-otel-XXXXXX";
static char out_path[256];
static pid_t collector;
static int cport;

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* The collector binary (built once by scripts/otelcol/build). */
static void collector_path(char *buf, size_t n) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/scripts/otelcol/build", getenv("SIO_SOURCE_DIR") ? getenv("SIO_SOURCE_DIR") : ".");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (fgets(buf, (int)n, p) == NULL) buf[0] = '\0';
    pclose(p);
    buf[strcspn(buf, "\n")] = '\0';
    if (access(buf, X_OK) != 0) fail_msg("no collector at '%s' (run scripts/setup)", buf);
}

static int up(void **state) {
    (void)state;
    assert_non_null(mkdtemp(dir));
    cport = free_port();
    snprintf(out_path, sizeof out_path, "%s/spans.jsonl", dir);
    char cfg[512], bin[1024];
    snprintf(cfg, sizeof cfg, "%s/collector.yaml", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:%d\n"
               "exporters:\n  file:\n    path: %s\n    flush_interval: 100ms\n"
               "service:\n  telemetry:\n    metrics:\n      level: none\n"
               "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n",
            cport, out_path);
    fclose(f);
    collector_path(bin, sizeof bin);
    char log[300];
    snprintf(log, sizeof log, "%s/collector.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {bin, "--config", cfg, NULL};
    assert_int_equal(posix_spawn(&collector, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    /* ready when its log says so (the observed event, no sleep-and-hope) */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "grep -q 'Everything is ready' %s", log);
    for (int i = 0; system(cmd) != 0; i++) {
        if (i > 3000) fail_msg("collector did not start; see %s", log);
        usleep(20000);
    }
    return 0;
}

static int down(void **state) {
    (void)state;
    kill(collector, SIGTERM);
    waitpid(collector, NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Every span the collector wrote, as one array (re-read until n arrive). */
static json_t *spans_written(size_t n) {
    for (int tries = 0; tries < 3000; tries++, usleep(20000)) {
        FILE *f = fopen(out_path, "r");
        if (f == NULL) continue;
        json_t *all = json_array();
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            json_t *doc = sio_json_parse(line, (size_t)len - (line[len - 1] == '\n'), NULL);
            size_t i, k, m;
            json_t *rs, *ss, *sp;
            json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
                json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss)
                    json_array_foreach(json_object_get(ss, "spans"), m, sp)
                        json_array_append(all, sp);
            json_decref(doc);
        }
        free(line);
        fclose(f);
        if (json_array_size(all) >= n) return all;
        json_decref(all);
    }
    fail_msg("the collector did not write %zu spans", n);
    return NULL;
}

static json_t *by_name(json_t *spans, const char *name) {
    size_t i;
    json_t *s;
    json_array_foreach(spans, i, s) if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0) return s;
    fail_msg("no span named %s", name);
    return NULL;
}

static const char *str(json_t *span, const char *key) {
    return json_string_value(json_object_get(span, key));
}

static const char *attr(json_t *span, const char *key) {
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a) {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
            json_t *v = json_object_get(a, "value");
            json_t *s = json_object_get(v, "stringValue");
            return s ? json_string_value(s) : json_string_value(json_object_get(v, "intValue"));
        }
    }
    return NULL;
}

static void command_step_http_tree(void **state) {
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", cport);
    sio_trace_cfg cfg = {.url = url, .service_name = "sio-it",
                         .sampler = {SIO_SAMPLER_PARENTBASED_ALWAYS_ON, 1}};
    sio_err err;
    assert_int_equal(sio_trace_start(&cfg, &err), 0);
    const char *incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    sio_trace_ctx parent;
    assert_int_equal(sio_traceparent_parse(incoming, strlen(incoming), &parent), 0);
    assert_int_equal(sio_tracestate_parse("rojo=1", 6, parent.tracestate, sizeof parent.tracestate), 0);
    sio_span *cmd = sio_span_start("process it.commands", SIO_SPAN_CONSUMER, &parent);
    assert_true(sio_span_recording(cmd));
    sio_span_set_str(cmd, "messaging.system", "kafka");
    sio_span_set_int(cmd, "messaging.kafka.offset", 41);
    sio_span *step = sio_span_start("step fetch", SIO_SPAN_INTERNAL, sio_span_context(cmd));
    sio_span *http = sio_span_start("GET", SIO_SPAN_CLIENT, sio_span_context(step));
    sio_span_set_str(http, "url.full", "http://users.example/7");
    sio_span_error(http, "status 503");
    char tp[SIO_TRACEPARENT_LEN + 1];
    sio_span_traceparent(cmd, tp);
    assert_true(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0); /* same trace */
    sio_span_end(http);
    sio_span_end(step);
    sio_span_end(cmd);
    sio_trace_stop(); /* flushes */

    json_t *spans = spans_written(3);
    json_t *c = by_name(spans, "process it.commands"), *s = by_name(spans, "step fetch"),
           *h = by_name(spans, "GET");
    assert_string_equal(str(c, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(s, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(h, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(c, "parentSpanId"), "00f067aa0ba902b7"); /* continued */
    assert_string_equal(str(s, "parentSpanId"), str(c, "spanId"));
    assert_string_equal(str(h, "parentSpanId"), str(s, "spanId"));
    /* what goes into outgoing headers is the command span's own context */
    assert_memory_equal(tp + 36, str(c, "spanId"), 16);
    assert_string_equal(str(c, "traceState"), "rojo=1");
    assert_int_equal(json_integer_value(json_object_get(c, "kind")), SIO_SPAN_CONSUMER);
    assert_string_equal(attr(c, "messaging.system"), "kafka");
    assert_string_equal(attr(c, "messaging.kafka.offset"), "41");
    assert_string_equal(attr(h, "url.full"), "http://users.example/7");
    json_t *st = json_object_get(h, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "status 503");
    json_decref(spans);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(command_step_http_tree, up, down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
