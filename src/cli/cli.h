/*
 * cli.h - the subcommands of sio-orchestrator.  Each takes its own argv
 * (argv[0] = the subcommand's name) and the environment, and returns the
 * process exit code: 0 success, 1 failure, 2 usage or configuration error
 * (a subcommand may document more, e.g. send's 3 for a timeout).
 *
 * Every subcommand's flags, with their help, are listed once, in its
 * descriptor (sio_cli_X_cmd, defined in its own file): `sio-orchestrator
 * CMD --help` (cli_main.c) prints them and sio_cli_config() parses them, so
 * the two cannot disagree.  cli_main.c dispatches to the subcommands; they
 * use cli_common.c, cli_kafka.c and progress.c below them.
 */
#ifndef SIO_CLI_H
#define SIO_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "config.h"

/* One flag of a subcommand: what the parser accepts and what --help says. */
typedef struct sio_cli_flag {
    const char *name;   /* "--max" */
    const char *letter; /* kcat's short form, "-c", or NULL */
    const char *arg;    /* the value's name in help, "N"; NULL for a switch */
    const char *help;
} sio_cli_flag;

/* A subcommand: its entry point, usage, help and flags. */
typedef struct sio_cli_command {
    const char *name;
    int (*fn)(int argc, char **argv, char **envp);
    const char *args;    /* positional arguments in the usage line, or "" */
    int max_positional;  /* -1 = any */
    const char *summary; /* one line for `help` */
    const char *details; /* more lines for `CMD --help`, or NULL */
    const sio_cli_flag *flags; /* ends with {NULL} */
} sio_cli_command;

extern const sio_cli_flag sio_cli_no_flags[];
extern const sio_cli_command sio_cli_serve_cmd, sio_cli_send_cmd, sio_cli_tail_cmd,
    sio_cli_topics_cmd, sio_cli_offsets_cmd, sio_cli_replay_cmd, sio_cli_run_cmd,
    sio_cli_test_cmd, sio_cli_new_cmd, sio_cli_validate_cmd;

/* The subcommand called name, or NULL (cli_main.c). */
const sio_cli_command *sio_cli_find(const char *name);

int sio_cli_run(int argc, char **argv, char **envp);
int sio_cli_validate(int argc, char **argv, char **envp);
int sio_cli_serve(int argc, char **argv, char **envp);
int sio_cli_send(int argc, char **argv, char **envp);
int sio_cli_tail(int argc, char **argv, char **envp);
int sio_cli_topics(int argc, char **argv, char **envp);
int sio_cli_offsets(int argc, char **argv, char **envp);
int sio_cli_replay(int argc, char **argv, char **envp);
int sio_cli_test(int argc, char **argv, char **envp);
int sio_cli_new(int argc, char **argv, char **envp);

/* Loads the configuration for subcommand c (argv[0]) with the flags its
 * descriptor lists (long names, kcat-style short forms, positional count).
 * Returns a config the caller owns (sio_config_destroy), or NULL after
 * printing "sio-orchestrator CMD: <why>" and a pointer to --help on
 * stderr; the caller then exits 2. */
const sio_config *sio_cli_config(const sio_cli_command *c, int argc, char **argv, char **envp);

/* Prints "sio-orchestrator CMD: <message>" on stderr and returns rc, for
 * `return sio_cli_fail("send", 2, "...")`. */
int sio_cli_fail(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a whole non-negative decimal number (at most INT64_MAX) given to
 * flag; 0 with *out set, or -1 after printing why (sio_cli_fail). */
int sio_cli_count(const char *cmd, const char *flag, const char *s, int64_t *out);


/* Set by SIGINT and SIGTERM once sio_cli_catch_interrupts() has run, so
 * long runs (tail, send --lines, replay) stop cleanly and report. */
extern volatile sig_atomic_t sio_cli_interrupted;
void sio_cli_catch_interrupts(void);

/* The monotonic clock in milliseconds. */
int64_t sio_cli_now_ms(void);

#endif
