/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int min_level = SIO_LOG_INFO;

void sio_log_set_level(sio_log_level level) {
    min_level = (int)level;
}

char *sio_json_escape(const char *s, char *buf, size_t n) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < n; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (*p < 0x20) {
            o += (size_t)snprintf(buf + o, n - o, "\\u%04x", *p);
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o < n ? o : n - 1] = '\0';
    return buf;
}

char *sio_log_timestamp(char *buf, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[24];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03ldZ", when, ts.tv_nsec / 1000000L);
    return buf;
}

/* The thread's trace fields (see sio_log_set_trace); only hex digits go
 * in, so the text is valid JSON as it is. */
static _Thread_local char trace_fields[96];

static size_t hex_prefix(const char *s, size_t max) {
    size_t n = 0;
    while (n < max && ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) n++;
    return n;
}

void sio_log_set_trace(const char *trace_id, const char *span_id) {
    if (trace_id == NULL || span_id == NULL) {
        trace_fields[0] = '\0';
        return;
    }
    snprintf(trace_fields, sizeof trace_fields, ",\"trace_id\":\"%.*s\",\"span_id\":\"%.*s\"",
             (int)hex_prefix(trace_id, 32), trace_id, (int)hex_prefix(span_id, 16), span_id);
}

const char *sio_log_trace_fields(void) {
    return trace_fields;
}

void sio_log(sio_log_level level, const char *msg, const char *fields) {
    if ((int)level < min_level) return;
    char when[40], emsg[1024], line[4096];
    int n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"%s%s%s}\n",
                     sio_log_timestamp(when, sizeof when), sio_log_level_name(level),
                     sio_json_escape(msg, emsg, sizeof emsg), fields && *fields ? "," : "",
                     fields ? fields : "", trace_fields);
    if (n >= (int)sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 2] = '}'; /* truncated fields: keep the line one line */
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void sio_logf(sio_log_level level, const char *msg, const char *fields_fmt, ...) {
    if ((int)level < min_level) return;
    char fields[2048];
    va_list ap;
    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof fields, fields_fmt, ap);
    va_end(ap);
    sio_log(level, msg, fields);
}
