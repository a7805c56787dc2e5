/*
 * config.h - the one place where configuration is parsed.
 *
 * sio_config_load() layers four sources, lowest to highest precedence:
 *
 *   1. built-in defaults,
 *   2. environment variables (the names below; SPEC §2 names are exact),
 *   3. a config file given with --config FILE: `KEY=value` lines with the
 *      same names as the environment variables, plus `kafka.<prop>=value`
 *      lines passed through to librdkafka,
 *   4. command-line flags (and -X key=value / --kafka-prop key=value).
 *
 * Every value is checked when its source is applied, so an invalid value is
 * an error even when a higher source would override it.  Every error has
 * code SIO_E_CONFIG and a message that names the source and the bad value:
 *
 *   WORKER_COUNT: "abc" is not a positive integer
 *   config.env:7: unknown key "KAFKA_BROKRS" (did you mean KAFKA_BROKERS?)
 *   --timeout: "30" has no unit (write "30s" or "30ms")
 *
 * The caller turns a failed load into exit code 2.
 *
 * The result is immutable: load returns a const pointer, every field is
 * owned by the config, and nothing changes until sio_config_destroy().  It
 * may be shared read-only between threads.
 *
 * Config file format: one `KEY=value` per line; blank lines and lines whose
 * first non-blank character is `#` are ignored; whitespace around the key and
 * the value is trimmed; a value wholly enclosed in matching "double" or
 * 'single' quotes loses the quotes (no escapes).  There are no end-of-line
 * comments, so `#` inside a value (a password) is kept.  Later lines win.
 *
 * Flags: --brokers, --group, --commands-topic, --responses-topic, --redis,
 * --workers, --inflight, --timeout, --workflows, --lua, --log-level (each
 * "--flag VALUE" or "--flag=VALUE"), --log-payloads (a switch; or
 * "--log-payloads=false"), --config FILE, and -X key=value, -Xkey=value,
 * --kafka-prop key=value (repeatable), and the subcommand's own flags
 * (sio_config_opts).  A pass-through property given again
 * replaces the earlier value.  Properties the service must own are refused:
 * bootstrap.servers / metadata.broker.list / group.id (use the settings),
 * enable.auto.offset.store, enable.idempotence, acks / request.required.acks
 * (commit safety, SPEC §3).
 */
#ifndef SIO_CONFIG_H
#define SIO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sio_err.h"

typedef enum sio_log_level {
    SIO_LOG_DEBUG = 0,
    SIO_LOG_INFO = 1,
    SIO_LOG_WARN = 2,
    SIO_LOG_ERROR = 3,
} sio_log_level;

/* OTEL_TRACES_SAMPLER (the OpenTelemetry SDK's names). */
typedef enum sio_sampler_kind {
    SIO_SAMPLER_ALWAYS_ON,
    SIO_SAMPLER_ALWAYS_OFF,
    SIO_SAMPLER_TRACEIDRATIO,
    SIO_SAMPLER_PARENTBASED_ALWAYS_ON,
    SIO_SAMPLER_PARENTBASED_ALWAYS_OFF,
    SIO_SAMPLER_PARENTBASED_TRACEIDRATIO,
} sio_sampler_kind;
/* PROCESSING_GUARANTEE. */
typedef enum sio_guarantee {
    SIO_AT_LEAST_ONCE = 0, /* idempotent producer, offsets stored after delivery */
    SIO_EXACTLY_ONCE = 1,  /* outputs and offsets in one Kafka transaction */
} sio_guarantee;

/* A key and a value, both owned by the config. */
typedef struct sio_config_kv {
    const char *key;
    const char *val;
} sio_config_kv;

/* The effective configuration.  Every pointer is owned by the config and
 * lives until sio_config_destroy(); no string field is NULL unless said. */
typedef struct sio_config {
    /* Kafka (SPEC §2) */
    const char *kafka_brokers;   /* KAFKA_BROKERS, --brokers */
    const char *kafka_group_id;  /* KAFKA_GROUP_ID, --group */
    const char *assignment_strategy; /* KAFKA_ASSIGNMENT_STRATEGY (serve's consumer) */
    const char *commands_topic;  /* KAFKA_COMMANDS_TOPIC, --commands-topic */
    const char *responses_topic; /* KAFKA_RESPONSES_TOPIC, --responses-topic */
    int topic_partitions;        /* TOPIC_PARTITIONS (for `topics`) */
    int topic_replication;       /* TOPIC_REPLICATION */
    /* librdkafka's queues, which bound most of serve's memory (README
     * "Memory"); a -X of the property itself wins. */
    size_t kafka_prefetch_bytes;   /* KAFKA_PREFETCH_BYTES: queued.max.messages.kbytes */
    int kafka_prefetch_messages;   /* KAFKA_PREFETCH_MESSAGES: queued.min.messages */
    size_t kafka_producer_queue_bytes; /* KAFKA_PRODUCER_QUEUE_BYTES: queue.buffering.max.kbytes */
    /* librdkafka pass-through properties, in first-given order; a key given
     * again keeps its place and takes the later value.  kafka_props_flat is
     * the same as key, val, key, val, ..., NULL (sio_kafka_conf's format). */
    size_t n_kafka_props;
    const sio_config_kv *kafka_props;
    const char *const *kafka_props_flat;

    /* Redis dedupe.  DEDUPE_REDIS_ADDR (--redis) is host:port or
     * redis://[user[:pass]@]host[:port] (port 6379 when absent; %XX escapes
     * in user and pass).  REDIS_USERNAME / REDIS_PASSWORD, when set in any
     * source, win over credentials in the URL. */
    const char *redis_addr;      /* normalised "host:port", no credentials */
    const char *redis_host;      /* without [] for IPv6 */
    int redis_port;
    const char *redis_username;  /* NULL when none */
    const char *redis_password;  /* NULL when none; never log it */
    int64_t dedupe_ttl_ms;       /* DEDUPE_TTL, default = workflow timeout */
    int64_t dedupe_lease_ms;     /* DEDUPE_LEASE */
    const char *dedupe_key_prefix; /* DEDUPE_KEY_PREFIX, may be "" */
    const char *replay_key_prefix; /* REPLAY_KEY_PREFIX */
    int64_t redis_timeout_ms;    /* REDIS_TIMEOUT: connect and reply timeout */

    /* Workers and execution */
    int worker_count;            /* WORKER_COUNT, --workers */
    int worker_inflight;         /* WORKER_INFLIGHT, --inflight (1 = the seed) */
    int64_t workflow_timeout_ms; /* DEFAULT_WORKFLOW_TIMEOUT, --timeout */
    int retry_attempts;          /* RETRY_ATTEMPTS: total attempts, >= 1 */
    int64_t retry_backoff_base_ms; /* RETRY_BACKOFF_BASE (<= max) */
    int64_t retry_backoff_max_ms;  /* RETRY_BACKOFF_MAX */
    int64_t drain_timeout_ms;    /* DRAIN_TIMEOUT, 0 = do not wait */
    int64_t startup_timeout_ms;  /* STARTUP_TIMEOUT: serve's wait for Kafka and Redis */
    const char *workflows_dir;   /* WORKFLOWS_DIR, --workflows */
    const char *lua_dir;         /* LUA_DIR, --lua */

    /* Sandbox */
    const char *const *http_allow; /* SIO_HTTP_ALLOW: NULL-terminated, lower
                                    * case; empty = none, {"*"} = any; each
                                    * entry as sio_http_allow_parse takes it */
    int64_t http_timeout_ms;     /* HTTP_TIMEOUT */
    size_t mem_limit;            /* SIO_MEM_LIMIT, bytes per execution */
    int64_t instr_limit;         /* SIO_INSTR_LIMIT, per execution */
    int64_t publish_limit;       /* SIO_PUBLISH_LIMIT: step results +
                                  * sio.publish calls per command */

    /* Telemetry (src/telemetry) */
    const char *ops_addr;        /* OPS_ADDR as given ("off" or "" = none) */
    const char *ops_host;        /* its host (no [] for IPv6), NULL when off */
    int ops_port;                /* its port; 0 = any free port */
    int64_t ops_stall_ms;        /* OPS_STALL_TIMEOUT: a loop thread silent
                                  * longer than this is wedged (/healthz) */
    const char *otlp_endpoint;   /* OTEL_EXPORTER_OTLP_ENDPOINT, "" = none */
    const char *otlp_traces_endpoint; /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT */
    const char *otlp_traces_url; /* where spans go: the traces endpoint, else
                                  * <endpoint>/v1/traces; NULL = tracing off */
    const char *otel_service_name; /* OTEL_SERVICE_NAME */
    sio_sampler_kind sampler;    /* OTEL_TRACES_SAMPLER */
    double sampler_ratio;        /* OTEL_TRACES_SAMPLER_ARG, 0..1 */
    /* Configuration and secrets for workflows (wfvalues.h) */
    const char *workflow_config;  /* WORKFLOW_CONFIG: a file or folder; "" = none */
    const char *workflow_secrets; /* WORKFLOW_SECRETS: likewise */
    size_t n_wf_env;              /* the SIO_CONFIG_<NAME> and SIO_SECRET_<NAME> */
    const sio_config_kv *wf_env;  /* variables, in environment order (key = the
                                   * variable's name); never log their values */
    /* Processing guarantee (PROCESSING_GUARANTEE, TXN_COMMIT_*).  A
     * pass-through transactional.id or transaction.timeout.ms is refused
     * with at_least_once, isolation.level=read_uncommitted and
     * enable.auto.commit=true with exactly_once. */
    sio_guarantee processing_guarantee;
    int64_t txn_commit_interval_ms; /* TXN_COMMIT_INTERVAL */
    int txn_commit_commands;        /* TXN_COMMIT_COMMANDS, default half the in-flight limit */

    /* Logging */
    sio_log_level log_level;     /* LOG_LEVEL, --log-level */
    bool log_payloads;           /* LOG_PAYLOADS, --log-payloads */

    /* Command line left to the caller */
    const char *config_file;     /* --config FILE, or NULL */
    size_t nargs;                /* positional arguments, in order */
    const char *const *args;     /* NULL-terminated */
    size_t nextra;               /* opts->extra_flags seen, in order; val is */
    const sio_config_kv *extra;  /* the flag's value, "" for a switch */
} sio_config;

/* What a subcommand accepts on top of the shared flags. */
typedef struct sio_config_opts {
    /* The subcommand's own flags, NULL-terminated (may be NULL).  A name
     * ending in '=' ("--attrs=") takes a value, given as "--attrs JSON" or
     * "--attrs=JSON"; any other name ("--wait") is a switch.  Each occurrence
     * lands in cfg->extra as {"--attrs", "JSON"} or {"--wait", ""}. */
    const char *const *extra_flags;
    /* Most positional arguments accepted; -1 = any number.  Everything after
     * "--" is positional. */
    int max_positional;
    /* Single-letter forms of extra flags, as pairs ending in NULL (may be
     * NULL): {"-c", "--max", "-e", "--exit", NULL}.  "-c 5" and "-c5" are
     * taken as "--max 5" (a switch's short form takes no value; letters do
     * not bundle); the occurrence lands in cfg->extra under the long name,
     * and errors quote the short form as written. */
    const char *const *short_flags;
} sio_config_opts;

/* Loads the configuration.  argv holds the subcommand's own arguments with
 * argv[0] = the subcommand's name (skipped), like main's argv.  envp is a
 * NULL-terminated "NAME=value" array (main's envp or `environ`); NULL means
 * an empty environment.  opts may be NULL: no extra flags, no positional
 * arguments.  Unknown flags are always errors.  Returns a config the caller
 * owns (free with sio_config_destroy), or NULL with err set (SIO_E_CONFIG,
 * or SIO_E_NOMEM). */
const sio_config *sio_config_load(int argc, char **argv, char **envp,
                                  const sio_config_opts *opts, sio_err *err);

/* Frees cfg and everything it owns.  NULL is fine. */
void sio_config_destroy(const sio_config *cfg);

/* The i-th librdkafka pass-through property: 1 with *key and *val set
 * (borrowed from cfg), or 0 when i is past the end. */
int sio_config_kafka_props(const sio_config *cfg, size_t i, const char **key, const char **val);

/* The last value given for one of opts->extra_flags (name as listed, without
 * the '='), borrowed from cfg; "" for a switch; NULL when not given. */
const char *sio_config_extra(const sio_config *cfg, const char *flag);

/* Prints the effective configuration as KEY=value lines (the config file
 * format), REDIS_PASSWORD and pass-through properties whose name contains
 * "password" or "secret" masked as "********". */
void sio_config_dump(const sio_config *cfg, FILE *out);

/* Prints every variable with its flag, default and meaning (for --help). */
void sio_config_usage(FILE *out);

/* "at_least_once" or "exactly_once". */
const char *sio_guarantee_name(sio_guarantee g);

/* Name of a level: "debug", "info", "warn", "error". */
const char *sio_log_level_name(sio_log_level level);

/* Parses a duration into milliseconds: one or more <number><unit> with unit
 * ms, s, m or h ("500ms", "30s", "1h30m", "1.5s"); "0" alone is 0.  A bare
 * number is rejected (seconds or milliseconds would be a guess).  Negative
 * values, sub-millisecond results and overflow are errors.  The message
 * quotes the value but names no source; callers prefix it. */
int sio_parse_duration_ms(const char *s, int64_t *out, sio_err *err);

/* Parses a byte size: a whole number with an optional binary suffix k, m, g
 * or t (any case, optionally followed by "b" or "ib": "64m", "64MiB", "1g",
 * "512KB"); no suffix means bytes.  Overflow is an error. */
int sio_parse_size(const char *s, uint64_t *out, sio_err *err);

/* One SIO_HTTP_ALLOW entry: "*" (any host, any port), "host" (that host
 * on the scheme's default port only: 80 for http, 443 for https),
 * "host:port" (that port, either scheme), "[v6addr]" or "[v6addr]:port".
 * Fills host (size bytes, the name without brackets; "*" for any; host may
 * be NULL when size is 0) and *port (-1 = any, 0 = the scheme's default, or
 * the port; port may be NULL).  -1 with err (SIO_E_CONFIG) when the entry
 * is none of these (a URL, a bare IPv6 address, a bad port). */
int sio_http_allow_parse(const char *entry, char *host, size_t size, int *port, sio_err *err);

/* Parses true/false, 1/0, yes/no, on/off (any case). */
int sio_parse_bool(const char *s, bool *out, sio_err *err);

#endif
