/* log.c - see log.h. */
#include "log.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* --- the thread's trace ------------------------------------------------------*/

/* The thread's ids, and their hex forms and fragment for host.log, made
 * when first asked for after a change. */
static _Thread_local struct {
    uint8_t tid[16], sid[8];
    int set, hexed;
    char trace_id[33], span_id[17];
    char fields[96];
} tr;

void sio_log_set_trace(const uint8_t tid[16], const uint8_t sid[8]) {
    if (tid == NULL || sid == NULL) {
        tr.set = 0;
        return;
    }
    memcpy(tr.tid, tid, 16);
    memcpy(tr.sid, sid, 8);
    tr.set = 1;
    tr.hexed = 0;
}

static void hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[2 * i] = digits[b[i] >> 4], out[2 * i + 1] = digits[b[i] & 15];
    out[2 * n] = '\0';
}

/* 1 when the thread has a trace, its hex forms then made. */
static int trace_hex(void) {
    if (!tr.set) return 0;
    if (!tr.hexed) {
        hex(tr.tid, 16, tr.trace_id);
        hex(tr.sid, 8, tr.span_id);
        snprintf(tr.fields, sizeof tr.fields, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"",
                 tr.trace_id, tr.span_id);
        tr.hexed = 1;
    }
    return 1;
}

const char *sio_log_trace_fields(void) {
    return trace_hex() ? tr.fields : "";
}

/* --- lines ---------------------------------------------------------------------*/

char *sio_log_line(sio_log_level level, const char *msg, json_t *fields, size_t *len) {
    char when[40];
    json_t *line = json_pack("{s:s,s:s,s:o}", "ts", sio_log_timestamp(when, sizeof when), "level",
                             sio_log_level_name(level), "msg", sio_json_text(msg, strlen(msg)));
    if (line && fields) json_object_update(line, fields);
    json_decref(fields);
    if (line && trace_hex()) {
        json_object_set_new(line, "trace_id", json_string(tr.trace_id));
        json_object_set_new(line, "span_id", json_string(tr.span_id));
    }
    char *text = line ? sio_json_dump(line, len) : NULL;
    json_decref(line);
    if (text) text[(*len)++] = '\n'; /* replaces the NUL: one write, one line */
    return text;
}

void sio_log_json(sio_log_level level, const char *msg, json_t *fields) {
    if ((int)level < min_level) {
        json_decref(fields);
        return;
    }
    size_t len = 0;
    char *text = sio_log_line(level, msg, fields, &len);
    if (text == NULL) { /* out of memory: say so without building anything */
        static const char oom[] = "{\"level\":\"error\",\"msg\":\"out of memory: a log line was lost\"}\n";
        ssize_t w = write(STDERR_FILENO, oom, sizeof oom - 1);
        (void)w;
        return;
    }
    ssize_t w = write(STDERR_FILENO, text, len);
    (void)w;
    free(text);
}

static int64_t mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

int sio_log_limited(sio_log_limit *lim, sio_log_level level, const char *msg, json_t *fields) {
    if ((int)level < min_level) {
        json_decref(fields);
        return 1;
    }
    int64_t now = mono_s(), was = atomic_load_explicit(&lim->second, memory_order_relaxed);
    /* the first thread to see a new second opens its window (a line counted
     * in the old one meanwhile is forgiven: the limit is approximate) */
    if (was != now && atomic_compare_exchange_strong(&lim->second, &was, now))
        atomic_store_explicit(&lim->in_second, 0, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&lim->in_second, 1, memory_order_relaxed) >= lim->per_second) {
        atomic_fetch_add_explicit(&lim->suppressed, 1, memory_order_relaxed);
        json_decref(fields);
        return 0;
    }
    uint64_t gone = atomic_exchange_explicit(&lim->suppressed, 0, memory_order_relaxed);
    if (gone) {
        if (fields == NULL) fields = json_object();
        json_object_set_new(fields, "suppressed", json_integer((json_int_t)gone));
    }
    sio_log_json(level, msg, fields);
    return 1;
}
