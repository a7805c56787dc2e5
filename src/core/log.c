/* log.c - see log.h. */
#include "log.h"

#include "json.h"
#include "redact.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
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

void sio_log_write(const char *line, size_t len) {
    size_t body = len > 0 && line[len - 1] == '\n' ? len - 1 : len, rlen = 0;
    /* "ts" is ours: never a secret, and kept readable */
    char *red = sio_redact_json_text(sio_redact_global(), line, body, "ts", &rlen);
    if (red != NULL) {
        red[rlen] = '\n'; /* sio_json_dump leaves room: it replaces the NUL */
        line = red, len = rlen + 1;
    }
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        line += n;
        len -= (size_t)n;
    }
    free(red);
}

void sio_log_json(sio_log_level level, const char *msg, json_t *fields) {
    if ((int)level < min_level) {
        json_decref(fields);
        return;
    }
    char when[40];
    json_t *line = json_pack("{s:s,s:s,s:o}", "ts", sio_log_timestamp(when, sizeof when), "level",
                             sio_log_level_name(level), "msg", sio_json_text(msg, strlen(msg)));
    if (line && fields) json_object_update(line, fields);
    json_decref(fields);
    size_t len = 0;
    char *text = line ? sio_json_dump(line, &len) : NULL;
    json_decref(line);
    if (text == NULL) {
        sio_log(level, msg, NULL);
        return;
    }
    text[len] = '\n'; /* replaces the NUL: one write, one line */
    sio_log_write(text, len + 1);
    free(text);
}

void sio_log(sio_log_level level, const char *msg, const char *fields) {
    if ((int)level < min_level) return;
    char when[40], emsg[1024], line[4096];
    int n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"%s%s}\n",
                     sio_log_timestamp(when, sizeof when), sio_log_level_name(level),
                     sio_json_escape(msg, emsg, sizeof emsg), fields && *fields ? "," : "",
                     fields ? fields : "");
    if (n >= (int)sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 2] = '}'; /* truncated fields: keep the line one line */
        line[n - 1] = '\n';
    }
    sio_log_write(line, (size_t)n);
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
