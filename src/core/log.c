/* log.c - the one logging route; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "redact.h"

static volatile int min_level = SIO_LOG_INFO;

void sio_log_set_level(sio_log_level level) {
    min_level = (int)level;
}

int64_t sio_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000L;
}

char *sio_iso8601(int64_t unix_ms, char *buf, size_t n) {
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[24];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", when, (int)(unix_ms % 1000));
    return buf;
}

char *sio_log_timestamp(char *buf, size_t n) {
    return sio_iso8601(sio_wall_ms(), buf, n);
}

void sio_log_stderr(void *ud, const char *line, size_t len) {
    (void)ud;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        line += n;
        len -= (size_t)n;
    }
}

void sio_log_emit(sio_log_fn sink, void *ud, const char *level, const char *msg, size_t msg_len,
                  const json_t *fields) {
    char when[40];
    json_t *line = json_pack("{s:s,s:s,s:o}", "ts", sio_log_timestamp(when, sizeof when), "level",
                             level, "msg", sio_json_text(msg, msg_len));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v) {
        if (line && strcmp(k, "ts") != 0 && strcmp(k, "level") != 0 && strcmp(k, "msg") != 0)
            json_object_set(line, k, v);
    }
    /* No secret in any line (redact.h): the msg and every field, whatever
     * the sink; "ts" is ours, never a secret. */
    sio_redactor *red = sio_redact_global();
    if (line && sio_redact_count(red) > 0) { /* fields are borrowed: redact a copy */
        json_t *copy = json_deep_copy(line);
        json_decref(line);
        line = copy;
        sio_redact_json(red, line, "ts");
    }
    size_t len = 0;
    char *text = line ? sio_json_dump(line, &len) : NULL;
    json_decref(line);
    if (text == NULL) return;
    text[len] = '\n'; /* replaces the NUL: one line, one call */
    (sink ? sink : sio_log_stderr)(ud, text, len + 1);
    free(text);
}

void sio_log_json(sio_log_level level, const char *msg, json_t *fields) {
    if ((int)level >= min_level)
        sio_log_emit(NULL, NULL, sio_log_level_name(level), msg, strlen(msg), fields);
    json_decref(fields);
}
