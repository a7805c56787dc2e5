/* test_cli.c - the command line without a broker: every subcommand's
 * --help (exit 0, its flags listed, each listed flag accepted by the
 * parser) and the usage errors that must come before anything connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asserts.h"
#include "cli.h"
#include "sio/tool.h"

/* What one sio_main call printed and returned. */
typedef struct outcome {
    int rc;
    char out[16384], err[4096];
} outcome;

/* Reads what fd's file holds into buf. */
static void slurp(FILE *f, char *buf, size_t n) {
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

/* Runs sio_main(argv) with stdout and stderr captured; never connects
 * anywhere (KAFKA_BROKERS points at a closed port). */
static void run(outcome *o, char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    char *env[] = {"KAFKA_BROKERS=127.0.0.1:1", NULL};
    FILE *out = tmpfile(), *err = tmpfile();
    fflush(stdout), fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(out), 1), dup2(fileno(err), 2);
    o->rc = sio_main(argc, argv, env);
    fflush(stdout), fflush(stderr);
    dup2(saved_out, 1), dup2(saved_err, 2);
    close(saved_out), close(saved_err);
    slurp(out, o->out, sizeof o->out);
    slurp(err, o->err, sizeof o->err);
}

/* The flags each subcommand must list (kcat's letters where they apply). */
static const struct {
    const char *cmd;
    const char *flags[20];
} expected[] = {
    {"serve", {"--embedded"}},
    {"send", {"--attrs JSON", "--correlation-id ID", "--reply-topic TOPIC", "--wait DURATION",
              "--raw BYTES", "--lines FILE", "-t, --topic TOPIC", "-H, --header KEY=VALUE",
              "-K, --key-delimiter DELIM", "-c, --max N"}},
    {"tail", {"-t, --topic TOPIC", "-o, --offset WHERE", "--from-beginning", "-e, --exit",
              "-c, --max N", "--idle DURATION", "--base64"}},
    {"topics", {NULL}},
    {"offsets", {NULL}},
    {"replay", {"-t, --topic TOPIC", "--target TOPIC", "-p, --partition N", "--from-offset N",
                "--to-offset N", "--since TIME", "--until TIME", "--error-class CLASS",
                "--workflow NAME", "--error TEXT", "--correlation-id ID", "-c, --max N",
                "--rate N", "--dry-run", "--force"}},
    {"run", {"--attrs JSON"}},
    {"test", {NULL}},
    {"validate", {NULL}},
    {"new", {NULL}},
};

/* Every option line of a help text ("  -c, --max N   ..." or
 * "      --idle DURATION   ..."; continuation lines are indented further):
 * the parser takes each name it shows, with a value when it shows one. */
static int listed_flags_parse(const char *cmd, const char *help) {
    int seen = 0;
    for (const char *l = strstr(help, "\noptions:\n"); l && (l = strchr(l + 1, '\n'));) {
        char a[64] = "", b[64] = "", c[64] = "";
        if (strncmp(l, "\n  -", 4) != 0 && strncmp(l, "\n      --", 9) != 0) continue;
        sscanf(l + 1, "%63s %63s %63s", a, b, c);
        int has_short = a[strlen(a) - 1] == ',';
        const char *names[2] = {a, has_short ? b : NULL};
        const char *arg = has_short ? c : b;
        if (has_short) a[strlen(a) - 1] = '\0';
        int takes = arg[0] >= 'A' && arg[0] <= 'Z'; /* "N", "KEY=VALUE"; help text is lower case */
        for (int k = 0; k < 2 && names[k]; k++) {
            char *argv[] = {(char *)cmd, (char *)names[k], takes ? "1" : NULL, NULL};
            const sio_config *cfg = sio_cli_config(sio_cli_find(cmd), takes ? 3 : 2, argv, NULL);
            if (cfg == NULL) fail_msg("%s %s is listed but not accepted", cmd, names[k]);
            sio_config_destroy(cfg);
            seen++;
        }
    }
    return seen;
}

static void every_subcommand_has_help(void **state) {
    (void)state;
    outcome o;
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char *argv[] = {"sio-orchestrator", (char *)expected[i].cmd, "--help", NULL};
        run(&o, argv);
        if (o.rc != 0) fail_msg("%s --help: exit %d (%s)", expected[i].cmd, o.rc, o.err);
        char usage[64];
        snprintf(usage, sizeof usage, "usage: sio-orchestrator %s", expected[i].cmd);
        assert_contains(o.out, usage);
        int names = 0;
        for (size_t k = 0; expected[i].flags[k]; k++) {
            assert_contains(o.out, expected[i].flags[k]);
            names += expected[i].flags[k][0] == '-' && expected[i].flags[k][2] == ',' ? 2 : 1;
        }
        assert_contains(o.out, "Shared options");
        assert_int_equal(listed_flags_parse(expected[i].cmd, o.out), names);

        char *short_form[] = {"sio-orchestrator", (char *)expected[i].cmd, "-h", NULL};
        char first[sizeof o.out];
        memcpy(first, o.out, sizeof first);
        run(&o, short_form);
        assert_int_equal(o.rc, 0);
        assert_string_equal(o.out, first);
        char *via_help[] = {"sio-orchestrator", "help", (char *)expected[i].cmd, NULL};
        run(&o, via_help);
        assert_int_equal(o.rc, 0);
        assert_string_equal(o.out, first);
    }
    char *top[] = {"sio-orchestrator", "help", NULL};
    run(&o, top);
    assert_int_equal(o.rc, 0);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_contains(o.out, expected[i].cmd);
    assert_contains(o.out, "KAFKA_BROKERS");
}

/* Usage errors: exit 2 with a clear message, before any connection. */
static void usage_errors(void **state) {
    (void)state;
    static const struct {
        const char *args[8];
        const char *message;
    } cases[] = {
        {{"send", "noop", "--attrs", "[1]"}, "--attrs [1]: attrs must be a JSON object"},
        {{"send", "noop", "--attrs", "{\"a\":"}, "attrs are not valid JSON: malformed JSON"},
        {{"send", "noop", "--attrs", "{\"a\":1,\"a\":2}"}, "duplicate object key"},
        {{"send", "noop", "--attrs", "{} x"}, "attrs are not valid JSON: malformed JSON"},
        {{"send"}, "a WORKFLOW is required"},
        {{"send", "noop", "-c", "3"}, "-c applies to --lines only"},
        {{"send", "noop", "-K", ":"}, "-K applies to --raw and --lines only"},
        {{"send", "--raw", "x", "--lines", "f"}, "--raw and --lines: give one"},
        {{"send", "noop", "--wait", "5"}, "--wait: \"5\" has no unit"},
        {{"tail", "-o", "sometime"}, "-o: \"sometime\" is not beginning, end, N, -N or s@MS"},
        {{"tail", "-c", "x"}, "-c: \"x\" is not a whole number"},
        {{"tail", "-o", "end", "--from-beginning"}, "give one"},
        {{"tail", "-ec"}, "unknown flag \"-ec\""},
        {{"replay", "--error-class", "fatal"}, "is not permanent or transient"},
        {{"replay", "--since", "yesterday"}, "--since: \"yesterday\" is not a time"},
        {{"replay", "--target", "x.dlq", "-t", "x.dlq"}, "the target x.dlq is the DLQ"},
        {{"replay", "--from-offset", "5", "--to-offset", "4"}, "--to-offset is before"},
        {{"replay", "extra"}, "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[10] = {"sio-orchestrator"};
        for (size_t k = 0; cases[i].args[k]; k++) argv[k + 1] = (char *)cases[i].args[k];
        outcome o;
        run(&o, argv);
        if (o.rc != 2) fail_msg("%s ...: exit %d, want 2 (%s)", cases[i].args[0], o.rc, o.err);
        assert_contains(o.err, cases[i].message);
        assert_string_equal(o.out, "");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_subcommand_has_help),
        cmocka_unit_test(usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
