/*
 * httpd_main.c - tests/support/httpd.c as a program, for the shell tests
 * (the gate, see httpd.h) and bench/run's I/O-bound part:
 *
 *     sio_test_httpd [--hold] [DELAY_MS]
 *
 * Prints the port on the first line, serves until SIGTERM/SIGINT, then
 * prints {"requests":N,"max_open":M,"received":R} (requests = answered;
 * max_open = the most requests open at once: the client's concurrency as
 * the server saw it).  --hold starts with the gate closed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

int main(int argc, char **argv) {
    int hold = argc > 1 && strcmp(argv[1], "--hold") == 0;
    unsigned delay = argc > 1 + hold ? (unsigned)atoi(argv[1 + hold]) : 0;
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
    if (hold) test_httpd_hold(h);
    printf("%d\n", test_httpd_port(h));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    printf("{\"requests\":%d,\"max_open\":%d,\"received\":%d}\n", test_httpd_requests(h),
           test_httpd_max_open(h), test_httpd_received(h));
    fflush(stdout);
    test_httpd_stop(h);
    return 0;
}
