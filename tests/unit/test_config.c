/* test_config.c - layered configuration: defaults, env, file, flags, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* Loads with a NULL-terminated argv (argv[0] = the subcommand). */
static const sio_config *load_opts(char **argv, char **envp, const sio_config_opts *opts,
                                   sio_err *err) {
    int argc = 0;
    while (argv[argc] != NULL) argc++;
    sio_err_clear(err);
    return sio_config_load(argc, argv, envp, opts, err);
}

static const sio_config *load(char **argv, char **envp, sio_err *err) {
    return load_opts(argv, envp, NULL, err);
}

/* Loads and expects success. */
static const sio_config *load_ok(char **argv, char **envp) {
    sio_err err;
    const sio_config *cfg = load(argv, envp, &err);
    if (cfg == NULL) fail_msg("load failed: %s", err.msg);
    return cfg;
}

/* Loads and expects failure with a message equal to want (or, when want
 * starts with '~', containing the rest). */
static void load_fails(char **argv, char **envp, const char *want) {
    sio_err err;
    const sio_config *cfg = load(argv, envp, &err);
    if (cfg != NULL) {
        sio_config_destroy(cfg);
        fail_msg("load succeeded, wanted error: %s", want);
    }
    assert_int_equal(err.code, SIO_E_CONFIG);
    if (want[0] == '~') {
        if (strstr(err.msg, want + 1) == NULL) fail_msg("error \"%s\" lacks \"%s\"", err.msg, want + 1);
    } else {
        assert_string_equal(err.msg, want);
    }
}

/* Writes text to a new temporary file; path receives its name. */
static void write_file(char *path, size_t n, const char *text) {
    snprintf(path, n, "/tmp/sio-config-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads with env and a config file holding text, plus extra flags. */
static const sio_config *load_file(const char *text, char **envp, char **flags, sio_err *err,
                                   char *path, size_t pathn) {
    write_file(path, pathn, text);
    char *argv[32] = {"serve", "--config", path};
    int argc = 3;
    for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) argv[argc++] = flags[i];
    argv[argc] = NULL;
    const sio_config *cfg = load(argv, envp, err);
    unlink(path);
    return cfg;
}

/* Captures what fn writes to a FILE into a malloc'd string. */
static char *capture(void (*fn)(const sio_config *, FILE *), const sio_config *cfg) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    fn(cfg, f);
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Precedence                                                                */

static void every_default(void **state) {
    (void)state;
    char *argv[] = {"serve", NULL};
    const sio_config *c = load_ok(argv, NULL);
    assert_string_equal(c->kafka_brokers, "localhost:9092");
    assert_string_equal(c->kafka_group_id, "sio-orchestrator");
    assert_string_equal(c->commands_topic, "dev.sio.orchestrator.commands");
    assert_string_equal(c->responses_topic, "dev.sio.orchestrator.responses");
    assert_string_equal(c->redis_addr, "localhost:6379");
    assert_string_equal(c->redis_host, "localhost");
    assert_int_equal(c->redis_port, 6379);
    assert_null(c->redis_username);
    assert_null(c->redis_password);
    assert_int_equal(c->worker_count, 4);
    assert_int_equal(c->worker_inflight, 256);
    assert_int_equal(c->workflow_timeout_ms, 10 * 60 * 1000);
    assert_int_equal(c->dedupe_ttl_ms, 10 * 60 * 1000);
    assert_int_equal(c->dedupe_lease_ms, 30000);
    assert_string_equal(c->dedupe_key_prefix, "sio:dedupe:");
    assert_int_equal(c->redis_timeout_ms, 5000);
    assert_int_equal(c->retry_attempts, 3);
    assert_int_equal(c->retry_backoff_base_ms, 200);
    assert_int_equal(c->retry_backoff_max_ms, 10000);
    assert_int_equal(c->drain_timeout_ms, 30000);
    assert_int_equal(c->startup_timeout_ms, 60000);
    assert_false(c->log_payloads);
    assert_int_equal(c->log_level, SIO_LOG_INFO);
    assert_int_equal(c->topic_partitions, 6);
    assert_int_equal(c->topic_replication, 1);
    assert_int_equal(c->kafka_prefetch_bytes, 1u << 20);
    assert_int_equal(c->kafka_prefetch_messages, 1000);
    assert_int_equal(c->kafka_producer_queue_bytes, 64u << 20);
    assert_string_equal(c->workflows_dir, "workflows");
    assert_string_equal(c->lua_dir, "lua");
    assert_non_null(c->http_allow);
    assert_null(c->http_allow[0]);
    assert_int_equal(c->http_timeout_ms, 10000);
    assert_int_equal(c->mem_limit, 64u << 20);
    assert_int_equal(c->instr_limit, 100000000);
    assert_int_equal(c->publish_limit, 1000);
    assert_int_equal(c->n_kafka_props, 0);
    assert_null(c->kafka_props_flat[0]);
    assert_null(c->config_file);
    assert_int_equal(c->nargs, 0);
    assert_null(c->args[0]);
    assert_int_equal(c->nextra, 0);
    sio_config_destroy(c);
    sio_config_destroy(NULL);
}

static char *full_env[] = {
    "PATH=/usr/bin",
    "KAFKA_BROKERS=k1:9092,k2:9092",
    "KAFKA_GROUP_ID=g-env",
    "KAFKA_COMMANDS_TOPIC=env.commands",
    "KAFKA_RESPONSES_TOPIC=env.responses",
    "DEDUPE_REDIS_ADDR=redis-env:7000",
    "WORKER_COUNT=8",
    "WORKER_INFLIGHT=1",
    "DEFAULT_WORKFLOW_TIMEOUT=2m",
    "DEDUPE_LEASE=45s",
    "DEDUPE_KEY_PREFIX=",
    "REDIS_USERNAME=alice",
    "REDIS_PASSWORD=s3cret",
    "RETRY_ATTEMPTS=5",
    "RETRY_BACKOFF_BASE=100ms",
    "RETRY_BACKOFF_MAX=1m",
    "DRAIN_TIMEOUT=0",
    "STARTUP_TIMEOUT=2m30s",
    "LOG_PAYLOADS=yes",
    "LOG_LEVEL=DEBUG",
    "TOPIC_PARTITIONS=12",
    "TOPIC_REPLICATION=3",
    "KAFKA_PREFETCH_BYTES=4m",
    "KAFKA_PREFETCH_MESSAGES=500",
    "KAFKA_PRODUCER_QUEUE_BYTES=512k",
    "WORKFLOWS_DIR=/etc/sio/workflows",
    "LUA_DIR=/etc/sio/lua",
    "SIO_HTTP_ALLOW=api.example.com, *",
    "HTTP_TIMEOUT=2500ms",
    "SIO_MEM_LIMIT=1g",
    "SIO_INSTR_LIMIT=5000",
    "SIO_PUBLISH_LIMIT=20",
    "NOT_OURS=whatever",
    "JUNK_WITHOUT_EQUALS",
    NULL,
};

static void env_overrides_defaults(void **state) {
    (void)state;
    char *argv[] = {"serve", NULL};
    const sio_config *c = load_ok(argv, full_env);
    assert_string_equal(c->kafka_brokers, "k1:9092,k2:9092");
    assert_string_equal(c->kafka_group_id, "g-env");
    assert_string_equal(c->commands_topic, "env.commands");
    assert_string_equal(c->responses_topic, "env.responses");
    assert_string_equal(c->redis_addr, "redis-env:7000");
    assert_int_equal(c->redis_port, 7000);
    assert_string_equal(c->redis_username, "alice");
    assert_string_equal(c->redis_password, "s3cret");
    assert_int_equal(c->worker_count, 8);
    assert_int_equal(c->worker_inflight, 1);
    assert_int_equal(c->workflow_timeout_ms, 120000);
    assert_int_equal(c->dedupe_ttl_ms, 120000); /* follows the timeout */
    assert_int_equal(c->dedupe_lease_ms, 45000);
    assert_string_equal(c->dedupe_key_prefix, "");
    assert_int_equal(c->retry_attempts, 5);
    assert_int_equal(c->retry_backoff_base_ms, 100);
    assert_int_equal(c->retry_backoff_max_ms, 60000);
    assert_int_equal(c->drain_timeout_ms, 0);
    assert_int_equal(c->startup_timeout_ms, 150000);
    assert_true(c->log_payloads);
    assert_int_equal(c->log_level, SIO_LOG_DEBUG);
    assert_int_equal(c->topic_partitions, 12);
    assert_int_equal(c->topic_replication, 3);
    assert_int_equal(c->kafka_prefetch_bytes, 4u << 20);
    assert_int_equal(c->kafka_prefetch_messages, 500);
    assert_int_equal(c->kafka_producer_queue_bytes, 512u << 10);
    assert_string_equal(c->workflows_dir, "/etc/sio/workflows");
    assert_string_equal(c->lua_dir, "/etc/sio/lua");
    assert_string_equal(c->http_allow[0], "api.example.com");
    assert_string_equal(c->http_allow[1], "*");
    assert_null(c->http_allow[2]);
    assert_int_equal(c->http_timeout_ms, 2500);
    assert_int_equal(c->mem_limit, 1u << 30);
    assert_int_equal(c->instr_limit, 5000);
    assert_int_equal(c->publish_limit, 20);
    sio_config_destroy(c);
}

static void file_overrides_env(void **state) {
    (void)state;
    char path[64];
    sio_err err;
    const char *text =
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "KAFKA_BROKERS = file:9092\r\n"
        "WORKER_COUNT=16\n"
        "DEDUPE_TTL=1h\n"
        "REDIS_PASSWORD=\"pa#ss word \"\n"
        "KAFKA_GROUP_ID='g-file'\n"
        "LOG_LEVEL=warn\n"
        "WORKER_COUNT=12\n" /* later lines win */
        "SIO_MEM_LIMIT=32MiB";  /* no final newline */
    const sio_config *c = load_file(text, full_env, NULL, &err, path, sizeof path);
    if (c == NULL) fail_msg("%s", err.msg);
    assert_string_equal(c->kafka_brokers, "file:9092");
    assert_int_equal(c->worker_count, 12);
    assert_int_equal(c->dedupe_ttl_ms, 3600000);
    assert_int_equal(c->workflow_timeout_ms, 120000); /* env, untouched by the file */
    assert_string_equal(c->redis_password, "pa#ss word ");
    assert_string_equal(c->kafka_group_id, "g-file");
    assert_int_equal(c->log_level, SIO_LOG_WARN);
    assert_int_equal(c->mem_limit, 32u << 20);
    assert_string_equal(c->config_file, path);
    sio_config_destroy(c);
}

static void flags_override_file(void **state) {
    (void)state;
    char path[64];
    sio_err err;
    const char *text = "KAFKA_BROKERS=file:9092\nWORKER_COUNT=16\nLOG_PAYLOADS=true\n"
                       "DEFAULT_WORKFLOW_TIMEOUT=1h\nLUA_DIR=flua\n";
    char *flags[] = {"--brokers", "flag:9092", "--group=g-flag", "--commands-topic", "f.cmd",
                     "--responses-topic=f.resp", "--redis", "redis://bob:pw@flaghost:6390",
                     "--workers", "2", "--inflight=7", "--timeout", "90s", "--workflows",
                     "wf", "--lua=ll", "--log-level", "error", "--log-payloads=off", NULL};
    const sio_config *c = load_file(text, full_env, flags, &err, path, sizeof path);
    if (c == NULL) fail_msg("%s", err.msg);
    assert_string_equal(c->kafka_brokers, "flag:9092");
    assert_string_equal(c->kafka_group_id, "g-flag");
    assert_string_equal(c->commands_topic, "f.cmd");
    assert_string_equal(c->responses_topic, "f.resp");
    assert_string_equal(c->redis_addr, "flaghost:6390");
    /* REDIS_USERNAME / REDIS_PASSWORD from env win over the URL's */
    assert_string_equal(c->redis_username, "alice");
    assert_string_equal(c->redis_password, "s3cret");
    assert_int_equal(c->worker_count, 2);
    assert_int_equal(c->worker_inflight, 7);
    assert_int_equal(c->workflow_timeout_ms, 90000);
    assert_int_equal(c->dedupe_ttl_ms, 90000);
    assert_string_equal(c->workflows_dir, "wf");
    assert_string_equal(c->lua_dir, "ll");
    assert_int_equal(c->log_level, SIO_LOG_ERROR);
    assert_false(c->log_payloads);
    sio_config_destroy(c);

    char *argv[] = {"serve", "--log-payloads", NULL};
    c = load_ok(argv, NULL);
    assert_true(c->log_payloads);
    sio_config_destroy(c);
}

static void kafka_passthrough(void **state) {
    (void)state;
    char path[64];
    sio_err err;
    const char *text = "kafka.security.protocol=SASL_SSL\n"
                       "kafka.sasl.password=hunter2\n"
                       "kafka.fetch.wait.max.ms=10\n";
    char *flags[] = {"-X", "fetch.wait.max.ms=50", "-Xclient.id=sio", "--kafka-prop",
                     "linger.ms=5", "--kafka-prop=statistics.interval.ms=0", "-X", "empty=",
                     NULL};
    const sio_config *c = load_file(text, NULL, flags, &err, path, sizeof path);
    if (c == NULL) fail_msg("%s", err.msg);
    static const char *const want[][2] = {
        {"security.protocol", "SASL_SSL"}, {"sasl.password", "hunter2"},
        {"fetch.wait.max.ms", "50"},       {"client.id", "sio"},
        {"linger.ms", "5"},                {"statistics.interval.ms", "0"},
        {"empty", ""},
    };
    assert_int_equal(c->n_kafka_props, 7);
    for (size_t i = 0; i < 7; i++) {
        const char *k, *v;
        assert_int_equal(sio_config_kafka_props(c, i, &k, &v), 1);
        assert_string_equal(k, want[i][0]);
        assert_string_equal(v, want[i][1]);
        assert_string_equal(c->kafka_props_flat[2 * i], want[i][0]);
        assert_string_equal(c->kafka_props_flat[2 * i + 1], want[i][1]);
    }
    const char *k, *v;
    assert_int_equal(sio_config_kafka_props(c, 7, &k, &v), 0);
    assert_null(c->kafka_props_flat[14]);
    sio_config_destroy(c);
}

static void ttl_and_cross_checks(void **state) {
    (void)state;
    char *argv[] = {"serve", "--timeout", "5m", NULL};
    char *env_ttl[] = {"DEDUPE_TTL=1h", NULL};
    const sio_config *c = load_ok(argv, env_ttl);
    assert_int_equal(c->workflow_timeout_ms, 300000);
    assert_int_equal(c->dedupe_ttl_ms, 3600000);
    sio_config_destroy(c);
    char *env_backoff[] = {"RETRY_BACKOFF_BASE=20s", NULL};
    load_fails(argv, env_backoff,
               "RETRY_BACKOFF_BASE (20000ms) is longer than RETRY_BACKOFF_MAX (10000ms)");
}

/* ------------------------------------------------------------------------ */
/* Errors name their source                                                  */

/* One bad value per variable (through the environment). */
static void every_variable_checked(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"WORKER_COUNT=abc", "WORKER_COUNT: \"abc\" is not a positive integer"},
        {"WORKER_COUNT=0", "WORKER_COUNT: \"0\" is not a positive integer"},
        {"WORKER_COUNT=-3", "WORKER_COUNT: \"-3\" is not a positive integer"},
        {"WORKER_COUNT=4x", "WORKER_COUNT: \"4x\" is not a positive integer"},
        {"WORKER_COUNT=5000", "WORKER_COUNT: \"5000\" is too large (at most 1024)"},
        {"WORKER_COUNT=99999999999999999999", "~is not a positive integer"},
        {"WORKER_INFLIGHT=", "WORKER_INFLIGHT: \"\" is not a positive integer"},
        {"KAFKA_BROKERS=", "KAFKA_BROKERS: \"\" has an empty broker entry"},
        {"KAFKA_BROKERS=a:1,,b:2", "KAFKA_BROKERS: \"a:1,,b:2\" has an empty broker entry"},
        {"KAFKA_GROUP_ID=", "KAFKA_GROUP_ID: must not be empty"},
        {"KAFKA_COMMANDS_TOPIC=bad topic", "~KAFKA_COMMANDS_TOPIC: \"bad topic\" is not a valid topic name"},
        {"KAFKA_RESPONSES_TOPIC=..", "~KAFKA_RESPONSES_TOPIC: \"..\" is not a valid topic name"},
        {"KAFKA_RESPONSES_TOPIC=", "KAFKA_RESPONSES_TOPIC: empty topic name"},
        {"DEDUPE_REDIS_ADDR=host:0", "~DEDUPE_REDIS_ADDR: \"host:0\" is not a Redis address"},
        {"DEFAULT_WORKFLOW_TIMEOUT=10", "DEFAULT_WORKFLOW_TIMEOUT: \"10\" has no unit (write \"10s\" or \"10ms\")"},
        {"DEFAULT_WORKFLOW_TIMEOUT=0s", "DEFAULT_WORKFLOW_TIMEOUT: \"0s\" must be more than 0"},
        {"DEDUPE_TTL=forever", "~DEDUPE_TTL: \"forever\" is not a duration"},
        {"DEDUPE_LEASE=0", "DEDUPE_LEASE: \"0\" must be more than 0"},
        {"RETRY_ATTEMPTS=0", "RETRY_ATTEMPTS: \"0\" is not a positive integer"},
        {"RETRY_ATTEMPTS=101", "RETRY_ATTEMPTS: \"101\" is too large (at most 100)"},
        {"RETRY_BACKOFF_BASE=1", "~RETRY_BACKOFF_BASE: \"1\" has no unit"},
        {"RETRY_BACKOFF_MAX=-1s", "RETRY_BACKOFF_MAX: \"-1s\" is negative"},
        {"DRAIN_TIMEOUT=30", "~DRAIN_TIMEOUT: \"30\" has no unit"},
        {"STARTUP_TIMEOUT=0s", "STARTUP_TIMEOUT: \"0s\" must be more than 0"},
        {"STARTUP_TIMEOUT=60", "~STARTUP_TIMEOUT: \"60\" has no unit"},
        {"LOG_PAYLOADS=maybe", "~LOG_PAYLOADS: \"maybe\" is not a boolean"},
        {"LOG_LEVEL=verbose", "LOG_LEVEL: \"verbose\" is not a log level (debug, info, warn, error)"},
        {"TOPIC_PARTITIONS=0", "TOPIC_PARTITIONS: \"0\" is not a positive integer"},
        {"TOPIC_REPLICATION=40000", "~TOPIC_REPLICATION: \"40000\" is too large"},
        {"WORKFLOWS_DIR=", "WORKFLOWS_DIR: must not be empty"},
        {"LUA_DIR=", "LUA_DIR: must not be empty"},
        {"SIO_HTTP_ALLOW=https://api.x.io", "~SIO_HTTP_ALLOW: \"https://api.x.io\": \"https://api.x.io\" is not a host name"},
        {"SIO_HTTP_ALLOW=a.io,::1", "~SIO_HTTP_ALLOW: \"a.io,::1\": \"::1\" is not a host name"},
        {"SIO_HTTP_ALLOW=a.io:0", "~SIO_HTTP_ALLOW: \"a.io:0\": \"a.io:0\" is not a host name"},
        {"SIO_HTTP_ALLOW=a.io:65536", "~SIO_HTTP_ALLOW: \"a.io:65536\": \"a.io:65536\" is not a host name"},
        {"SIO_HTTP_ALLOW=a.io:", "~SIO_HTTP_ALLOW: \"a.io:\": \"a.io:\" is not a host name"},
        {"HTTP_TIMEOUT=0ms", "HTTP_TIMEOUT: \"0ms\" must be more than 0"},
        {"SIO_MEM_LIMIT=lots", "~SIO_MEM_LIMIT: \"lots\" is not a size"},
        {"SIO_MEM_LIMIT=1k", "SIO_MEM_LIMIT: \"1k\" is below the minimum of 64k"},
        {"SIO_INSTR_LIMIT=1e9", "SIO_INSTR_LIMIT: \"1e9\" is not a positive integer"},
        {"SIO_PUBLISH_LIMIT=0", "SIO_PUBLISH_LIMIT: \"0\" is not a positive integer"},
        {"KAFKA_PREFETCH_BYTES=100", "KAFKA_PREFETCH_BYTES: \"100\" is below the minimum of 1k"},
        {"KAFKA_PREFETCH_MESSAGES=0", "KAFKA_PREFETCH_MESSAGES: \"0\" is not a positive integer"},
        {"KAFKA_PRODUCER_QUEUE_BYTES=lots", "~KAFKA_PRODUCER_QUEUE_BYTES: \"lots\" is not a size"},
    };
    char *argv[] = {"serve", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *env[] = {(char *)cases[i][0], NULL};
        load_fails(argv, env, cases[i][1]);
    }
}

static void file_errors_name_file_and_line(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"# ok\nKAFKA_BROKRS=x\n", ":2: unknown key \"KAFKA_BROKRS\" (did you mean KAFKA_BROKERS?)"},
        {"ZZZ=1\n", ":1: unknown key \"ZZZ\""},
        {"\n\nWORKER_COUNT=abc\n", ":3: WORKER_COUNT: \"abc\" is not a positive integer"},
        {"just words\n", ":1: expected KEY=value, got \"just words\""},
        {"kafka.=1\n", ":1: kafka.: \"\" is not a librdkafka property name"},
        {"kafka.bad key=1\n", ":1: kafka.bad key: \"bad key\" is not a librdkafka property name"},
        {"kafka.group.id=x\n", ":1: kafka.group.id: \"group.id\" cannot be set here: use KAFKA_GROUP_ID or --group"},
        {"DEFAULT_WORKFLOW_TIMEOUT=600\n", ":1: DEFAULT_WORKFLOW_TIMEOUT: \"600\" has no unit (write \"600s\" or \"600ms\")"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[64], want[256];
        sio_err err;
        const sio_config *c = load_file(cases[i][0], NULL, NULL, &err, path, sizeof path);
        assert_null(c);
        assert_int_equal(err.code, SIO_E_CONFIG);
        snprintf(want, sizeof want, "%s%s", path, cases[i][1]);
        assert_string_equal(err.msg, want);
    }
    char *argv[] = {"serve", "--config", "/nonexistent/sio.env", NULL};
    load_fails(argv, NULL, "--config: cannot open \"/nonexistent/sio.env\": No such file or directory");
}

static void flag_errors_name_flag(void **state) {
    (void)state;
    static const char *const cases[][4] = {
        {"--workers", "abc", NULL, "--workers: \"abc\" is not a positive integer"},
        {"--workers=", NULL, NULL, "--workers: \"\" is not a positive integer"},
        {"--timeout", "30", NULL, "--timeout: \"30\" has no unit (write \"30s\" or \"30ms\")"},
        {"--log-level", "loud", NULL, "~--log-level: \"loud\" is not a log level"},
        {"--log-payloads=2", NULL, NULL, "~--log-payloads: \"2\" is not a boolean"},
        {"--redis", "rediss://h:1", NULL, "--redis: \"rediss://h:1\": TLS (rediss://) is not supported"},
        {"--workers", NULL, NULL, "--workers needs a value"},
        {"--config", NULL, NULL, "--config needs a value"},
        {"-X", NULL, NULL, "-X needs a value"},
        {"-X", "novalue", NULL, "-X: \"novalue\" is not key=value"},
        {"-X", "enable.auto.offset.store=true", NULL,
         "-X: \"enable.auto.offset.store\" cannot be set here: the service stores offsets itself (commit safety)"},
        {"--kafka-prop", "acks=1", NULL, "~--kafka-prop: \"acks\" cannot be set here"},
        {"--worker", "3", NULL, "unknown flag \"--worker\" (did you mean --workers?)"},
        {"--frobnicate=1", NULL, NULL, "unknown flag \"--frobnicate\""},
        {"-v", NULL, NULL, "unknown flag \"-v\""},
        {"extra", NULL, NULL, "unexpected argument \"extra\""},
        {"--brokers", "a:1", "--group=", "--group: must not be empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"serve", (char *)cases[i][0], (char *)cases[i][1], (char *)cases[i][2], NULL};
        load_fails(argv, NULL, cases[i][3]);
    }
}

/* An invalid environment value is an error even when a flag overrides it. */
static void invalid_lower_layer_still_fails(void **state) {
    (void)state;
    char *argv[] = {"serve", "--workers", "3", NULL};
    char *env[] = {"WORKER_COUNT=abc", NULL};
    load_fails(argv, env, "WORKER_COUNT: \"abc\" is not a positive integer");
}

/* ------------------------------------------------------------------------ */
/* Value parsers                                                             */

static void durations(void **state) {
    (void)state;
    static const struct { const char *s; int64_t ms; } ok[] = {
        {"500ms", 500}, {"30s", 30000}, {"10m", 600000}, {"1h", 3600000},
        {"1h30m", 5400000}, {"1h1m1s1ms", 3661001}, {"0", 0}, {"0s", 0}, {"1.5s", 1500},
        {"0.25s", 250}, {"1.5h", 5400000}, {"90m", 5400000}, {"30s1h", 3630000},
        {"2562047788015h", 2562047788015LL * 3600000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        sio_err err;
        if (sio_parse_duration_ms(ok[i].s, &ms, &err) != 0) fail_msg("%s: %s", ok[i].s, err.msg);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[][2] = {
        {"30", "\"30\" has no unit (write \"30s\" or \"30ms\")"},
        {"", "~empty duration"},
        {"-1s", "\"-1s\" is negative"},
        {"10x", "~\"10x\" is not a duration"},
        {"s", "~\"s\" is not a duration"},
        {"1h30", "~\"1h30\" is not a duration"},
        {" 1s", "~\" 1s\" is not a duration"},
        {"1s ", "~\"1s \" is not a duration"},
        {"1.s", "~\"1.s\" is not a duration"},
        {"0.5ms", "\"0.5ms\" is finer than a millisecond"},
        {"1.0001s", "\"1.0001s\" is finer than a millisecond"},
        {"2562047788016h", "\"2562047788016h\" is too long"},
        {"99999999999999999999ms", "~is not a duration"},
        {"1d", "~\"1d\" is not a duration"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -7;
        sio_err err;
        sio_err_clear(&err);
        assert_int_equal(sio_parse_duration_ms(bad[i][0], &ms, &err), -1);
        assert_int_equal(ms, -7);
        assert_int_equal(err.code, SIO_E_CONFIG);
        const char *w = bad[i][1];
        if (w[0] == '~') {
            if (strstr(err.msg, w + 1) == NULL) fail_msg("%s: \"%s\" lacks \"%s\"", bad[i][0], err.msg, w + 1);
        } else {
            assert_string_equal(err.msg, w);
        }
    }
}

static void sizes(void **state) {
    (void)state;
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"64m", 64ULL << 20}, {"64M", 64ULL << 20}, {"64MiB", 64ULL << 20}, {"64mb", 64ULL << 20},
        {"1g", 1ULL << 30}, {"512KB", 512ULL << 10}, {"100", 100}, {"2t", 2ULL << 40},
        {"0", 0}, {"16777215t", 16777215ULL << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        sio_err err;
        if (sio_parse_size(ok[i].s, &v, &err) != 0) fail_msg("%s: %s", ok[i].s, err.msg);
        assert_int_equal(v, ok[i].v);
    }
    static const char *const bad[] = {"", "m", "64x", "64mm", "-1", "1.5m", "64 m", "64mibs",
                                      "16777216t", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        sio_err err;
        assert_int_equal(sio_parse_size(bad[i], &v, &err), -1);
        assert_int_equal(v, 7);
        assert_int_equal(err.code, SIO_E_CONFIG);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        assert_non_null(strstr(err.msg, quoted));
    }
}

static void booleans(void **state) {
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "1", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"false", "False", "0", "no", "NO", "off", "Off"};
    static const char *const bad[] = {"", "y", "n", "2", "truee", " true", "enabled"};
    sio_err err;
    bool b;
    for (size_t i = 0; i < 7; i++) {
        b = false;
        assert_int_equal(sio_parse_bool(yes[i], &b, &err), 0);
        assert_true(b);
        assert_int_equal(sio_parse_bool(no[i], &b, &err), 0);
        assert_false(b);
        assert_int_equal(sio_parse_bool(bad[i], &b, &err), -1);
        assert_int_equal(err.code, SIO_E_CONFIG);
    }
}

/* ------------------------------------------------------------------------ */
/* Redis addresses and credentials                                           */

/* Loads DEDUPE_REDIS_ADDR=addr (plus env) and checks the parts. */
static void redis_case(const char *addr, char *extra_env, const char *want_addr,
                       const char *host, int port, const char *user, const char *pass) {
    char var[256];
    snprintf(var, sizeof var, "DEDUPE_REDIS_ADDR=%s", addr);
    char *env[] = {var, extra_env, NULL};
    char *argv[] = {"serve", NULL};
    const sio_config *c = load_ok(argv, env);
    assert_string_equal(c->redis_addr, want_addr);
    assert_string_equal(c->redis_host, host);
    assert_int_equal(c->redis_port, port);
    if (user) assert_string_equal(c->redis_username, user);
    else assert_null(c->redis_username);
    if (pass) assert_string_equal(c->redis_password, pass);
    else assert_null(c->redis_password);
    sio_config_destroy(c);
}

static void redis_urls(void **state) {
    (void)state;
    redis_case("redis://user:p%40ss@host:6380", NULL, "host:6380", "host", 6380, "user", "p@ss");
    redis_case("redis://:secret@cache", NULL, "cache:6379", "cache", 6379, NULL, "secret");
    redis_case("redis://u:a:b@c@h:1/", NULL, "h:1", "h", 1, "u", "a:b@c");
    redis_case("REDIS://h", NULL, "h:6379", "h", 6379, NULL, NULL);
    redis_case("redis://only@h:2", NULL, "h:2", "h", 2, "only", NULL);
    redis_case("[::1]:7000", NULL, "[::1]:7000", "::1", 7000, NULL, NULL);
    redis_case("redis://u:p@[fe80::1]:7001", NULL, "[fe80::1]:7001", "fe80::1", 7001, "u", "p");
    redis_case("plainhost", NULL, "plainhost:6379", "plainhost", 6379, NULL, NULL);
    /* REDIS_USERNAME / REDIS_PASSWORD win over the URL's */
    redis_case("redis://u:p@h:3", "REDIS_PASSWORD=override", "h:3", "h", 3, "u", "override");
    redis_case("redis://u:p@h:3", "REDIS_USERNAME=other", "h:3", "h", 3, "other", "p");
    redis_case("redis://u:p@h:3", "REDIS_PASSWORD=", "h:3", "h", 3, "u", NULL);
    static const char *const bad[] = {
        "http://h:1", "h:65536", "h:abc", "h:", ":6379", "redis://h/3", "::1:6379",
        "[::1", "[::1]x", "redis://u:p@", "redis://h:1:2",
    };
    char *argv[] = {"serve", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char var[128], want[160];
        snprintf(var, sizeof var, "DEDUPE_REDIS_ADDR=%s", bad[i]);
        snprintf(want, sizeof want, "~DEDUPE_REDIS_ADDR: \"%s\"", bad[i]);
        char *env[] = {var, NULL};
        load_fails(argv, env, want);
    }
}

static void http_allow_list(void **state) {
    (void)state;
    char *argv[] = {"serve", NULL};
    char *env[] = {"SIO_HTTP_ALLOW= Example.COM ,api.x.io,,", NULL};
    const sio_config *c = load_ok(argv, env);
    assert_string_equal(c->http_allow[0], "example.com");
    assert_string_equal(c->http_allow[1], "api.x.io");
    assert_null(c->http_allow[2]);
    sio_config_destroy(c);
    char *env_ports[] = {"SIO_HTTP_ALLOW=127.0.0.1:8080,[::1]:443,[FE80::1]", NULL};
    c = load_ok(argv, env_ports);
    assert_string_equal(c->http_allow[0], "127.0.0.1:8080");
    assert_string_equal(c->http_allow[1], "[::1]:443");
    assert_string_equal(c->http_allow[2], "[fe80::1]");
    assert_null(c->http_allow[3]);
    sio_config_destroy(c);
    char host[64];
    int port;
    sio_err err;
    assert_int_equal(sio_http_allow_parse("[::1]:443", host, sizeof host, &port, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    assert_int_equal(sio_http_allow_parse("api.x.io", host, sizeof host, &port, &err), 0);
    assert_string_equal(host, "api.x.io");
    assert_int_equal(port, 0);
    assert_int_equal(sio_http_allow_parse("*", host, sizeof host, &port, &err), 0);
    assert_int_equal(port, -1);
    char *env_any[] = {"SIO_HTTP_ALLOW=*", NULL};
    c = load_ok(argv, env_any);
    assert_string_equal(c->http_allow[0], "*");
    assert_null(c->http_allow[1]);
    sio_config_destroy(c);
}

/* ------------------------------------------------------------------------ */
/* Subcommand arguments, dump, usage                                         */

static void subcommand_args(void **state) {
    (void)state;
    static const char *const extra[] = {"--attrs=", "--wait", NULL};
    sio_config_opts opts = {extra, 1, NULL};
    char *argv[] = {"run", "--attrs", "{\"q\":1}", "noop", "--wait", "--workers", "2",
                    "--attrs={}", NULL};
    sio_err err;
    const sio_config *c = load_opts(argv, NULL, &opts, &err);
    if (c == NULL) fail_msg("%s", err.msg);
    assert_int_equal(c->nargs, 1);
    assert_string_equal(c->args[0], "noop");
    assert_null(c->args[1]);
    assert_int_equal(c->worker_count, 2);
    assert_int_equal(c->nextra, 3);
    assert_string_equal(c->extra[0].key, "--attrs");
    assert_string_equal(c->extra[0].val, "{\"q\":1}");
    assert_string_equal(c->extra[1].key, "--wait");
    assert_string_equal(c->extra[1].val, "");
    assert_string_equal(sio_config_extra(c, "--attrs"), "{}"); /* the last one */
    assert_string_equal(sio_config_extra(c, "--attrs="), "{}");
    assert_string_equal(sio_config_extra(c, "--wait"), "");
    assert_null(sio_config_extra(c, "--nope"));
    sio_config_destroy(c);

    char *two[] = {"run", "a", "b", NULL};
    assert_null(load_opts(two, NULL, &opts, &err));
    assert_string_equal(err.msg, "unexpected argument \"b\"");
    char *wait_val[] = {"run", "--wait=1", NULL};
    assert_null(load_opts(wait_val, NULL, &opts, &err));
    assert_string_equal(err.msg, "--wait takes no value");
    char *no_val[] = {"run", "--attrs", NULL};
    assert_null(load_opts(no_val, NULL, &opts, &err));
    assert_string_equal(err.msg, "--attrs needs a value");

    sio_config_opts any = {NULL, -1, NULL};
    char *dashes[] = {"validate", "a.yaml", "-", "--", "--workers", "-X", NULL};
    c = load_opts(dashes, NULL, &any, &err);
    if (c == NULL) fail_msg("%s", err.msg);
    assert_int_equal(c->nargs, 4);
    assert_string_equal(c->args[1], "-");
    assert_string_equal(c->args[2], "--workers");
    assert_string_equal(c->args[3], "-X");
    assert_int_equal(c->worker_count, 4);
    sio_config_destroy(c);
}

/* kcat-style short forms of subcommand flags land under the long name. */
static void short_flags(void **state) {
    (void)state;
    static const char *const extra[] = {"--max=", "--exit", "--topic=", NULL};
    static const char *const shorts[] = {"-c", "--max", "-e", "--exit", "-t", "--topic", NULL};
    sio_config_opts opts = {extra, -1, shorts};
    char *argv[] = {"tail", "-c", "5", "-e", "-tone", "-X", "client.id=me", "-t", "two",
                    "--max=7", "-c9", "--", "-e", NULL};
    sio_err err;
    const sio_config *c = load_opts(argv, NULL, &opts, &err);
    if (c == NULL) fail_msg("%s", err.msg);
    assert_int_equal(c->nextra, 6);
    assert_string_equal(c->extra[0].key, "--max");
    assert_string_equal(c->extra[0].val, "5");
    assert_string_equal(c->extra[1].key, "--exit");
    assert_string_equal(c->extra[1].val, "");
    assert_string_equal(c->extra[2].key, "--topic");
    assert_string_equal(c->extra[2].val, "one");
    assert_string_equal(c->extra[3].val, "two");
    assert_string_equal(sio_config_extra(c, "--max"), "9");
    assert_int_equal(c->nargs, 1);
    assert_string_equal(c->args[0], "-e");
    assert_string_equal(c->kafka_props_flat[0], "client.id");
    sio_config_destroy(c);

    char *bundled[] = {"tail", "-ec", NULL};
    assert_null(load_opts(bundled, NULL, &opts, &err));
    assert_string_equal(err.msg, "unknown flag \"-ec\" (-e takes no value)");
    char *no_val[] = {"tail", "-c", NULL};
    assert_null(load_opts(no_val, NULL, &opts, &err));
    assert_string_equal(err.msg, "-c needs a value");
    char *unknown[] = {"tail", "-z", NULL};
    assert_null(load_opts(unknown, NULL, &opts, &err));
    assert_string_equal(err.msg, "unknown flag \"-z\"");
    sio_config_opts no_shorts = {extra, -1, NULL};
    char *not_listed[] = {"tail", "-c", "5", NULL};
    assert_null(load_opts(not_listed, NULL, &no_shorts, &err));
    assert_string_equal(err.msg, "unknown flag \"-c\"");
}

static void dump_masks_secrets_and_reloads(void **state) {
    (void)state;
    char *argv[] = {"serve", "--redis", "redis://bob:topsecret@rh:6400", "-X",
                    "sasl.password=hunter2", "-X", "client.id=me", "--timeout", "1h30m", NULL};
    char *env[] = {"SIO_HTTP_ALLOW=a.io,b.io", "SIO_MEM_LIMIT=1000000", NULL};
    const sio_config *c = load_ok(argv, env);
    char *out = capture(sio_config_dump, c);
    assert_null(strstr(out, "topsecret"));
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "REDIS_PASSWORD=********\n"));
    assert_non_null(strstr(out, "REDIS_USERNAME=bob\n"));
    assert_non_null(strstr(out, "DEDUPE_REDIS_ADDR=rh:6400\n"));
    assert_non_null(strstr(out, "kafka.sasl.password=********\n"));
    assert_non_null(strstr(out, "kafka.client.id=me\n"));
    assert_non_null(strstr(out, "DEFAULT_WORKFLOW_TIMEOUT=1h30m\n"));
    assert_non_null(strstr(out, "RETRY_BACKOFF_BASE=200ms\n"));
    assert_non_null(strstr(out, "DRAIN_TIMEOUT=30s\n"));
    assert_non_null(strstr(out, "SIO_MEM_LIMIT=1000000\n"));
    assert_non_null(strstr(out, "SIO_HTTP_ALLOW=a.io,b.io\n"));
    assert_non_null(strstr(out, "LOG_LEVEL=info\n"));
    assert_non_null(strstr(out, "KAFKA_BROKERS=localhost:9092\n"));

    /* the dump, minus the masked lines, is a valid config file */
    char *kept = calloc(1, strlen(out) + 1);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strstr(line, "********") == NULL) strcat(strcat(kept, line), "\n");
    char path[64];
    sio_err err;
    const sio_config *again = load_file(kept, NULL, NULL, &err, path, sizeof path);
    if (again == NULL) fail_msg("reload: %s", err.msg);
    char *out2 = capture(sio_config_dump, again);
    assert_non_null(strstr(out2, "DEFAULT_WORKFLOW_TIMEOUT=1h30m\n"));
    assert_non_null(strstr(out2, "kafka.client.id=me\n"));
    assert_int_equal(again->mem_limit, 1000000);
    assert_int_equal(again->dedupe_ttl_ms, 5400000);
    free(out2), free(kept), free(out);
    sio_config_destroy(again);
    sio_config_destroy(c);
}

/* PROCESSING_GUARANTEE and the properties that belong to one guarantee. */
static void processing_guarantee(void **state) {
    (void)state;
    char *none[] = {"serve", NULL};
    const sio_config *c = load_ok(none, NULL);
    assert_int_equal(c->processing_guarantee, SIO_AT_LEAST_ONCE);
    assert_int_equal(c->txn_commit_interval_ms, 100);
    assert_int_equal(c->txn_commit_commands, 4 * 256 / 2); /* half the in-flight limit */
    sio_config_destroy(c);

    char *eos_x[] = {"serve", "-X", "transactional.id=abc", "--workers", "2", "--inflight", "3",
                     NULL};
    char *eos_env[] = {"PROCESSING_GUARANTEE=exactly_once", "TXN_COMMIT_INTERVAL=20ms", NULL};
    c = load_ok(eos_x, eos_env);
    assert_int_equal(c->processing_guarantee, SIO_EXACTLY_ONCE);
    assert_int_equal(c->txn_commit_interval_ms, 20);
    assert_int_equal(c->txn_commit_commands, 3);
    assert_string_equal(c->kafka_props[0].key, "transactional.id");
    sio_config_destroy(c);
    char *count_env[] = {"PROCESSING_GUARANTEE=exactly_once", "TXN_COMMIT_COMMANDS=7", NULL};
    c = load_ok(none, count_env);
    assert_int_equal(c->txn_commit_commands, 7);
    sio_config_destroy(c);

    char *bad_env[] = {"PROCESSING_GUARANTEE=exactly-once", NULL};
    load_fails(none, bad_env,
               "PROCESSING_GUARANTEE: \"exactly-once\" is not at_least_once or exactly_once");
    /* At least once, a transactional producer would fail every produce
     * outside a transaction: refused at start. */
    char *alos_x[] = {"serve", "-X", "transactional.id=abc", NULL};
    load_fails(alos_x, NULL,
               "kafka property transactional.id=abc cannot be used with "
               "PROCESSING_GUARANTEE=at_least_once: a transactional producer needs "
               "PROCESSING_GUARANTEE=exactly_once");
    char *alos_t[] = {"serve", "--kafka-prop", "transaction.timeout.ms=5000", NULL};
    load_fails(alos_t, NULL, "~transaction.timeout.ms=5000 cannot be used with "
                             "PROCESSING_GUARANTEE=at_least_once");
    char path[64];
    sio_err err;
    assert_null(load_file("kafka.transactional.id=x\n", NULL, NULL, &err, path, sizeof path));
    assert_non_null(strstr(err.msg, "transactional.id=x cannot be used"));
    /* The file says exactly_once, so its transactional.id is fine. */
    c = load_file("PROCESSING_GUARANTEE=exactly_once\nkafka.transactional.id=x\n", NULL, NULL,
                  &err, path, sizeof path);
    if (c == NULL) fail_msg("%s", err.msg);
    sio_config_destroy(c);
    /* Exactly once reads committed commands and commits in transactions. */
    char *eos_env_only[] = {"PROCESSING_GUARANTEE=exactly_once", NULL};
    char *uncommitted[] = {"serve", "-X", "isolation.level=read_uncommitted", NULL};
    load_fails(uncommitted, eos_env_only, "~exactly_once reads only committed commands");
    char *autocommit[] = {"serve", "-X", "enable.auto.commit=1", NULL};
    load_fails(autocommit, eos_env_only, "~exactly_once commits offsets in its transactions");
    char *no_autocommit[] = {"serve", "-X", "enable.auto.commit=false", "-X",
                             "isolation.level=read_committed", NULL};
    c = load_ok(no_autocommit, eos_env_only);
    sio_config_destroy(c);
    c = load_ok(uncommitted, NULL); /* at least once may read uncommitted */
    sio_config_destroy(c);
    /* At least once commits what it stores through the auto commit: turning
     * it off would leave every offset uncommitted, so it is refused. */
    char *alos_manual[] = {"serve", "-X", "enable.auto.commit=false", NULL};
    load_fails(alos_manual, NULL, "~at_least_once commits the offsets it stores");
    char *alos_manual0[] = {"serve", "-X", "enable.auto.commit=0", NULL};
    load_fails(alos_manual0, NULL, "~without it nothing would ever be committed");
}

/* The group's rebalance protocol: cooperative-sticky unless
 * KAFKA_ASSIGNMENT_STRATEGY says otherwise; one protocol per member; the
 * librdkafka property itself is the setting's. */
static void assignment_strategy(void **state) {
    (void)state;
    char *none[] = {"serve", NULL};
    const sio_config *c = load_ok(none, NULL);
    assert_string_equal(c->assignment_strategy, "cooperative-sticky");
    sio_config_destroy(c);
    char *eager[] = {"KAFKA_ASSIGNMENT_STRATEGY=range,roundrobin", NULL};
    c = load_ok(none, eager);
    assert_string_equal(c->assignment_strategy, "range,roundrobin");
    sio_config_destroy(c);
    char *spaced[] = {"KAFKA_ASSIGNMENT_STRATEGY= roundrobin , range", NULL};
    c = load_ok(none, spaced);
    sio_config_destroy(c);
    char *mixed[] = {"KAFKA_ASSIGNMENT_STRATEGY=range,cooperative-sticky", NULL};
    load_fails(none, mixed,
               "KAFKA_ASSIGNMENT_STRATEGY: \"range,cooperative-sticky\" mixes cooperative-sticky "
               "with eager assignors: a member uses one protocol");
    char *unknown[] = {"KAFKA_ASSIGNMENT_STRATEGY=sticky", NULL};
    load_fails(none, unknown,
               "KAFKA_ASSIGNMENT_STRATEGY: \"sticky\" is not an assignor (cooperative-sticky, or "
               "range and/or roundrobin)");
    char *empty_item[] = {"KAFKA_ASSIGNMENT_STRATEGY=range,", NULL};
    load_fails(none, empty_item, "~\"\" is not an assignor");
    char *x[] = {"serve", "-X", "partition.assignment.strategy=range", NULL};
    load_fails(x, NULL,
               "-X: \"partition.assignment.strategy\" cannot be set here: use "
               "KAFKA_ASSIGNMENT_STRATEGY");
}

static void usage_lists_every_variable(void **state) {
    (void)state;
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    sio_config_usage(f);
    fclose(f);
    static const char *const names[] = {
        "KAFKA_BROKERS", "KAFKA_GROUP_ID", "KAFKA_COMMANDS_TOPIC", "KAFKA_RESPONSES_TOPIC",
        "DEDUPE_REDIS_ADDR", "WORKER_COUNT", "WORKER_INFLIGHT", "DEFAULT_WORKFLOW_TIMEOUT",
        "DEDUPE_TTL", "DEDUPE_LEASE", "DEDUPE_KEY_PREFIX", "REPLAY_KEY_PREFIX", "REDIS_USERNAME",
        "REDIS_PASSWORD", "REDIS_TIMEOUT",
        "RETRY_ATTEMPTS", "RETRY_BACKOFF_BASE", "RETRY_BACKOFF_MAX", "DRAIN_TIMEOUT",
        "STARTUP_TIMEOUT",
        "LOG_PAYLOADS", "LOG_LEVEL", "TOPIC_PARTITIONS", "TOPIC_REPLICATION", "WORKFLOWS_DIR",
        "LUA_DIR", "SIO_HTTP_ALLOW", "HTTP_TIMEOUT", "SIO_MEM_LIMIT", "SIO_INSTR_LIMIT",
        "SIO_PUBLISH_LIMIT", "PROCESSING_GUARANTEE", "KAFKA_PREFETCH_BYTES",
        "KAFKA_PREFETCH_MESSAGES", "KAFKA_PRODUCER_QUEUE_BYTES", "TXN_COMMIT_INTERVAL", "TXN_COMMIT_COMMANDS",
        "KAFKA_ASSIGNMENT_STRATEGY", "\"cooperative-sticky\"",
        "--brokers", "--group", "--commands-topic", "--responses-topic", "--redis", "--workers",
        "--inflight", "--timeout", "--workflows", "--lua", "--config", "--kafka-prop", "-X",
        "--log-level", "--log-payloads",
        "\"localhost:9092\"", "\"dev.sio.orchestrator.commands\"", "\"10m\"", "\"64m\"",
        "(DEFAULT_WORKFLOW_TIMEOUT)", "\"sio:dedupe:\"", "\"100000000\"",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strstr(out, names[i]) == NULL) fail_msg("usage lacks %s", names[i]);
    free(out);
}

/* Telemetry: OPS_ADDR, the OTLP endpoints and the sampler. */
static void telemetry_settings(void **state) {
    (void)state;
    char *argv[] = {"serve", NULL};
    char *none[] = {NULL};
    const sio_config *cfg = load_ok(argv, none);
    assert_string_equal(cfg->ops_host, "0.0.0.0");
    assert_int_equal(cfg->ops_port, 9464);
    assert_null(cfg->otlp_traces_url);
    assert_int_equal(cfg->sampler, SIO_SAMPLER_PARENTBASED_ALWAYS_ON);
    sio_config_destroy(cfg);
    char *env[] = {"OPS_ADDR=[::1]:0", "OTEL_EXPORTER_OTLP_ENDPOINT=http://col:4318/",
                   "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25", NULL};
    cfg = load_ok(argv, env);
    assert_string_equal(cfg->ops_host, "::1");
    assert_int_equal(cfg->ops_port, 0);
    assert_string_equal(cfg->otlp_traces_url, "http://col:4318/v1/traces");
    assert_int_equal(cfg->sampler, SIO_SAMPLER_TRACEIDRATIO);
    assert_true(cfg->sampler_ratio == 0.25);
    sio_config_destroy(cfg);
    char *env2[] = {"OPS_ADDR=off", "OTEL_EXPORTER_OTLP_ENDPOINT=http://a:1",
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://b/traces", NULL};
    cfg = load_ok(argv, env2);
    assert_null(cfg->ops_host);
    assert_string_equal(cfg->otlp_traces_url, "https://b/traces");
    sio_config_destroy(cfg);
    char *bad1[] = {"OPS_ADDR=9464", NULL}, *bad2[] = {"OPS_ADDR=h:70000", NULL},
         *bad3[] = {"OTEL_TRACES_SAMPLER=sometimes", NULL}, *bad4[] = {"OTEL_TRACES_SAMPLER_ARG=1.5", NULL},
         *bad5[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=col:4318", NULL}, *bad6[] = {"OPS_ADDR=::1:80", NULL};
    load_fails(argv, bad1, "~OPS_ADDR: \"9464\" is not host:port (or off)");
    load_fails(argv, bad2, "~OPS_ADDR:");
    load_fails(argv, bad3, "~OTEL_TRACES_SAMPLER: \"sometimes\" is not a sampler");
    load_fails(argv, bad4, "~OTEL_TRACES_SAMPLER_ARG: \"1.5\" is not a probability from 0 to 1");
    load_fails(argv, bad5, "~is not an http:// or https:// URL");
    load_fails(argv, bad6, "~write an IPv6 address as [addr]:port");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telemetry_settings),
        cmocka_unit_test(every_default),
        cmocka_unit_test(env_overrides_defaults),
        cmocka_unit_test(file_overrides_env),
        cmocka_unit_test(flags_override_file),
        cmocka_unit_test(kafka_passthrough),
        cmocka_unit_test(ttl_and_cross_checks),
        cmocka_unit_test(every_variable_checked),
        cmocka_unit_test(file_errors_name_file_and_line),
        cmocka_unit_test(flag_errors_name_flag),
        cmocka_unit_test(invalid_lower_layer_still_fails),
        cmocka_unit_test(durations),
        cmocka_unit_test(sizes),
        cmocka_unit_test(booleans),
        cmocka_unit_test(redis_urls),
        cmocka_unit_test(http_allow_list),
        cmocka_unit_test(subcommand_args),
        cmocka_unit_test(short_flags),
        cmocka_unit_test(dump_masks_secrets_and_reloads),
        cmocka_unit_test(processing_guarantee),
        cmocka_unit_test(assignment_strategy),
        cmocka_unit_test(usage_lists_every_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
