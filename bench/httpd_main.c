/*
 * httpd_main.c - tests/support/httpd.c as a program, for bench/run's
 * I/O-bound test:  sio_bench_httpd DELAY_MS
 * Prints the port on the first line, serves until SIGTERM/SIGINT, then
 * prints {"requests":N,"max_open":M} (max_open = the most requests it held
 * open at once: the orchestrator's concurrency as the server saw it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "httpd.h"

int main(int argc, char **argv) {
    unsigned delay = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the server's thread starts */
    test_httpd *h = test_httpd_start(delay);
    if (h == NULL) {
        fprintf(stderr, "cannot start the server\n");
        return 1;
    }
    printf("%d\n", test_httpd_port(h));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    printf("{\"requests\":%d,\"max_open\":%d}\n", test_httpd_requests(h), test_httpd_max_open(h));
    fflush(stdout);
    test_httpd_stop(h);
    return 0;
}
