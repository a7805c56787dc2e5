/*
 * cli.h - the subcommands of sio-orchestrator.  Each takes its own argv
 * (argv[0] = the subcommand's name) and the environment, and returns the
 * process exit code: 0 success, 1 failure, 2 usage or configuration error
 * (a subcommand may document more, e.g. send's 3 for a timeout).
 *
 * Every subcommand's flags, with their help, are listed once, in the table
 * of cli_main.c: `sio-orchestrator CMD --help` prints them and
 * sio_cli_config() parses them, so the two cannot disagree.
 */
#ifndef SIO_CLI_H
#define SIO_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "config.h"

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

/* Loads the configuration for subcommand argv[0] with the flags the table
 * lists for it (long names, kcat-style short forms, positional count).
 * Returns a config the caller owns (sio_config_destroy), or NULL after
 * printing "sio-orchestrator CMD: <why>" and a pointer to --help on
 * stderr; the caller then exits 2. */
const sio_config *sio_cli_config(int argc, char **argv, char **envp);

/* Prints "sio-orchestrator CMD: <message>" on stderr and returns rc, for
 * `return sio_cli_fail("send", 2, "...")`. */
int sio_cli_fail(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a whole non-negative decimal number (at most INT64_MAX) given to
 * flag; 0 with *out set, or -1 after printing why (sio_cli_fail). */
int sio_cli_count(const char *cmd, const char *flag, const char *s, int64_t *out);

/* The attrs of run and send: text (NULL = {}) parsed strictly into a JSON
 * object (a new reference), or NULL with err saying why ("attrs are not
 * valid JSON: ...", "attrs must be a JSON object"), the rule the service
 * applies to a command's attrs. */
json_t *sio_cli_attrs(const char *text, sio_err *err);

/* Set by SIGINT and SIGTERM once sio_cli_catch_interrupts() has run, so
 * long runs (tail, send --lines, replay) stop cleanly and report. */
extern volatile sig_atomic_t sio_cli_interrupted;
void sio_cli_catch_interrupts(void);

/* The monotonic clock in milliseconds. */
int64_t sio_cli_now_ms(void);

#endif
