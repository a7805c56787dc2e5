/* cli_main.c - the sio-orchestrator command line (sio_main in sio/tool.h):
 * every subcommand with its flags and help, and the dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "json.h"
#include "sio/tool.h"

/* One flag of a subcommand: what the parser accepts and what --help says. */
typedef struct flag {
    const char *name;  /* "--max" */
    const char *letter; /* kcat's short form, "-c", or NULL */
    const char *arg;   /* the value's name in help, "N"; NULL for a switch */
    const char *help;
} flag;

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv, char **envp);
    const char *args;    /* positional arguments in the usage line, or "" */
    int max_positional;  /* -1 = any */
    const char *summary; /* one line for `help` */
    const char *details; /* more lines for `CMD --help`, or NULL */
    const flag *flags;   /* ends with {NULL} */
} command;

static const flag no_flags[] = {{NULL, NULL, NULL, NULL}};

static const flag serve_flags[] = {
    {"--embedded", NULL, NULL, "use an in-process broker (librdkafka's mock cluster) and an "
                               "in-memory dedupe store"},
    {NULL, NULL, NULL, NULL}};

static const flag run_flags[] = {
    {"--attrs", NULL, "JSON", "the command's attrs, a JSON object (default {})"},
    {NULL, NULL, NULL, NULL}};

static const flag send_flags[] = {
    {"--attrs", NULL, "JSON", "the command's attrs, a JSON object (default {})"},
    {"--correlation-id", NULL, "ID", "the correlation id, also the Kafka key (default: a random "
                                     "UUID)"},
    {"--reply-topic", NULL, "TOPIC", "the command's reply_topic (default: the responses topic)"},
    {"--wait", NULL, "DURATION", "how long to wait for the outcome (default 30s)"},
    {"--raw", NULL, "BYTES", "send BYTES as they are and do not wait"},
    {"--lines", NULL, "FILE", "send each line of FILE (- for stdin) as one message and do not "
                              "wait; the key is the line's correlation_id; a progress line on a "
                              "terminal"},
    {"--topic", "-t", "TOPIC", "the topic to send to (default: the commands topic)"},
    {"--header", "-H", "KEY=VALUE", "a Kafka header on every message sent (repeatable; KEY "
                                    "alone: a header without a value)"},
    {"--key-delimiter", "-K", "DELIM", "with --lines or --raw: what comes before the first "
                                       "DELIM is the key, the rest the value"},
    {"--max", "-c", "N", "with --lines: send at most N messages"},
    {NULL, NULL, NULL, NULL}};

static const flag tail_flags[] = {
    {"--topic", "-t", "TOPIC", "a topic to read (repeatable; topics may also be given as "
                               "arguments; default: the responses topic and its DLQ)"},
    {"--offset", "-o", "WHERE", "where to start in each partition: end (default), beginning, "
                                "N (offset N), -N (N messages before the end), s@MS (the first "
                                "message at or after time MS, epoch milliseconds)"},
    {"--from-beginning", NULL, NULL, "the same as -o beginning"},
    {"--exit", "-e", NULL, "exit once every partition has been read to its end"},
    {"--max", "-c", "N", "exit after N messages"},
    {"--idle", NULL, "DURATION", "exit after that long without a message (the first 2 s do not "
                                 "count)"},
    {NULL, NULL, NULL, NULL}};

static const flag replay_flags[] = {
    {"--topic", "-t", "TOPIC", "the DLQ to read (default: the responses topic's DLQ)"},
    {"--target", NULL, "TOPIC", "where the commands go (default: the commands topic)"},
    {"--partition", "-p", "N", "read only partition N of the DLQ"},
    {"--from-offset", NULL, "N", "start at offset N of each partition read"},
    {"--to-offset", NULL, "N", "stop after offset N (inclusive)"},
    {"--since", NULL, "TIME", "only entries the DLQ received at or after TIME: RFC 3339 "
                              "(2026-11-27T01:33:49Z), epoch milliseconds, or a duration ago "
                              "(2h)"},
    {"--until", NULL, "TIME", "only entries received before TIME (same forms)"},
    {"--error-class", NULL, "CLASS", "only permanent or only transient failures"},
    {"--workflow", NULL, "NAME", "only commands for this workflow"},
    {"--error", NULL, "TEXT", "only entries whose error message contains TEXT"},
    {"--correlation-id", NULL, "ID", "only the entries of this correlation id"},
    {"--max", "-c", "N", "replay at most N entries"},
    {"--rate", NULL, "N", "at most N commands a second (default 100; 0 = no limit)"},
    {"--dry-run", NULL, NULL, "print what would be replayed; send nothing, mark nothing"},
    {"--force", NULL, NULL, "replay entries even when marked as replayed already"},
    {NULL, NULL, NULL, NULL}};

static const command commands[] = {
    {"serve", sio_cli_serve, "", 0, "the daemon: consume commands, run workflows, publish "
     "responses", "SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the workflows.", serve_flags},
    {"send", sio_cli_send, "WORKFLOW", 1, "publish a command and wait for its outcome",
     "Prints each message keyed by the correlation id on the reply topic and its DLQ as a JSON "
     "line (the form of `tail`).\nExit codes: 0 success, 1 a DLQ entry or a message not "
     "delivered, 2 usage, 3 no outcome in time.", send_flags},
    {"tail", sio_cli_tail, "[TOPIC...]", -1, "print messages as JSON lines (default: the "
     "responses topic and its DLQ)",
     "Each line: {\"topic\", \"partition\", \"offset\", \"timestamp\" (ms or null), \"key\" "
     "(null when none), \"headers\": [{\"key\", \"value\"}], \"value\"}.  A value that is "
     "JSON is shown as JSON, other text as a string; a key, header value or value that is not "
     "UTF-8 text is given in base64 instead (\"key_base64\", \"value_base64\").", tail_flags},
    {"topics", sio_cli_topics, "", 0, "create the commands, responses and DLQ topics", NULL,
     no_flags},
    {"offsets", sio_cli_offsets, "", 0, "the group's committed offsets and lag on the commands "
     "topic", "One JSON line per partition ({\"committed\": null} when the group has committed "
     "nothing there), then the totals.", no_flags},
    {"replay", sio_cli_replay, "", 0, "send dead-lettered commands again",
     "Reads the DLQ from the start (or the range given) up to its end at the time replay "
     "starts, and sends each matching entry's command (as received, with its Kafka headers "
     "and a sio-replay-of header naming the entry) to the target, keyed by its correlation "
     "id.  An entry replayed once is marked in Redis (REPLAY_KEY_PREFIX + "
     "topic:partition:offset, kept as long as the DLQ keeps the entry) and skipped by later "
     "replays unless --force.  Prints one JSON line per matching entry and a summary line; "
     "a progress line on a terminal.\nExit codes: 0 every matching entry was replayed (now "
     "or before), 1 some could not be (see the summary), 2 usage.", replay_flags},
    {"run", sio_cli_run, "WORKFLOW", 1, "execute a workflow locally, no Kafka",
     "Prints step results and the outcome as JSON lines; exit 1 on error.", run_flags},
    {"test", sio_cli_test, "[BUSTED ARGS]", -1, "run the workflow specs (busted, the real "
     "engine)", "Every argument goes to busted (`busted --help` lists its options).", no_flags},
    {"new", sio_cli_new, "NAME", 1, "scaffold a workflow, its Lua step and its spec here",
     "Writes workflows/NAME.yaml, lua/NAME.lua and spec/NAME_spec.lua in the current folder "
     "(nothing when any exists), and refreshes .sio/ (schema and type definitions for "
     "editors).\nExit codes: 0 done, 1 a file exists or cannot be written, 2 usage.",
     no_flags},
    {"validate", sio_cli_validate, "[PATH...]", -1, "check workflows; file:line errors",
     "Loads the files or folders given (default WORKFLOWS_DIR); exit 1 on any error.",
     no_flags},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void usage(FILE *out) {
    fprintf(out, "usage: sio-orchestrator <command> [options]   (sio-orchestrator <command> "
                 "--help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].args);
        fprintf(out, "  %-24s %s\n", head, commands[i].summary);
    }
    fprintf(out, "  %-24s %s\n  %-24s %s\n\n", "version", "print the version", "help",
            "this text, with every setting");
    fprintf(out, "Shared options (each also an environment variable; flags win):\n");
    sio_config_usage(out);
}

/* Prints text from column col, wrapped at 79 columns with continuation
 * lines indented to indent; '\n' in text starts a new paragraph. */
static void wrap(FILE *out, const char *text, int col, int indent) {
    while (*text) {
        size_t word = strcspn(text, " \n");
        if (col > indent && col + 1 + (int)word > 79) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, text);
        col += (int)word;
        text += word;
        if (*text == '\n') {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
            text++;
        }
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

/* `CMD --help`: the usage line, what it does, its flags. */
static void command_help(const command *c, FILE *out) {
    fprintf(out, "usage: sio-orchestrator %s%s%s%s\n\n", c->name, *c->args ? " " : "", c->args,
            c->flags[0].name ? " [options]" : "");
    char first[256];
    snprintf(first, sizeof first, "%c%s.", c->summary[0] - 'a' + 'A', c->summary + 1);
    wrap(out, first, 0, 0);
    if (c->details) wrap(out, c->details, 0, 0);
    if (c->flags[0].name) fprintf(out, "\noptions:\n");
    for (const flag *f = c->flags; f->name; f++) {
        char head[64];
        snprintf(head, sizeof head, "  %s%s%s%s%s", f->letter ? f->letter : "  ",
                 f->letter ? ", " : "  ", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        fprintf(out, "%-30s", head);
        wrap(out, f->help, (int)strlen(head) < 30 ? 30 : (int)strlen(head), 30);
    }
    fprintf(out, "\nShared options (--brokers, --group, topic names, --redis, -X key=value,\n"
                 "--config FILE, ...): sio-orchestrator help\n");
}

/* Is --help or -h among the subcommand's arguments (before "--")? */
static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

int sio_cli_fail(const char *cmd, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sio-orchestrator %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return rc;
}

volatile sig_atomic_t sio_cli_interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    sio_cli_interrupted = 1;
}

void sio_cli_catch_interrupts(void) {
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
}

int64_t sio_cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sio_cli_count(const char *cmd, const char *flag_name, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE) {
        sio_cli_fail(cmd, 2, "%s: \"%s\" is not a whole number >= 0", flag_name, s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

json_t *sio_cli_attrs(const char *text, sio_err *err) {
    sio_err why;
    json_t *v = text ? sio_json_parse(text, strlen(text), &why) : json_object();
    if (v == NULL && text) {
        sio_err_set(err, SIO_E_PARSE, "attrs are not valid JSON: %s", why.msg);
    } else if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
        sio_err_set(err, SIO_E_INVAL, "attrs must be a JSON object");
    } else if (v == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory");
    }
    return v;
}

const sio_config *sio_cli_config(int argc, char **argv, char **envp) {
    const command *c = find(argv[0]);
    /* Room for every flag's long name ("--max=" when it takes a value) and
     * its short pair; the strings live until the load has copied them. */
    const char *names[32] = {0}, *shorts[33] = {0};
    char buf[32][40];
    size_t n = 0, ns = 0;
    for (const flag *f = c ? c->flags : no_flags; f->name && n < 31; f++, n++) {
        snprintf(buf[n], sizeof buf[n], "%s%s", f->name, f->arg ? "=" : "");
        names[n] = buf[n];
        if (f->letter) shorts[ns++] = f->letter, shorts[ns++] = f->name;
    }
    sio_config_opts opts = {.extra_flags = names,
                            .max_positional = c ? c->max_positional : 0,
                            .short_flags = shorts};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg == NULL)
        fprintf(stderr, "sio-orchestrator %s: %s\n(sio-orchestrator %s --help lists the "
                        "options)\n", argv[0], err.msg, argv[0]);
    return cfg;
}

int sio_main(int argc, char **argv, char **envp) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const command *c = argc > 2 ? find(argv[2]) : NULL;
        if (c) command_help(c, stdout);
        else usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sio-orchestrator 0.1.0\n");
        return 0;
    }
    const command *c = find(cmd);
    if (c == NULL) {
        fprintf(stderr, "sio-orchestrator: unknown command '%s' (try: sio-orchestrator help)\n",
                cmd);
        return 2;
    }
    if (wants_help(argc - 1, argv + 1)) {
        command_help(c, stdout);
        return 0;
    }
    return c->fn(argc - 1, argv + 1, envp);
}
