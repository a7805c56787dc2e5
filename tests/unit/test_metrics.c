/* test_metrics.c - the metrics registry (src/telemetry/metrics.h): values,
 * bounded labels, the exposition (checked by Prometheus' own promtool), the
 * librdkafka statistics reader, and the README's list of metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asserts.h"
#include "catalog.h"
#include "health.h"
#include "metrics.h"

static int reset(void **state) {
    (void)state;
    sio_metrics_reset();
    return 0;
}

static char *expose(void) {
    size_t len;
    char *t = sio_metrics_expose(&len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    return t;
}

static void catalog(void) {
    const char *const steps_a[] = {"fetch", "reply"}, *const steps_b[] = {"s1"};
    sio_metrics_wf wfs[] = {{"order", steps_a, 2}, {"we\"ird\n\xff", steps_b, 1}};
    sio_metrics_set_catalog(wfs, 2);
}

static void counters_and_labels(void **state) {
    (void)state;
    catalog();
    size_t order = sio_metrics_workflow("order");
    assert_true(order > 0);
    assert_int_equal(sio_metrics_workflow("nope"), 0);
    assert_int_equal(sio_metrics_workflow(NULL), 0);
    sio_metric_inc(SIO_M_COMMANDS_RECEIVED, order);
    sio_metric_inc(SIO_M_COMMANDS_RECEIVED, order);
    sio_metric_inc(SIO_M_COMMANDS_RECEIVED, sio_metrics_workflow("nope"));
    sio_metric_inc(SIO_M_COMMANDS_FINISHED, sio_metrics_cell2(SIO_M_COMMANDS_FINISHED, order, SIO_OUTCOME_DLQ));
    sio_metric_inc(SIO_M_COMMAND_RETRIES, sio_metrics_cell2(SIO_M_COMMAND_RETRIES, order, sio_metrics_code(SIO_E_REDIS)));
    sio_metric_add(SIO_M_COMMANDS_IN_FLIGHT, 0, 5);
    sio_metric_add(SIO_M_COMMANDS_IN_FLIGHT, 0, -7);
    sio_metric_inc(SIO_M_LIMIT_KILLS, sio_metrics_kill_kind(2)); /* SIO_KILL_MEMORY */
    char *t = expose();
    assert_contains(t, "sio_commands_received_total{workflow=\"order\"} 2\n");
    assert_contains(t, "sio_commands_received_total{workflow=\"unknown\"} 1\n");
    assert_contains(t, "sio_commands_finished_total{workflow=\"order\",outcome=\"dlq\"} 1\n");
    assert_contains(t, "sio_commands_finished_total{workflow=\"order\",outcome=\"success\"} 0\n");
    assert_contains(t, "sio_command_retries_total{workflow=\"order\",code=\"redis\"} 1\n");
    assert_contains(t, "sio_commands_in_flight -2\n");
    assert_contains(t, "sio_sandbox_limit_kills_total{kind=\"memory\"} 1\n");
    /* a label value from a file: escaped, invalid bytes replaced */
    assert_contains(t, "workflow=\"we\\\"ird??\"");
    /* permanent codes are never retried, so they have no series */
    assert_null(strstr(t, "code=\"parse\""));
    free(t);
}

static void histograms(void **state) {
    (void)state;
    catalog();
    size_t order = sio_metrics_workflow("order");
    size_t step = sio_metrics_step(order, "reply");
    assert_true(step > 0);
    assert_int_equal(sio_metrics_step(order, "other"), 0);
    sio_metric_observe_ns(SIO_M_STEP_DURATION, step, 3000000);      /* 3 ms */
    sio_metric_observe_ns(SIO_M_STEP_DURATION, step, 2000000000);   /* 2 s */
    sio_metric_observe_ns(SIO_M_STEP_DURATION, step, 4000000000000); /* past the last */
    char *t = expose();
    assert_contains(t, "sio_step_duration_seconds_bucket{workflow=\"order\",step=\"reply\",le=\"0.005\"} 1\n");
    assert_contains(t, "sio_step_duration_seconds_bucket{workflow=\"order\",step=\"reply\",le=\"2.5\"} 2\n");
    assert_contains(t, "sio_step_duration_seconds_bucket{workflow=\"order\",step=\"reply\",le=\"+Inf\"} 3\n");
    assert_contains(t, "sio_step_duration_seconds_count{workflow=\"order\",step=\"reply\"} 3\n");
    assert_contains(t, "sio_step_duration_seconds_sum{workflow=\"order\",step=\"reply\"} 4002.003\n");
    assert_contains(t, "sio_redis_request_duration_seconds_count 0\n");
    free(t);
}

static void help_and_type_for_every_metric(void **state) {
    (void)state;
    char *t = expose();
    const char *name, *help, *labels;
    sio_mtype type;
    for (size_t i = 0; sio_metrics_info(i, &name, &type, &help, &labels); i++) {
        char want[256];
        snprintf(want, sizeof want, "# TYPE %s %s\n", name,
                 type == SIO_MT_COUNTER ? "counter" : type == SIO_MT_GAUGE ? "gauge" : "histogram");
        assert_contains(t, want);
        snprintf(want, sizeof want, "# HELP %s ", name);
        assert_contains(t, want);
        size_t n = strlen(name);
        if (type == SIO_MT_COUNTER && (n < 6 || strcmp(name + n - 6, "_total") != 0))
            fail_msg("counter %s does not end in _total", name);
    }
    free(t);
}

/* promtool, from Debian's prometheus package, is the judge of the format. */
static void promtool_accepts_the_exposition(void **state) {
    (void)state;
    catalog();
    sio_metric_observe_ns(SIO_M_REDIS_DURATION, 0, 250000);
    sio_metrics_set_lag("dev.commands", 3, 42);
    sio_metrics_set_workers(2);
    sio_metric_set(SIO_M_LUA_MEMORY, 1, 123456);
    int hb = sio_health_register("worker-0");
    char *t = expose();
    assert_contains(t, "sio_consumer_lag_messages{topic=\"dev.commands\",partition=\"3\"} 42\n");
    assert_contains(t, "sio_lua_memory_bytes{worker=\"1\"} 123456\n");
    assert_contains(t, "sio_thread_heartbeat_age_seconds{thread=\"worker-0\"}");
    char path[] = "/tmp/sio-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(t, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(path);
    if (rc != 0) fail_msg("promtool check metrics failed (%d): %s", rc, out);
    free(t);
    sio_health_unregister(hb);
}

static void kafka_statistics(void **state) {
    (void)state;
    const char *consumer =
        "{\"name\":\"c#consumer-1\",\"type\":\"consumer\",\"topics\":{\"cmds\":{\"topic\":\"cmds\","
        "\"partitions\":{\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"consumer_lag\":7},"
        "\"1\":{\"partition\":1,\"fetch_state\":\"none\",\"consumer_lag\":-1},"
        "\"-1\":{\"partition\":-1,\"fetch_state\":\"none\",\"consumer_lag\":-1}}}}}";
    sio_metrics_kafka_stats(consumer, strlen(consumer));
    const char *producer = "{\"name\":\"p\",\"type\":\"producer\",\"msg_cnt\":12}";
    sio_metrics_kafka_stats(producer, strlen(producer));
    sio_metrics_kafka_stats("{not json", 9);
    char *t = expose();
    assert_contains(t, "sio_consumer_lag_messages{topic=\"cmds\",partition=\"0\"} 7\n");
    assert_null(strstr(t, "partition=\"1\""));
    assert_contains(t, "sio_producer_queue_messages 12\n");
    free(t);
    sio_metrics_set_lag("cmds", 0, -1); /* revoked */
    t = expose();
    assert_null(strstr(t, "topic=\"cmds\""));
    free(t);
}

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        sio_metric_inc(SIO_M_DEDUPE_CLAIMS, 0);
        sio_metric_observe_ns(SIO_M_REDIS_DURATION, 0, 1000);
    }
    return NULL;
}

static void concurrent_updates_are_exact(void **state) {
    (void)state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    char *t = expose();
    assert_contains(t, "sio_dedupe_claims_total 400000\n");
    assert_contains(t, "sio_redis_request_duration_seconds_count 400000\n");
    free(t);
}

/* The README's Observability section lists exactly the metrics of the
 * table: every `sio_...` name written there exists, and every metric is
 * written there. */
static void readme_lists_every_metric(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", getenv("SIO_SOURCE_DIR") ? getenv("SIO_SOURCE_DIR") : ".");
    FILE *f = fopen(path, "r");
    if (f == NULL) fail_msg("cannot open %s (set SIO_SOURCE_DIR)", path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *sec = strstr(text, "\n## Observability");
    assert_non_null(sec);
    char *end = strstr(sec + 1, "\n## ");
    if (end) *end = '\0';
    const char *name;
    for (size_t i = 0; sio_metrics_info(i, &name, NULL, NULL, NULL); i++) {
        char want[128];
        snprintf(want, sizeof want, "`%s`", name);
        if (strstr(sec, want) == NULL) fail_msg("README's Observability section does not list %s", want);
    }
    regex_t re;
    assert_int_equal(regcomp(&re, "sio_[a-z_]+", REG_EXTENDED), 0);
    regmatch_t m;
    for (const char *p = sec; regexec(&re, p, 1, &m, 0) == 0; p += m.rm_eo) {
        char word[128];
        snprintf(word, sizeof word, "%.*s", (int)(m.rm_eo - m.rm_so), p + m.rm_so);
        size_t wl = strlen(word);
        const char *suffixes[] = {"_bucket", "_sum", "_count"};
        int found = 0;
        for (size_t i = 0; !found && sio_metrics_info(i, &name, NULL, NULL, NULL); i++) {
            size_t nl = strlen(name);
            found = strcmp(word, name) == 0;
            for (int k = 0; !found && k < 3; k++)
                found = wl == nl + strlen(suffixes[k]) && strncmp(word, name, nl) == 0 &&
                        strcmp(word + nl, suffixes[k]) == 0;
        }
        if (!found && strncmp(word, "sio_orchestrator", 16) != 0 && strncmp(word, "sio_core", 8) != 0)
            fail_msg("README's Observability section names %s, which is not a metric", word);
    }
    regfree(&re);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(counters_and_labels, reset),
        cmocka_unit_test_setup(histograms, reset),
        cmocka_unit_test_setup(help_and_type_for_every_metric, reset),
        cmocka_unit_test_setup(promtool_accepts_the_exposition, reset),
        cmocka_unit_test_setup(kafka_statistics, reset),
        cmocka_unit_test_setup(concurrent_updates_are_exact, reset),
        cmocka_unit_test(readme_lists_every_metric),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
