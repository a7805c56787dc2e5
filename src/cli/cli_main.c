/* cli_main.c - the sio-orchestrator command line (sio_main in sio/tool.h):
 * the list of subcommands, `help` and `CMD --help` made from their
 * descriptors (each subcommand's file defines its own, with its flags),
 * and the dispatch.  Nothing calls back up into this file. */
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







static const sio_cli_command *const commands[] = {
    &sio_cli_serve_cmd, &sio_cli_send_cmd, &sio_cli_tail_cmd, &sio_cli_topics_cmd, &sio_cli_offsets_cmd, &sio_cli_replay_cmd, &sio_cli_run_cmd, &sio_cli_test_cmd, &sio_cli_new_cmd, &sio_cli_validate_cmd,
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

const sio_cli_command *sio_cli_find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static void usage(FILE *out) {
    fprintf(out, "usage: sio-orchestrator <command> [options]   (sio-orchestrator <command> "
                 "--help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", commands[i]->name, commands[i]->args);
        fprintf(out, "  %-24s %s\n", head, commands[i]->summary);
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
static void command_help(const sio_cli_command *c, FILE *out) {
    fprintf(out, "usage: sio-orchestrator %s%s%s%s\n\n", c->name, *c->args ? " " : "", c->args,
            c->flags[0].name ? " [options]" : "");
    char first[256];
    snprintf(first, sizeof first, "%c%s.", c->summary[0] - 'a' + 'A', c->summary + 1);
    wrap(out, first, 0, 0);
    if (c->details) wrap(out, c->details, 0, 0);
    if (c->flags[0].name) fprintf(out, "\noptions:\n");
    for (const sio_cli_flag *f = c->flags; f->name; f++) {
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

int sio_main(int argc, char **argv, char **envp) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const sio_cli_command *c = argc > 2 ? sio_cli_find(argv[2]) : NULL;
        if (c) command_help(c, stdout);
        else usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sio-orchestrator %s\n", SIO_VERSION);
        return 0;
    }
    const sio_cli_command *c = sio_cli_find(cmd);
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
