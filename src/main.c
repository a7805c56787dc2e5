/* main.c - the sio-orchestrator command line (grows with the service). */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: sio-orchestrator <command> [options]\n"
            "\n"
            "commands:\n"
            "  version    print the version\n"
            "  help       this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("sio-orchestrator 0.1.0\n");
        return 0;
    }
    fprintf(stderr, "sio-orchestrator: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
