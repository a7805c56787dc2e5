/* cli_main.c - the sio-orchestrator command line (sio_main in sio/tool.h):
 * dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "sio/tool.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv, char **envp);
    const char *help;
} commands[] = {
    {"serve", sio_cli_serve, "serve [--embedded]           the daemon (--embedded: in-process broker)"},
    {"send", sio_cli_send, "send WORKFLOW [--attrs JSON] publish a command, wait for its outcome"},
    {"tail", sio_cli_tail, "tail [TOPIC...]              print responses (default: responses + DLQ)"},
    {"topics", sio_cli_topics, "topics                       create the commands, responses, DLQ topics"},
    {"offsets", sio_cli_offsets, "offsets                      the group's committed offsets and lag"},
    {"run", sio_cli_run, "run WORKFLOW [--attrs JSON]   execute a workflow locally, no Kafka"},
    {"test", sio_cli_test, "test [BUSTED ARGS]           run the workflow specs (busted, the real engine)"},
    {"validate", sio_cli_validate, "validate [PATH...]           check workflows; file:line errors"},
    {"new", sio_cli_new, "new NAME                     scaffold a workflow, its Lua step and its spec here"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: sio-orchestrator <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %s\n", commands[i].help);
    fprintf(out, "  version                      print the version\n"
                 "  help                         this text, with every setting\n\n"
                 "Shared options (each also an environment variable; flags win):\n");
    sio_config_usage(out);
}

int sio_main(int argc, char **argv, char **envp) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sio-orchestrator 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1, envp);
    fprintf(stderr, "sio-orchestrator: unknown command '%s' (try: sio-orchestrator help)\n", cmd);
    return 2;
}
