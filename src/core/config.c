/* config.c - layered configuration: defaults, env, file, flags; see config.h. */
#include "config.h"
#include "config_int.h"
#include "suggest.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* The table of settings                                                     */

/* How a setting's text is checked and stored. */
typedef enum kind {
    K_STR,     /* any string, may be empty */
    K_NESTR,   /* non-empty string */
    K_TOPIC,   /* a valid Kafka topic name */
    K_BROKERS, /* comma-separated host:port list */
    K_ASSIGNORS, /* a partition.assignment.strategy list of one protocol */
    K_INT,     /* int within [min, max] */
    K_I64,     /* int64 within [min, max] */
    K_DUR,     /* duration in ms within [min, max] */
    K_SIZE,    /* byte size (size_t) within [min, max] */
    K_BOOL,
    K_SAMPLER, /* sio_sampler_kind */
    K_RATIO,   /* double within [0, 1] */
    K_LEVEL,   /* sio_log_level */
    K_GUARANTEE, /* sio_guarantee */
    K_HOSTS,   /* comma-separated host allow-list */
    K_REDIS,   /* host:port or redis:// URL */
    K_SECRET,  /* string stored off the public struct until finalize */
    K_LISTEN,  /* host:port to listen on, or "off" / "" */
    K_URL,     /* an http:// or https:// URL, or "" */
} kind;

/* The loader's private state; pub comes first so destroy can find it. */
typedef struct impl {
    sio_config pub;
    char *user_set, *pass_set; /* REDIS_USERNAME / REDIS_PASSWORD, as given */
    char *url_user, *url_pass; /* credentials from a redis:// URL */
    bool ttl_set;              /* DEDUPE_TTL given (else = workflow timeout) */
    bool txn_commands_set;     /* TXN_COMMIT_COMMANDS given (else half the in-flight limit) */
    char **allow;              /* pub.http_allow */
    sio_config_kv *props;      /* pub.kafka_props, keys and values owned */
    size_t props_cap;
    char **props_flat;         /* pub.kafka_props_flat, borrowed strings */
    char **args;               /* pub.args, owned */
    sio_config_kv *extra;      /* pub.extra, owned */
    char *ops_host;            /* pub.ops_host */
    char *traces_url;          /* pub.otlp_traces_url */
    sio_config_kv *wf_env;     /* pub.wf_env, keys and values owned */
} impl;

/* One configuration variable: its name (env and file), flag, default text,
 * how it is parsed, where it is stored in struct impl, bounds, and help. */
typedef struct setting {
    const char *name;
    const char *flag;   /* NULL: no flag */
    const char *defval; /* NULL: no default text (see defdesc) */
    kind kind;
    size_t off;
    int64_t min, max;
    const char *defdesc; /* shown by usage when defval is NULL */
    const char *help;
} setting;

#define OFF(field) offsetof(impl, field)
#define I64MAX INT64_MAX


static const setting settings[] = {
    {"KAFKA_BROKERS", "--brokers", "localhost:9092", K_BROKERS, OFF(pub.kafka_brokers), 0, 0,
     NULL, "comma-separated bootstrap servers"},
    {"KAFKA_GROUP_ID", "--group", "sio-orchestrator", K_NESTR, OFF(pub.kafka_group_id), 0, 0,
     NULL, "consumer group id"},
    {"KAFKA_ASSIGNMENT_STRATEGY", NULL, "cooperative-sticky", K_ASSIGNORS,
     OFF(pub.assignment_strategy), 0, 0, NULL,
     "the group's rebalance protocol: cooperative-sticky (incremental: only the partitions that "
     "move are revoked) or range,roundrobin (eager: every rebalance revokes everything); every "
     "member of a group needs the same one"},
    {"KAFKA_COMMANDS_TOPIC", "--commands-topic", "dev.sio.orchestrator.commands", K_TOPIC,
     OFF(pub.commands_topic), 0, 0, NULL, "topic commands are consumed from"},
    {"KAFKA_RESPONSES_TOPIC", "--responses-topic", "dev.sio.orchestrator.responses", K_TOPIC,
     OFF(pub.responses_topic), 0, 0, NULL, "default reply topic"},
    /* librdkafka's queues: what serve holds besides its commands (README
     * "Memory").  librdkafka's own defaults (queued.max.messages.kbytes
     * 64 MiB, queued.min.messages 100,000 per partition, a fetch of up to
     * 50 MiB, 1 GiB of produced messages) let a backlog of small commands
     * be fetched whole: with 100,000 noop commands waiting the process
     * peaked at 70 MB, the prefetched messages - each with librdkafka's
     * few hundred bytes of bookkeeping - being most of it.  1 MiB ahead
     * is still thousands of commands, several times what the workers take
     * in flight by default; fetch.max.bytes follows the prefetch (librdkafka
     * bounds it by queued.max.messages.kbytes, and raises it to
     * message.max.bytes). */
    {"KAFKA_PREFETCH_BYTES", NULL, "1m", K_SIZE, OFF(pub.kafka_prefetch_bytes), 1024,
     (int64_t)INT32_MAX * 1024, NULL,
     "commands fetched ahead of the workers, in bytes (librdkafka's queued.max.messages.kbytes)"},
    {"KAFKA_PREFETCH_MESSAGES", NULL, "1000", K_INT, OFF(pub.kafka_prefetch_messages), 1,
     10000000, NULL,
     "... and at most this many per partition (librdkafka's queued.min.messages)"},
    {"KAFKA_PRODUCER_QUEUE_BYTES", NULL, "64m", K_SIZE, OFF(pub.kafka_producer_queue_bytes), 1024,
     (int64_t)INT32_MAX * 1024, NULL,
     "messages produced and not yet acknowledged, in bytes (librdkafka's "
     "queue.buffering.max.kbytes); when full, messages wait in order in the service"},
    {"DEDUPE_REDIS_ADDR", "--redis", "localhost:6379", K_REDIS, 0, 0, 0, NULL,
     "Redis for dedupe: host:port or redis://[user:pass@]host:port"},
    {"WORKER_COUNT", "--workers", "4", K_INT, OFF(pub.worker_count), 1, 1024, NULL,
     "worker threads (concurrent workflow executions)"},
    {"WORKER_INFLIGHT", "--inflight", "256", K_INT, OFF(pub.worker_inflight), 1, 1000000, NULL,
     "in-flight commands per worker (1 = one at a time, like the seed)"},
    {"DEFAULT_WORKFLOW_TIMEOUT", "--timeout", "10m", K_DUR, OFF(pub.workflow_timeout_ms), 1,
     I64MAX, NULL, "per-command execution limit"},
    {"DEDUPE_TTL", NULL, NULL, K_DUR, OFF(pub.dedupe_ttl_ms), 1, I64MAX,
     "DEFAULT_WORKFLOW_TIMEOUT", "how long a finished response is kept for duplicates"},
    {"DEDUPE_LEASE", NULL, "30s", K_DUR, OFF(pub.dedupe_lease_ms), 1, I64MAX, NULL,
     "claim on an in-flight command, renewed while it runs"},
    {"DEDUPE_KEY_PREFIX", NULL, "sio:dedupe:", K_STR, OFF(pub.dedupe_key_prefix), 0, 0, NULL,
     "prefix of dedupe keys in Redis"},
    {"REPLAY_KEY_PREFIX", NULL, "sio:replay:", K_STR, OFF(pub.replay_key_prefix), 0, 0, NULL,
     "prefix of the marks `replay` leaves in Redis (a namespace of its own: no correlation id "
     "can collide with a mark)"},
    {"REDIS_USERNAME", NULL, NULL, K_SECRET, OFF(user_set), 0, 0, "none",
     "Redis ACL user (wins over one in the URL)"},
    {"REDIS_PASSWORD", NULL, NULL, K_SECRET, OFF(pass_set), 0, 0, "none",
     "Redis password (wins over one in the URL)"},
    {"REDIS_TIMEOUT", NULL, "5s", K_DUR, OFF(pub.redis_timeout_ms), 1, I64MAX, NULL,
     "a Redis connect, or a reply, taking longer drops the connection (reconnected)"},
    {"RETRY_ATTEMPTS", NULL, "3", K_INT, OFF(pub.retry_attempts), 1, 100, NULL,
     "attempts per command for transient failures, the first included"},
    {"RETRY_BACKOFF_BASE", NULL, "200ms", K_DUR, OFF(pub.retry_backoff_base_ms), 0, I64MAX,
     NULL, "first backoff; doubles per attempt, with jitter"},
    {"RETRY_BACKOFF_MAX", NULL, "10s", K_DUR, OFF(pub.retry_backoff_max_ms), 0, I64MAX, NULL,
     "longest backoff"},
    {"DRAIN_TIMEOUT", NULL, "30s", K_DUR, OFF(pub.drain_timeout_ms), 0, I64MAX, NULL,
     "on shutdown, how long in-flight commands may finish"},
    {"STARTUP_TIMEOUT", NULL, "60s", K_DUR, OFF(pub.startup_timeout_ms), 1, I64MAX, NULL,
     "at start, how long serve waits for Kafka and Redis to answer"},
    {"LOG_PAYLOADS", "--log-payloads", "false", K_BOOL, OFF(pub.log_payloads), 0, 0, NULL,
     "log command and response payloads"},
    {"LOG_LEVEL", "--log-level", "info", K_LEVEL, OFF(pub.log_level), 0, 0, NULL,
     "debug, info, warn or error"},
    {"TOPIC_PARTITIONS", NULL, "6", K_INT, OFF(pub.topic_partitions), 1, 100000, NULL,
     "partitions of topics created by `topics`"},
    {"TOPIC_REPLICATION", NULL, "1", K_INT, OFF(pub.topic_replication), 1, 32767, NULL,
     "replication factor of topics created by `topics`"},
    {"WORKFLOWS_DIR", "--workflows", "workflows", K_NESTR, OFF(pub.workflows_dir), 0, 0, NULL,
     "folder of workflow files"},
    {"LUA_DIR", "--lua", "lua", K_NESTR, OFF(pub.lua_dir), 0, 0, NULL,
     "folder of Lua modules and tools"},
    {"SIO_HTTP_ALLOW", NULL, "", K_HOSTS, 0, 0, 0, NULL,
     "hosts scripts may call over HTTP, comma-separated host (default port only) or "
     "host:port; empty = none, * = any"},
    {"HTTP_TIMEOUT", NULL, "10s", K_DUR, OFF(pub.http_timeout_ms), 1, I64MAX, NULL,
     "default HTTP request timeout"},
    {"SIO_MEM_LIMIT", NULL, "64m", K_SIZE, OFF(pub.mem_limit), 64 * 1024, I64MAX, NULL,
     "Lua memory per execution (k, m, g suffixes)"},
    {"SIO_INSTR_LIMIT", NULL, "100000000", K_I64, OFF(pub.instr_limit), 1, I64MAX, NULL,
     "Lua instructions per execution"},
    {"OPS_ADDR", NULL, "0.0.0.0:9464", K_LISTEN, OFF(pub.ops_addr), 0, 0, NULL,
     "operations HTTP listener (/metrics, /healthz, /readyz, /workflows); off = none"},
    {"OPS_STALL_TIMEOUT", NULL, "30s", K_DUR, OFF(pub.ops_stall_ms), 1, I64MAX, NULL,
     "a loop thread silent for longer is wedged: /healthz answers 503"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", NULL, "", K_URL, OFF(pub.otlp_endpoint), 0, 0, NULL,
     "OTLP/HTTP collector base URL (spans to <url>/v1/traces); empty = no export"},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL, "", K_URL, OFF(pub.otlp_traces_endpoint), 0, 0,
     NULL, "OTLP/HTTP traces URL, used as is (wins over the base URL)"},
    {"OTEL_SERVICE_NAME", NULL, "sio-orchestrator", K_NESTR, OFF(pub.otel_service_name), 0, 0,
     NULL, "service.name of the exported spans"},
    {"OTEL_TRACES_SAMPLER", NULL, "parentbased_always_on", K_SAMPLER, OFF(pub.sampler), 0, 0,
     NULL, "always_on, always_off, traceidratio or parentbased_ of one of them"},
    {"OTEL_TRACES_SAMPLER_ARG", NULL, "1", K_RATIO, OFF(pub.sampler_ratio), 0, 0, NULL,
     "traceidratio's sampling probability, 0 to 1"},
    {"SIO_PUBLISH_LIMIT", NULL, "1000", K_I64, OFF(pub.publish_limit), 1, I64MAX, NULL,
     "step results + sio.publish calls per command; one more fails it"},
    {"WORKFLOW_CONFIG", NULL, "", K_STR, OFF(pub.workflow_config), 0, 0, NULL,
     "settings for workflows (sio.config, ${config.name}): a file of name=value lines or a "
     "folder with a file per name, reloaded with the workflows; SIO_CONFIG_<NAME> variables too"},
    {"WORKFLOW_SECRETS", NULL, "", K_STR, OFF(pub.workflow_secrets), 0, 0, NULL,
     "secrets for workflows (sio.secret, ${secret.name}), redacted from every output: like "
     "WORKFLOW_CONFIG; SIO_SECRET_<NAME> variables too"},
    {"PROCESSING_GUARANTEE", NULL, "at_least_once", K_GUARANTEE, OFF(pub.processing_guarantee),
     0, 0, NULL,
     "at_least_once, or exactly_once: outputs and offsets committed in Kafka transactions"},
    {"TXN_COMMIT_INTERVAL", NULL, "100ms", K_DUR, OFF(pub.txn_commit_interval_ms), 0, I64MAX,
     NULL, "exactly_once: a transaction starts this long after the previous one started"},
    {"TXN_COMMIT_COMMANDS", NULL, NULL, K_INT, OFF(pub.txn_commit_commands), 1, INT32_MAX,
     "half of WORKER_COUNT x WORKER_INFLIGHT",
     "exactly_once: ... or as soon as this many finished commands wait"},
};

static const char *const sampler_names[] = {
    [SIO_SAMPLER_ALWAYS_ON] = "always_on",
    [SIO_SAMPLER_ALWAYS_OFF] = "always_off",
    [SIO_SAMPLER_TRACEIDRATIO] = "traceidratio",
    [SIO_SAMPLER_PARENTBASED_ALWAYS_ON] = "parentbased_always_on",
    [SIO_SAMPLER_PARENTBASED_ALWAYS_OFF] = "parentbased_always_off",
    [SIO_SAMPLER_PARENTBASED_TRACEIDRATIO] = "parentbased_traceidratio",
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* Librdkafka properties the service owns: what a -X would break. */
static const struct {
    const char *prop, *why;
} reserved_props[] = {
    {"bootstrap.servers", "use KAFKA_BROKERS or --brokers"},
    {"metadata.broker.list", "use KAFKA_BROKERS or --brokers"},
    {"group.id", "use KAFKA_GROUP_ID or --group"},
    {"partition.assignment.strategy", "use KAFKA_ASSIGNMENT_STRATEGY"},
    {"enable.auto.offset.store", "the service stores offsets itself (commit safety)"},
    {"enable.idempotence", "the service requires the idempotent producer"},
    {"acks", "the service requires acks=all"},
    {"request.required.acks", "the service requires acks=all"},
};

/* Librdkafka properties that only mean something in one processing
 * guarantee: a transactional producer is the exactly-once mode's (at least
 * once, a transactional.id would make every produce outside a transaction
 * fail), and exactly-once needs committed reads and its own commits. */
static const struct {
    const char *prop, *value; /* value NULL: any value */
    sio_guarantee refused_in;
    const char *why;
} guarantee_props[] = {
    {"transactional.id", NULL, SIO_AT_LEAST_ONCE,
     "a transactional producer needs PROCESSING_GUARANTEE=exactly_once"},
    {"transaction.timeout.ms", NULL, SIO_AT_LEAST_ONCE,
     "transactions are only used with PROCESSING_GUARANTEE=exactly_once"},
    {"isolation.level", "read_uncommitted", SIO_EXACTLY_ONCE,
     "exactly_once reads only committed commands"},
    {"enable.auto.commit", "true", SIO_EXACTLY_ONCE,
     "exactly_once commits offsets in its transactions"},
    {"enable.auto.commit", "false", SIO_AT_LEAST_ONCE,
     "at_least_once commits the offsets it stores through librdkafka's auto commit; "
     "without it nothing would ever be committed"},
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

/* strdup that reports failure through err. */
static char *dup_or_err(const char *s, sio_err *err) {
    char *d = strdup(s);
    if (d == NULL) sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    return d;
}

/* Address of a setting's storage inside c. */
static void *slot(impl *c, const setting *s) {
    return (char *)c + s->off;
}

/* Replaces an owned string field with a copy of val. */
static int set_string(const char **field, const char *val, sio_err *err) {
    char *d = dup_or_err(val, err);
    if (d == NULL) return -1;
    free((char *)*field);
    *field = d;
    return 0;
}

/* The setting name (flags = 0) or flag (flags = 1) closest to word, or
 * NULL when none is close (sio_suggest). */
static const char *suggest(const char *word, int flags) {
    const char *names[NSETTINGS], *best = NULL;
    for (size_t i = 0; i < NSETTINGS; i++) names[i] = flags ? settings[i].flag : settings[i].name;
    return sio_suggest(word, names, NSETTINGS, &best, 1) ? best : NULL;
}


/* Stores a parsed Redis address into c (ownership of r's strings moves). */
static int store_redis(impl *c, redis_addr *r, sio_err *err) {
    size_t n = strlen(r->host) + 16;
    char *addr = malloc(n);
    if (addr == NULL) return sio_cfg_redis_addr_free(r), sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    snprintf(addr, n, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host, r->port);
    free((char *)c->pub.redis_addr), free((char *)c->pub.redis_host);
    free(c->url_user), free(c->url_pass);
    c->pub.redis_addr = addr, c->pub.redis_host = r->host, c->pub.redis_port = r->port;
    c->url_user = r->user, c->url_pass = r->pass;
    return 0;
}

/* Parses OPS_ADDR: "off" or "" (no listener), or host:port with a port
 * from 0 (any free one) to 65535; "[v6]:port" for IPv6; ":port" = every
 * address.  Stores the host into c->ops_host (NULL when off). */
static int parse_listen(impl *c, const char *val, sio_err *err) {
    free(c->ops_host);
    c->ops_host = NULL;
    c->pub.ops_port = 0;
    if (*val == '\0' || strcasecmp(val, "off") == 0) return 0;
    const char *colon = strrchr(val, ':');
    if (colon == NULL || colon[1] == '\0')
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not host:port (or off)", val);
    int64_t port;
    if (sio_cfg_parse_i64(colon + 1, 0, 65535, &port, err) != 0) return -1;
    const char *h = val;
    size_t hl = (size_t)(colon - val);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') h++, hl -= 2;
    else if (memchr(h, ':', hl) != NULL)
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\": write an IPv6 address as [addr]:port", val);
    c->ops_host = hl ? strndup(h, hl) : strdup("0.0.0.0");
    if (c->ops_host == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    c->pub.ops_port = (int)port;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Applying one value                                                        */

/* Parses val for the typed (numeric, bool, level) kinds and stores it. */
static int apply_typed(impl *c, const setting *s, const char *val, sio_err *err) {
    int64_t i64;
    uint64_t u64;
    bool b;
    switch (s->kind) {
    case K_INT:
        if (sio_cfg_parse_i64(val, s->min, s->max, &i64, err) != 0) return -1;
        if (s->off == OFF(pub.txn_commit_commands)) c->txn_commands_set = true;
        return *(int *)slot(c, s) = (int)i64, 0;
    case K_I64:
        if (sio_cfg_parse_i64(val, s->min, s->max, &i64, err) != 0) return -1;
        return *(int64_t *)slot(c, s) = i64, 0;
    case K_DUR:
        if (sio_parse_duration_ms(val, &i64, err) != 0) return -1;
        if (i64 < s->min) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" must be more than 0", val);
        if (s->off == OFF(pub.dedupe_ttl_ms)) c->ttl_set = true;
        return *(int64_t *)slot(c, s) = i64, 0;
    case K_SIZE:
        if (sio_parse_size(val, &u64, err) != 0) return -1;
        if (u64 < (uint64_t)s->min)
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is below the minimum of %" PRId64 "k",
                               val, s->min / 1024);
        if (u64 > SIZE_MAX) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is too large", val);
        return *(size_t *)slot(c, s) = (size_t)u64, 0;
    case K_BOOL:
        if (sio_parse_bool(val, &b, err) != 0) return -1;
        return *(bool *)slot(c, s) = b, 0;
    case K_SAMPLER:
        for (size_t i = 0; i < sizeof sampler_names / sizeof sampler_names[0]; i++)
            if (strcmp(val, sampler_names[i]) == 0) return *(sio_sampler_kind *)slot(c, s) = (sio_sampler_kind)i, 0;
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a sampler (always_on, always_off, "
                           "traceidratio, parentbased_always_on, parentbased_always_off, "
                           "parentbased_traceidratio)", val);
    case K_RATIO: {
        char *end;
        errno = 0;
        double d = strtod(val, &end);
        if (*val == '\0' || *end != '\0' || errno != 0 || !(d >= 0.0 && d <= 1.0))
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a probability from 0 to 1", val);
        return *(double *)slot(c, s) = d, 0;
    }
    case K_GUARANTEE:
        for (int g = SIO_AT_LEAST_ONCE; g <= SIO_EXACTLY_ONCE; g++)
            if (strcmp(val, sio_guarantee_name((sio_guarantee)g)) == 0)
                return *(sio_guarantee *)slot(c, s) = (sio_guarantee)g, 0;
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not at_least_once or exactly_once", val);
    default:
        break;
    }
    for (int l = SIO_LOG_DEBUG; l <= SIO_LOG_ERROR; l++)
        if (strcasecmp(val, sio_log_level_name((sio_log_level)l)) == 0)
            return *(sio_log_level *)slot(c, s) = (sio_log_level)l, 0;
    return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a log level (debug, info, warn, error)", val);
}

/* Checks and stores val for the string-like kinds. */
static int apply_text(impl *c, const setting *s, const char *val, sio_err *err) {
    redis_addr r;
    char **hosts;
    switch (s->kind) {
    case K_NESTR:
        if (*val == '\0') return sio_err_set(err, SIO_E_CONFIG, "must not be empty");
        break;
    case K_TOPIC:
        if (sio_cfg_check_topic(val, err) != 0) return -1;
        break;
    case K_BROKERS:
        if (sio_cfg_check_brokers(val, err) != 0) return -1;
        break;
    case K_ASSIGNORS:
        if (sio_cfg_check_assignors(val, err) != 0) return -1;
        break;
    case K_REDIS:
        if (sio_cfg_parse_redis(val, &r, err) != 0) return sio_cfg_redis_addr_free(&r), -1;
        return store_redis(c, &r, err);
    case K_LISTEN:
        if (parse_listen(c, val, err) != 0) return -1;
        break;
    case K_URL:
        if (*val && strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0)
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not an http:// or https:// URL", val);
        break;
    case K_HOSTS:
        if ((hosts = sio_cfg_parse_hosts(val, err)) == NULL) return -1;
        sio_cfg_free_strv(c->allow);
        c->allow = hosts;
        c->pub.http_allow = (const char *const *)hosts;
        return 0;
    default:
        break;
    }
    return set_string((const char **)slot(c, s), val, err);
}

/* Applies one value from a source; src ("WORKER_COUNT", "f.env:3:
 * WORKER_COUNT", "--workers") prefixes any error. */
static int apply(impl *c, const setting *s, const char *val, const char *src, sio_err *err) {
    sio_err e;
    sio_err_clear(&e);
    int rc = (s->kind >= K_INT && s->kind <= K_GUARANTEE) ? apply_typed(c, s, val, &e)
                                                      : apply_text(c, s, val, &e);
    if (rc == 0) return 0;
    if (e.code == SIO_E_NOMEM) return sio_err_set(err, SIO_E_NOMEM, "%s", e.msg);
    return sio_err_set(err, SIO_E_CONFIG, "%s: %s", src, e.msg);
}

/* ------------------------------------------------------------------------ */
/* Kafka pass-through properties                                             */

/* Adds or replaces one property (copies key and val). */
static int props_put(impl *c, const char *key, size_t keylen, const char *val, sio_err *err) {
    for (size_t i = 0; i < c->pub.n_kafka_props; i++) {
        if (strlen(c->props[i].key) == keylen && strncmp(c->props[i].key, key, keylen) == 0)
            return set_string(&c->props[i].val, val, err);
    }
    if (c->pub.n_kafka_props == c->props_cap) {
        size_t cap = c->props_cap ? c->props_cap * 2 : 8;
        sio_config_kv *p = realloc(c->props, cap * sizeof *p);
        if (p == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
        c->props = p, c->props_cap = cap;
    }
    sio_config_kv *kv = &c->props[c->pub.n_kafka_props];
    kv->key = strndup(key, keylen), kv->val = strdup(val);
    if (kv->key == NULL || kv->val == NULL) {
        free((char *)kv->key), free((char *)kv->val);
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    }
    c->pub.n_kafka_props++;
    return 0;
}

/* Checks a property name (n bytes at key) and adds "key=val". */
static int prop_add(impl *c, const char *key, size_t n, const char *val, const char *src,
                    sio_err *err) {
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t good = 0;
    while (good < n && strchr(ok, key[good]) != NULL) good++;
    if (n == 0 || good != n)
        return sio_err_set(err, SIO_E_CONFIG, "%s: \"%.*s\" is not a librdkafka property name",
                           src, (int)n, key);
    for (size_t i = 0; i < sizeof reserved_props / sizeof reserved_props[0]; i++)
        if (strlen(reserved_props[i].prop) == n && strncmp(reserved_props[i].prop, key, n) == 0)
            return sio_err_set(err, SIO_E_CONFIG, "%s: \"%.*s\" cannot be set here: %s", src,
                               (int)n, key, reserved_props[i].why);
    return props_put(c, key, n, val, err);
}

/* Adds a -X style "key=value" argument. */
static int prop_arg(impl *c, const char *kv, const char *src, sio_err *err) {
    const char *eq = strchr(kv, '=');
    if (eq == NULL)
        return sio_err_set(err, SIO_E_CONFIG, "%s: \"%s\" is not key=value", src, kv);
    return prop_add(c, kv, (size_t)(eq - kv), eq + 1, src, err);
}

/* Builds pub.kafka_props_flat (key, val, ..., NULL) over the final list. */
static int props_finish(impl *c, sio_err *err) {
    size_t n = c->pub.n_kafka_props;
    c->props_flat = calloc(2 * n + 1, sizeof *c->props_flat);
    if (c->props_flat == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    for (size_t i = 0; i < n; i++) {
        c->props_flat[2 * i] = (char *)c->props[i].key;
        c->props_flat[2 * i + 1] = (char *)c->props[i].val;
    }
    c->pub.kafka_props = c->props;
    c->pub.kafka_props_flat = (const char *const *)c->props_flat;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Sources                                                                   */

/* The setting called name (exact), or NULL. */
static const setting *by_name(const char *name) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0) return &settings[i];
    return NULL;
}

/* The setting whose flag is the n bytes at flag, or NULL. */
static const setting *by_flag(const char *flag, size_t n) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *f = settings[i].flag;
        if (f != NULL && strlen(f) == n && strncmp(f, flag, n) == 0) return &settings[i];
    }
    return NULL;
}

/* Applies every built-in default. */
static int apply_defaults(impl *c, sio_err *err) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->defval != NULL && apply(c, s, s->defval, s->name, err) != 0) return -1;
    }
    return 0;
}

/* Keeps a SIO_CONFIG_<NAME> or SIO_SECRET_<NAME> variable (copied) for
 * wfvalues.c; the name of the value is checked there. */
static int keep_wf_env(impl *c, const char *entry, const char *eq, sio_err *err) {
    size_t n = c->pub.n_wf_env;
    sio_config_kv *v = realloc(c->wf_env, (n + 1) * sizeof *v);
    if (v == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    c->wf_env = v;
    c->pub.wf_env = v;
    v[n].key = strndup(entry, (size_t)(eq - entry));
    v[n].val = strdup(eq + 1);
    if (v[n].key == NULL || v[n].val == NULL) {
        free((char *)v[n].key), free((char *)v[n].val);
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    }
    c->pub.n_wf_env = n + 1;
    return 0;
}

/* Applies every known variable present in envp. */
static int apply_env(impl *c, char **envp, sio_err *err) {
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *eq = strchr(envp[i], '=');
        if (eq == NULL) continue;
        if ((strncmp(envp[i], "SIO_CONFIG_", 11) == 0 || strncmp(envp[i], "SIO_SECRET_", 11) == 0) &&
            keep_wf_env(c, envp[i], eq, err) != 0)
            return -1;
        for (size_t k = 0; k < NSETTINGS; k++) {
            const setting *s = &settings[k];
            if (strlen(s->name) == (size_t)(eq - envp[i]) &&
                strncmp(s->name, envp[i], (size_t)(eq - envp[i])) == 0 &&
                apply(c, s, eq + 1, s->name, err) != 0)
                return -1;
        }
    }
    return 0;
}

/* Applies one config-file line (modified in place); path:lineno names it. */
static int apply_line(impl *c, char *line, const char *path, size_t lineno, sio_err *err) {
    char src[512], *key, *val;
    int kind = sio_cfg_split_line(line, &key, &val);
    if (kind == 0) return 0;
    if (kind < 0)
        return sio_err_set(err, SIO_E_CONFIG, "%s:%zu: expected KEY=value, got \"%s\"", path,
                           lineno, key);
    snprintf(src, sizeof src, "%s:%zu: %s", path, lineno, key);
    if (strncmp(key, "kafka.", 6) == 0) return prop_add(c, key + 6, strlen(key + 6), val, src, err);
    const setting *s = by_name(key);
    if (s != NULL) return apply(c, s, val, src, err);
    const char *hint = suggest(key, 0);
    return sio_err_set(err, SIO_E_CONFIG, "%s:%zu: unknown key \"%s\"%s%s%s", path, lineno, key,
                       hint ? " (did you mean " : "", hint ? hint : "", hint ? "?)" : "");
}

/* Reads and applies the config file at path. */
static int apply_file(impl *c, const char *path, sio_err *err) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return sio_err_set(err, SIO_E_CONFIG, "--config: cannot open \"%s\": %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) != -1) rc = apply_line(c, line, path, ++lineno, err);
    if (rc == 0 && ferror(f))
        rc = sio_err_set(err, SIO_E_CONFIG, "--config: cannot read \"%s\": %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */

/* One shared flag occurrence, applied after the file. */
typedef struct flag_item {
    const setting *s; /* NULL: a -X property */
    const char *val;  /* borrowed from argv */
    char src[64];     /* the flag as written, for errors */
} flag_item;

/* The command line split into what load needs, borrowed from argv. */
typedef struct cmdline {
    flag_item *items;
    size_t nitems;
    const char *config;
} cmdline;

/* Appends a positional argument (copied). */
static int add_positional(impl *c, const char *arg, const sio_config_opts *opts, sio_err *err) {
    int max = opts ? opts->max_positional : 0;
    if (max >= 0 && c->pub.nargs >= (size_t)max)
        return sio_err_set(err, SIO_E_CONFIG, "unexpected argument \"%s\"", arg);
    if ((c->args[c->pub.nargs] = strdup(arg)) == NULL)
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    c->pub.nargs++;
    return 0;
}

/* The listed extra flag matching the n bytes at name: sets *takes_value. */
static const char *find_extra(const sio_config_opts *opts, const char *name, size_t n,
                              bool *takes_value) {
    for (size_t i = 0; opts && opts->extra_flags && opts->extra_flags[i]; i++) {
        const char *f = opts->extra_flags[i];
        size_t fl = strlen(f);
        *takes_value = fl > 0 && f[fl - 1] == '=';
        if (fl - *takes_value == n && strncmp(f, name, n) == 0) return f;
    }
    return NULL;
}

/* Takes the value of a flag: inline after '=', else the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *inl, const char *flag,
                              size_t n, sio_err *err) {
    if (inl != NULL) return inl;
    if (*i + 1 >= argc) {
        sio_err_set(err, SIO_E_CONFIG, "%.*s needs a value", (int)n, flag);
        return NULL;
    }
    return argv[++*i];
}

/* Records a subcommand flag occurrence in pub.extra (copies). */
static int add_extra(impl *c, const char *name, size_t n, const char *val, sio_err *err) {
    sio_config_kv *kv = &c->extra[c->pub.nextra];
    kv->key = strndup(name, n), kv->val = strdup(val);
    if (kv->key == NULL || kv->val == NULL) {
        free((char *)kv->key), free((char *)kv->val);
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    }
    c->pub.nextra++;
    return 0;
}

/* Handles one "--name[=value]" argument at argv[*i]. */
static int long_flag(impl *c, cmdline *cl, int argc, char **argv, int *i,
                     const sio_config_opts *opts, sio_err *err) {
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *inl = eq ? eq + 1 : NULL, *val;
    const setting *s = by_flag(arg, n);
    bool takes;
    if (s != NULL && s->kind == K_BOOL) { /* a switch: --log-payloads[=bool] */
        val = inl ? inl : "true";
    } else if (s != NULL || (n == 8 && strncmp(arg, "--config", n) == 0) ||
               (n == 12 && strncmp(arg, "--kafka-prop", n) == 0)) {
        if ((val = flag_value(argc, argv, i, inl, arg, n, err)) == NULL) return -1;
        if (s == NULL && arg[2] == 'c') return cl->config = val, 0;
    } else if (find_extra(opts, arg, n, &takes) != NULL) {
        if (!takes && inl != NULL)
            return sio_err_set(err, SIO_E_CONFIG, "%.*s takes no value", (int)n, arg);
        val = takes ? flag_value(argc, argv, i, inl, arg, n, err) : "";
        return val == NULL ? -1 : add_extra(c, arg, n, val, err);
    } else {
        char word[128];
        snprintf(word, sizeof word, "%.*s", (int)n, arg);
        const char *hint = suggest(word, 1);
        return sio_err_set(err, SIO_E_CONFIG, "unknown flag \"%s\"%s%s%s", word,
                           hint ? " (did you mean " : "", hint ? hint : "", hint ? "?)" : "");
    }
    flag_item *it = &cl->items[cl->nitems++];
    it->s = s, it->val = val;
    snprintf(it->src, sizeof it->src, "%.*s", (int)n, arg);
    return 0;
}

/* Handles one "-c[value]" argument at argv[*i] when it is the short form
 * of an extra flag: 0 when taken, -1 on error, 1 when not a short flag. */
static int short_flag(impl *c, int argc, char **argv, int *i, const sio_config_opts *opts,
                      sio_err *err) {
    const char *a = argv[*i], *name = NULL;
    for (const char *const *p = opts ? opts->short_flags : NULL; p && p[0] && p[1]; p += 2)
        if (strncmp(a, p[0], 2) == 0) name = p[1];
    bool takes;
    if (name == NULL || find_extra(opts, name, strlen(name), &takes) == NULL) return 1;
    if (!takes && a[2] != '\0')
        return sio_err_set(err, SIO_E_CONFIG, "unknown flag \"%s\" (%.2s takes no value)", a, a);
    const char *val = takes ? flag_value(argc, argv, i, a[2] ? a + 2 : NULL, a, 2, err) : "";
    return val == NULL ? -1 : add_extra(c, name, strlen(name), val, err);
}

/* Splits argv into flag items, the config path, extras and positionals. */
static int scan_args(impl *c, cmdline *cl, int argc, char **argv, const sio_config_opts *opts,
                     sio_err *err) {
    bool positional_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (positional_only || a[0] != '-' || a[1] == '\0') {
            if (add_positional(c, a, opts, err) != 0) return -1;
        } else if (strcmp(a, "--") == 0) {
            positional_only = true;
        } else if (strncmp(a, "--", 2) == 0) {
            if (long_flag(c, cl, argc, argv, &i, opts, err) != 0) return -1;
        } else if (a[1] == 'X') {
            flag_item *it = &cl->items[cl->nitems++];
            it->s = NULL;
            if ((it->val = flag_value(argc, argv, &i, a[2] ? a + 2 : NULL, a, 2, err)) == NULL)
                return -1;
            snprintf(it->src, sizeof it->src, "-X");
        } else {
            int rc = short_flag(c, argc, argv, &i, opts, err);
            if (rc < 0) return -1;
            if (rc > 0) return sio_err_set(err, SIO_E_CONFIG, "unknown flag \"%s\"", a);
        }
    }
    return 0;
}

/* Applies the recorded flag items in order. */
static int apply_flags(impl *c, const cmdline *cl, sio_err *err) {
    for (size_t i = 0; i < cl->nitems; i++) {
        const flag_item *it = &cl->items[i];
        int rc = it->s ? apply(c, it->s, it->val, it->src, err) : prop_arg(c, it->val, it->src, err);
        if (rc != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Load                                                                      */

/* Does a pass-through value match want (NULL: anything; "true": any
 * spelling of true)? */
static bool prop_value_is(const char *val, const char *want) {
    bool b;
    sio_err e;
    if (want == NULL) return true;
    if (strcmp(want, "true") == 0) return sio_parse_bool(val, &b, &e) == 0 && b;
    if (strcmp(want, "false") == 0) return sio_parse_bool(val, &b, &e) == 0 && !b;
    return strcasecmp(val, want) == 0;
}

/* Resolves defaults that depend on other settings and cross-checks. */
static int finalize(impl *c, sio_err *err) {
    sio_config *p = &c->pub;
    if (!c->ttl_set) p->dedupe_ttl_ms = p->workflow_timeout_ms;
    if (p->retry_backoff_base_ms > p->retry_backoff_max_ms)
        return sio_err_set(err, SIO_E_CONFIG,
                           "RETRY_BACKOFF_BASE (%" PRId64 "ms) is longer than RETRY_BACKOFF_MAX (%" PRId64 "ms)",
                           p->retry_backoff_base_ms, p->retry_backoff_max_ms);
    if (!c->txn_commands_set) {
        int64_t half = (int64_t)p->worker_count * p->worker_inflight / 2;
        p->txn_commit_commands = half < 1 ? 1 : half > INT32_MAX ? INT32_MAX : (int)half;
    }
    for (size_t i = 0; i < p->n_kafka_props; i++) {
        for (size_t k = 0; k < sizeof guarantee_props / sizeof guarantee_props[0]; k++) {
            if (strcmp(c->props[i].key, guarantee_props[k].prop) != 0 ||
                p->processing_guarantee != guarantee_props[k].refused_in ||
                !prop_value_is(c->props[i].val, guarantee_props[k].value))
                continue;
            return sio_err_set(err, SIO_E_CONFIG,
                               "kafka property %s=%s cannot be used with "
                               "PROCESSING_GUARANTEE=%s: %s",
                               c->props[i].key, c->props[i].val,
                               sio_guarantee_name(p->processing_guarantee),
                               guarantee_props[k].why);
        }
    }
    const char *user = c->user_set ? c->user_set : c->url_user;
    const char *pass = c->pass_set ? c->pass_set : c->url_pass;
    p->redis_username = user && *user ? user : NULL;
    p->redis_password = pass && *pass ? pass : NULL;
    if (c->allow == NULL && (c->allow = calloc(1, sizeof *c->allow)) == NULL)
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    p->http_allow = (const char *const *)c->allow;
    p->args = (const char *const *)c->args;
    p->extra = c->extra;
    p->ops_host = c->ops_host;
    const char *base = p->otlp_endpoint;
    if (*p->otlp_traces_endpoint) c->traces_url = strdup(p->otlp_traces_endpoint);
    else if (*base && asprintf(&c->traces_url, "%.*s/v1/traces", (int)strlen(base) -
                               (base[strlen(base) - 1] == '/'), base) < 0)
        c->traces_url = NULL;
    if ((*base || *p->otlp_traces_endpoint) && c->traces_url == NULL)
        return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    p->otlp_traces_url = c->traces_url;
    return props_finish(c, err);
}

/* Allocates the private state with room for argc arguments. */
static impl *impl_new(int argc, sio_err *err) {
    impl *c = calloc(1, sizeof *c);
    size_t n = argc > 0 ? (size_t)argc : 1;
    if (c != NULL) {
        c->args = calloc(n + 1, sizeof *c->args);
        c->extra = calloc(n, sizeof *c->extra);
    }
    if (c == NULL || c->args == NULL || c->extra == NULL) {
        sio_config_destroy(c ? &c->pub : NULL);
        sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
        return NULL;
    }
    return c;
}

const sio_config *sio_config_load(int argc, char **argv, char **envp,
                                  const sio_config_opts *opts, sio_err *err) {
    impl *c = impl_new(argc, err);
    cmdline cl = {0};
    if (c == NULL) return NULL;
    cl.items = calloc(argc > 0 ? (size_t)argc : 1, sizeof *cl.items);
    if (cl.items == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
        goto fail;
    }
    if (scan_args(c, &cl, argc, argv, opts, err) != 0 || apply_defaults(c, err) != 0 ||
        apply_env(c, envp, err) != 0)
        goto fail;
    if (cl.config != NULL && (set_string(&c->pub.config_file, cl.config, err) != 0 ||
                              apply_file(c, cl.config, err) != 0))
        goto fail;
    if (apply_flags(c, &cl, err) != 0 || finalize(c, err) != 0) goto fail;
    free(cl.items);
    return &c->pub;
fail:
    free(cl.items);
    sio_config_destroy(&c->pub);
    return NULL;
}

/* Frees the owned string fields of the public struct. */
static void free_pub_strings(impl *c) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->kind == K_STR || s->kind == K_NESTR || s->kind == K_TOPIC ||
            s->kind == K_BROKERS || s->kind == K_ASSIGNORS || s->kind == K_SECRET ||
            s->kind == K_LISTEN || s->kind == K_URL)
            free(*(char **)slot(c, s));
    }
    free(c->ops_host), free(c->traces_url);
    free((char *)c->pub.redis_addr), free((char *)c->pub.redis_host);
    free((char *)c->pub.config_file);
}

void sio_config_destroy(const sio_config *cfg) {
    if (cfg == NULL) return;
    impl *c = (impl *)(uintptr_t)cfg; /* pub is the first member */
    free_pub_strings(c);
    free(c->url_user), free(c->url_pass);
    sio_cfg_free_strv(c->allow);
    for (size_t i = 0; i < c->pub.n_kafka_props; i++)
        free((char *)c->props[i].key), free((char *)c->props[i].val);
    free(c->props), free(c->props_flat);
    sio_cfg_free_strv(c->args);
    for (size_t i = 0; i < c->pub.nextra; i++)
        free((char *)c->extra[i].key), free((char *)c->extra[i].val);
    free(c->extra);
    for (size_t i = 0; i < c->pub.n_wf_env; i++)
        free((char *)c->wf_env[i].key), free((char *)c->wf_env[i].val);
    free(c->wf_env);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Queries and printing                                                      */

int sio_config_kafka_props(const sio_config *cfg, size_t i, const char **key, const char **val) {
    if (cfg == NULL || i >= cfg->n_kafka_props) return 0;
    *key = cfg->kafka_props[i].key;
    *val = cfg->kafka_props[i].val;
    return 1;
}

const char *sio_config_extra(const sio_config *cfg, const char *flag) {
    const char *found = NULL;
    size_t n = strlen(flag);
    if (n > 0 && flag[n - 1] == '=') n--; /* accept the name as listed in opts */
    for (size_t i = 0; cfg != NULL && i < cfg->nextra; i++)
        if (strlen(cfg->extra[i].key) == n && strncmp(cfg->extra[i].key, flag, n) == 0)
            found = cfg->extra[i].val;
    return found;
}

const char *sio_guarantee_name(sio_guarantee g) {
    return g == SIO_EXACTLY_ONCE ? "exactly_once" : "at_least_once";
}

const char *sio_log_level_name(sio_log_level level) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return (unsigned)level <= SIO_LOG_ERROR ? names[level] : "info";
}

/* Writes ms as the shortest duration text ("1h30m", "200ms", "0"). */
static void print_duration(FILE *out, int64_t ms) {
    static const struct { int64_t ms; const char *unit; } units[] = {
        {HOUR_MS, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    if (ms == 0) {
        fputs("0", out);
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        if (ms >= units[i].ms) fprintf(out, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
        ms %= units[i].ms;
    }
}

/* Writes a byte size with the largest exact suffix ("64m", "1000"). */
static void print_size(FILE *out, uint64_t v) {
    static const char units[] = "tgmk";
    for (int i = 0; i < 4; i++) {
        uint64_t mul = 1ULL << (10 * (4 - i));
        if (v != 0 && v % mul == 0) {
            fprintf(out, "%" PRIu64 "%c", v / mul, units[i]);
            return;
        }
    }
    fprintf(out, "%" PRIu64, v);
}

/* Writes the effective value of one setting. */
static void print_value(FILE *out, const sio_config *cfg, const setting *s) {
    impl *c = (impl *)(uintptr_t)cfg;
    switch (s->kind) {
    case K_INT: fprintf(out, "%d", *(int *)slot(c, s)); break;
    case K_I64: fprintf(out, "%" PRId64, *(int64_t *)slot(c, s)); break;
    case K_DUR: print_duration(out, *(int64_t *)slot(c, s)); break;
    case K_SIZE: print_size(out, *(size_t *)slot(c, s)); break;
    case K_BOOL: fputs(*(bool *)slot(c, s) ? "true" : "false", out); break;
    case K_SAMPLER: fputs(sampler_names[cfg->sampler], out); break;
    case K_RATIO: fprintf(out, "%g", *(double *)slot(c, s)); break;
    case K_LEVEL: fputs(sio_log_level_name(cfg->log_level), out); break;
    case K_GUARANTEE: fputs(sio_guarantee_name(cfg->processing_guarantee), out); break;
    case K_REDIS: fputs(cfg->redis_addr, out); break;
    case K_HOSTS:
        for (size_t i = 0; cfg->http_allow[i]; i++)
            fprintf(out, "%s%s", i ? "," : "", cfg->http_allow[i]);
        break;
    case K_SECRET:
        if (s->off == OFF(user_set)) fputs(cfg->redis_username ? cfg->redis_username : "", out);
        else fputs(cfg->redis_password ? "********" : "", out);
        break;
    default: fputs(*(const char **)slot(c, s), out); break;
    }
}

/* Should a pass-through property's value be hidden? */
static bool secret_prop(const char *key) {
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL;
}

void sio_config_dump(const sio_config *cfg, FILE *out) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        fprintf(out, "%s=", settings[i].name);
        print_value(out, cfg, &settings[i]);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_kafka_props; i++)
        fprintf(out, "kafka.%s=%s\n", cfg->kafka_props[i].key,
                secret_prop(cfg->kafka_props[i].key) ? "********" : cfg->kafka_props[i].val);
}

void sio_config_usage(FILE *out) {
    fprintf(out, "Configuration (lowest to highest precedence: defaults, environment,\n"
                 "--config FILE with KEY=value lines, flags):\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        char def[64];
        snprintf(def, sizeof def, s->defval ? "\"%s\"" : "(%s)", s->defval ? s->defval : s->defdesc);
        fprintf(out, "  %-25s %-18s default %s\n      %s\n", s->name, s->flag ? s->flag : "",
                def, s->help);
    }
    fprintf(out, "\n  --config FILE             KEY=value lines, # comments; kafka.<prop>=value\n"
                 "                            lines pass librdkafka properties through\n"
                 "  -X, --kafka-prop KEY=VAL  librdkafka property (repeatable)\n"
                 "\nDurations need a unit: 500ms, 30s, 10m, 1h30m.  Sizes: 64m, 1g, or bytes.\n"
                 "Booleans: true/false, yes/no, on/off, 1/0.\n");
}
