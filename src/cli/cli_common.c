/* cli_common.c - what every subcommand uses: its configuration (flags from
 * its descriptor, environment, config file), failing with a message,
 * numbers, attrs, interrupts, the clock. */
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

const sio_cli_flag sio_cli_no_flags[] = {{NULL, NULL, NULL, NULL}};

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

const sio_config *sio_cli_config(const sio_cli_command *c, int argc, char **argv, char **envp) {
    /* Room for every flag's long name ("--max=" when it takes a value) and
     * its short pair; the strings live until the load has copied them. */
    const char *names[32] = {0}, *shorts[33] = {0};
    char buf[32][40];
    size_t n = 0, ns = 0;
    for (const sio_cli_flag *f = c->flags; f->name && n < 31; f++, n++) {
        snprintf(buf[n], sizeof buf[n], "%s%s", f->name, f->arg ? "=" : "");
        names[n] = buf[n];
        if (f->letter) shorts[ns++] = f->letter, shorts[ns++] = f->name;
    }
    sio_config_opts opts = {.extra_flags = names,
                            .max_positional = c->max_positional,
                            .short_flags = shorts};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg == NULL)
        fprintf(stderr, "sio-orchestrator %s: %s\n(sio-orchestrator %s --help lists the "
                        "options)\n", argv[0], err.msg, argv[0]);
    return cfg;
}
