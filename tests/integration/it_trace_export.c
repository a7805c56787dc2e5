/* it_trace_export.c - spans reach a real OpenTelemetry Collector (the one
 * scripts/otelcol builds: OTLP/HTTP receiver, file exporter) with their
 * parent/child structure, a continued incoming traceparent, attributes and
 * error status intact:
 *   - command_step_http_tree: spans made through trace.h directly;
 *   - serve_continues_the_trace: a real `serve` against the dev
 *     environment's Kafka and Redis takes a command whose headers carry a
 *     traceparent and runs a workflow whose step calls a local HTTP server;
 *     the collector gets command -> step -> http under the incoming trace,
 *     the HTTP request and every message the command produced carry that
 *     trace's id;
 *   - serve_continues_the_trace_exactly_once: the same with
 *     PROCESSING_GUARANTEE=exactly_once, where the transaction thread
 *     writes the messages and the command's span ends at the commit. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "asserts.h"
#include "httpd.h"
#include "itutil.h"
#include "json.h"
#include "metrics.h"
#include "trace.h"

extern char **environ;

static char dir[64];
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
    snprintf(dir, sizeof dir, "/tmp/sio-otel-XXXXXX");
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
    /* what the protobuf writer must get right: negative ints, bytes that
     * are not UTF-8, lengths over 127 (multi-byte varints) */
    sio_span_set_int(http, "neg", -5);
    sio_span_set_str(http, "bad", "a\xff" "b");
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    sio_span_set_str(http, "long", longv);
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
    assert_string_equal(attr(h, "neg"), "-5");
    assert_string_equal(attr(h, "bad"), "a\xef\xbf\xbd" "b");
    assert_string_equal(attr(h, "long"), longv);
    json_t *st = json_object_get(h, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "status 503");
    json_t *ev = json_array_get(json_object_get(h, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "name")), "exception");
    assert_string_equal(attr(ev, "exception.message"), "status 503");
    assert_non_null(json_object_get(ev, "timeUnixNano"));
    json_decref(spans);
}

/* --- a real serve ------------------------------------------------------------*/

static const char *const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
static const char *const PARENT_ID = "b7ad6b7169203331";

/* Waits until the file at path contains needle (the observed event). */
static void wait_for_text(const char *path, const char *needle) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -qF -- '%s' %s 2>/dev/null", needle, path);
    for (int i = 0; system(cmd) != 0; i++) {
        if (i > 6000) fail_msg("%s never showed '%s'", path, needle);
        usleep(20000);
    }
}

/* The last value of header name in h, as a string ("" when absent). */
static void header(rd_kafka_headers_t *h, const char *name, char *out, size_t n) {
    const void *v;
    size_t len;
    out[0] = '\0';
    if (h && rd_kafka_header_get_last(h, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && v)
        snprintf(out, n, "%.*s", (int)len, (const char *)v);
}

static pid_t spawn_serve(char **env, const char *log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *bin = getenv("SIO_BIN");
    assert_non_null(bin);
    char *argv[] = {bin, "serve", NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, env), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Produces the command with a traceparent and a tracestate header. */
static void send_command(const char *topic, const char *cid, const char *value) {
    char errstr[256], tp[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", it_brokers(), errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(p);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    snprintf(tp, sizeof tp, "00-%s-%s-01", TRACE_ID, PARENT_ID);
    rd_kafka_header_add(h, "traceparent", -1, tp, -1);
    rd_kafka_header_add(h, "tracestate", -1, "rojo=00f067aa0ba902b7", -1);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(cid, strlen(cid)),
                                       RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                                       RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* Reads the responses topic (one partition) from the start until the
 * success for cid; each message's traceparent and tracestate go into
 * tps / tss (at most n), their statuses into statuses.  Returns the count. */
static int read_responses(const char *topic, const char *cid, char tps[][64], char tss[][64],
                          char statuses[][16], int n) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", it_brokers(), errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "group.id", it_unique("it.trace.reader"), errstr, sizeof errstr);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    int got = 0, done = 0;
    for (int polls = 0; !done && polls < 600; polls++) { /* a bound for a broken test */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && got < n) {
            rd_kafka_headers_t *h = NULL;
            if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = NULL;
            header(h, "traceparent", tps[got], 64);
            header(h, "tracestate", tss[got], 64);
            json_t *v = sio_json_parse(m->payload, m->len, NULL);
            snprintf(statuses[got], 16, "%s", json_string_value(json_object_get(v, "status")));
            done = strcmp(statuses[got], "success") == 0 &&
                   strcmp(json_string_value(json_object_get(v, "correlation_id")), cid) == 0;
            json_decref(v);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    if (!done) fail_msg("no success for %s on %s", cid, topic);
    return got;
}

/* The span of the trace named name, or NULL. */
static json_t *in_trace(json_t *spans, const char *name) {
    size_t i;
    json_t *s;
    json_array_foreach(spans, i, s) {
        if (strcmp(str(s, "traceId"), TRACE_ID) == 0 && strcmp(str(s, "name"), name) == 0) return s;
    }
    return NULL;
}

/* guarantee: the PROCESSING_GUARANTEE=... setting (exactly once, the
 * transaction thread writes the messages and the span ends at commit). */
static uint64_t nanos(json_t *o, const char *key) {
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return strtoull(v, NULL, 10);
}

/* The command span's phase events (bench/run latency's breakdown reads
 * them): exactly `want`, in that order, within the span, which starts when
 * the message was polled - after the producer made it. */
static void assert_phases(json_t *cmd, const char *const *want, size_t n) {
    json_t *evs = json_object_get(cmd, "events");
    assert_int_equal(json_array_size(evs), n);
    uint64_t t = nanos(cmd, "startTimeUnixNano");
    const char *ts = attr(cmd, "sio.kafka.timestamp_ms");
    assert_non_null(ts);
    assert_string_equal(attr(cmd, "sio.kafka.timestamp_type"), "create");
    assert_true(strtoull(ts, NULL, 10) <= t / 1000000);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(evs, i);
        assert_string_equal(json_string_value(json_object_get(e, "name")), want[i]);
        uint64_t et = nanos(e, "timeUnixNano");
        assert_true(et >= t);
        t = et;
    }
    assert_true(nanos(cmd, "endTimeUnixNano") >= t);
}

static void continues_the_trace(const char *guarantee) {
    test_httpd *web = test_httpd_start(0);
    assert_non_null(web);
    /* a workflow whose one step calls the local server */
    char wfdir[300], path[400], log[300];
    snprintf(wfdir, sizeof wfdir, "%s/workflows", dir);
    assert_int_equal(mkdir(wfdir, 0755), 0);
    snprintf(path, sizeof path, "%s/traced.yaml", wfdir);
    FILE *f = fopen(path, "w");
    fprintf(f, "intent: traced\nsteps:\n  - id: fetch\n    tool:\n      name: http\n"
               "      args:\n        url: \"http://127.0.0.1:%d/users/7\"\n"
               "    publish_result: true\n", test_httpd_port(web));
    fclose(f);
    char topics[200], cmds[256], resps[256], group[256], prefix[256], endpoint[100], wenv[400],
        brokers[512], redis[300], bin_dir[600];
    snprintf(topics, sizeof topics, "%s", it_unique("it.trace"));
    snprintf(cmds, sizeof cmds, "KAFKA_COMMANDS_TOPIC=%s.commands", topics);
    snprintf(resps, sizeof resps, "KAFKA_RESPONSES_TOPIC=%s.responses", topics);
    snprintf(group, sizeof group, "KAFKA_GROUP_ID=%s", topics);
    snprintf(prefix, sizeof prefix, "DEDUPE_KEY_PREFIX=%s:", topics);
    snprintf(endpoint, sizeof endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d", cport);
    snprintf(wenv, sizeof wenv, "WORKFLOWS_DIR=%s", wfdir);
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", it_brokers());
    snprintf(redis, sizeof redis, "DEDUPE_REDIS_ADDR=%s", getenv("DEDUPE_REDIS_ADDR"));
    snprintf(bin_dir, sizeof bin_dir, "PATH=%s", getenv("PATH"));
    char *env[] = {cmds, resps, group, prefix, endpoint, wenv, brokers, redis, bin_dir,
                   "OTEL_SERVICE_NAME=sio-it-serve", "SIO_HTTP_ALLOW=*", "TOPIC_PARTITIONS=1",
                   "WORKER_COUNT=1", "OPS_ADDR=127.0.0.1:0", "LOG_LEVEL=info",
                   (char *)guarantee, NULL};
    snprintf(log, sizeof log, "%s/serve.log", dir);
    pid_t serve = spawn_serve(env, log);
    wait_for_text(log, "\"partitions assigned\"");

    char topic[256], cid[64];
    snprintf(topic, sizeof topic, "%s.commands", topics);
    snprintf(cid, sizeof cid, "trace-%d", (int)getpid());
    char value[256];
    snprintf(value, sizeof value, "{\"correlation_id\":\"%s\",\"workflow\":\"traced\"}", cid);
    send_command(topic, cid, value);
    char tps[8][64], tss[8][64], statuses[8][16];
    snprintf(topic, sizeof topic, "%s.responses", topics);
    int n = read_responses(topic, cid, tps, tss, statuses, 8);
    assert_int_equal(n, 2); /* the step result, then the success */
    assert_string_equal(statuses[0], "step_result");

    /* every log line of the command carries the incoming trace */
    wait_for_text(log, "\"command finished\"");
    char want[128];
    snprintf(want, sizeof want, "\"trace_id\":\"%s\"", TRACE_ID);
    wait_for_text(log, want);
    kill(serve, SIGTERM); /* serve's stop flushes the exporter */
    int st;
    assert_int_equal(waitpid(serve, &st, 0), serve);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    json_t *spans = spans_written(3), *cmd = NULL, *step = NULL, *http = NULL;
    for (int tries = 0; (!cmd || !step || !http) && tries < 300; tries++) {
        snprintf(want, sizeof want, "process %s", cmds + strlen("KAFKA_COMMANDS_TOPIC="));
        cmd = in_trace(spans, want);
        step = in_trace(spans, "step fetch");
        http = in_trace(spans, "GET");
        if (!cmd || !step || !http) {
            json_decref(spans);
            usleep(20000);
            spans = spans_written(3);
        }
    }
    assert_non_null(cmd);
    assert_non_null(step);
    assert_non_null(http);
    /* command -> step -> http, the command continuing the incoming parent */
    assert_string_equal(str(cmd, "parentSpanId"), PARENT_ID);
    assert_string_equal(str(cmd, "traceState"), "rojo=00f067aa0ba902b7");
    assert_int_equal(json_integer_value(json_object_get(cmd, "kind")), SIO_SPAN_CONSUMER);
    assert_string_equal(str(step, "parentSpanId"), str(cmd, "spanId"));
    assert_string_equal(str(http, "parentSpanId"), str(step, "spanId"));
    assert_int_equal(json_integer_value(json_object_get(http, "kind")), SIO_SPAN_CLIENT);
    /* the messaging conventions on the command span */
    assert_string_equal(attr(cmd, "messaging.system"), "kafka");
    assert_string_equal(attr(cmd, "messaging.destination.name"), cmds + strlen("KAFKA_COMMANDS_TOPIC="));
    assert_string_equal(attr(cmd, "messaging.destination.partition.id"), "0");
    assert_string_equal(attr(cmd, "messaging.consumer.group.name"), topics);
    assert_string_equal(attr(cmd, "messaging.kafka.message.key"), cid);
    assert_non_null(attr(cmd, "messaging.kafka.offset"));
    assert_string_equal(attr(cmd, "sio.outcome"), "success");
    assert_string_equal(attr(http, "http.response.status_code"), "200");
    /* its phases; exactly once, the final message goes out in the
     * transaction (no delivery report of its own) */
    static const char *const phases[] = {"dequeued", "claimed", "ran", "stored", "delivered"};
    assert_phases(cmd, phases, strstr(guarantee, "exactly_once") ? 4 : 5);
    /* the HTTP request carried the http span's context */
    char *head = test_httpd_request(web, 0);
    assert_non_null(head);
    snprintf(want, sizeof want, "traceparent: 00-%s-%s-01\r\n", TRACE_ID, str(http, "spanId"));
    assert_contains(head, want);
    free(head);
    /* the step result and the success carry the command span's context */
    snprintf(want, sizeof want, "00-%s-%s-01", TRACE_ID, str(cmd, "spanId"));
    for (int i = 0; i < n; i++) {
        assert_string_equal(tps[i], want);
        assert_string_equal(tss[i], "rojo=00f067aa0ba902b7");
    }
    json_decref(spans);
    test_httpd_stop(web);
}

static void serve_continues_the_trace(void **state) {
    (void)state;
    continues_the_trace("PROCESSING_GUARANTEE=at_least_once");
}

static void serve_continues_the_trace_exactly_once(void **state) {
    (void)state;
    continues_the_trace("PROCESSING_GUARANTEE=exactly_once");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(command_step_http_tree, up, down),
        cmocka_unit_test_setup_teardown(serve_continues_the_trace, up, down),
        cmocka_unit_test_setup_teardown(serve_continues_the_trace_exactly_once, up, down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
