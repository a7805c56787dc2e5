/* itutil.c - see itutil.h. */
#include "itutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

const char *it_brokers(void) {
    const char *b = getenv("KAFKA_BROKERS");
    if (b == NULL || *b == '\0') {
        fprintf(stderr, "KAFKA_BROKERS is not set: run under tests/integration/with-devenv\n");
        abort();
    }
    return b;
}

const char *it_unique(const char *prefix) {
    static char buf[256];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, sizeof buf, "%s.%ld.%ld%03ld", prefix, (long)getpid(), (long)ts.tv_sec,
             ts.tv_nsec / 1000000L);
    return buf;
}
