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

/* The thread's last second formatted (a log line per command asks for
 * the same second thousands of times). */
static _Thread_local struct {
    time_t secs;
    int set;
    char when[24];
} last_second;

char *sio_iso8601(int64_t unix_ms, char *buf, size_t n) {
    time_t secs = (time_t)(unix_ms / 1000);
    if (!last_second.set || last_second.secs != secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(last_second.when, sizeof last_second.when, "%Y-%m-%dT%H:%M:%S", &tm);
        last_second.secs = secs;
        last_second.set = 1;
    }
    snprintf(buf, n, "%s.%03dZ", last_second.when, (int)(unix_ms % 1000));
    return buf;
}

char *sio_log_timestamp(char *buf, size_t n) {
    return sio_iso8601(sio_wall_ms(), buf, n);
}

/* --- the thread's trace ------------------------------------------------------*/

/* The thread's ids, and their hex forms, made when first asked for after a
 * change. */
static _Thread_local struct {
    uint8_t tid[16], sid[8];
    int set, hexed;
    char trace_id[33], span_id[17];
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
        tr.hexed = 1;
    }
    return 1;
}

/* --- lines ---------------------------------------------------------------------*/

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

/* A line's text as it is written: on the stack up to its size, then on
 * the heap. */
typedef struct linebuf {
    char *p;
    size_t len, cap;
    char stack[1024];
} linebuf;

static int linebuf_write(void *ud, const char *s, size_t n) {
    linebuf *b = ud;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap * 2;
        while (n >= cap - b->len) cap *= 2;
        char *q = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
        if (q == NULL) return -1;
        if (b->p == b->stack) memcpy(q, b->stack, b->len);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* `"key":` after a comma. */
static int put_key(const sio_json_out *o, const char *k) {
    return linebuf_write(o->ud, ",", 1) != 0 || sio_json_write_string(o, k, strlen(k)) != 0 ||
                   linebuf_write(o->ud, ":", 1) != 0
               ? -1
               : 0;
}

static int reserved_key(const char *k) {
    return strcmp(k, "ts") == 0 || strcmp(k, "level") == 0 || strcmp(k, "msg") == 0;
}

/* The line written straight from its parts, no tree built: the same text
 * as the tree sio_log_emit dumps otherwise (keys in the same order).
 * Returns 0, or -1 when out of memory. */
static int write_line(linebuf *b, const char *level, const char *msg, size_t msg_len,
                      const json_t *fields, int traced) {
    sio_json_out o = {.write = linebuf_write, .ud = b};
    char when[40];
    sio_log_timestamp(when, sizeof when);
    if (linebuf_write(b, "{\"ts\":", 6) != 0 || sio_json_write_string(&o, when, strlen(when)) != 0 ||
        put_key(&o, "level") != 0 || sio_json_write_string(&o, level, strlen(level)) != 0 ||
        put_key(&o, "msg") != 0 || sio_json_write_string(&o, msg, msg_len) != 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v) {
        if (reserved_key(k)) continue;
        if (put_key(&o, k) != 0 || sio_json_write_value(&o, v) != 0) return -1;
    }
    if (traced && (put_key(&o, "trace_id") != 0 || sio_json_write_string(&o, tr.trace_id, 32) != 0 ||
                   put_key(&o, "span_id") != 0 || sio_json_write_string(&o, tr.span_id, 16) != 0))
        return -1;
    return linebuf_write(b, "}\n", 2);
}

void sio_log_emit(sio_log_fn sink, void *ud, const char *level, const char *msg, size_t msg_len,
                  const json_t *fields) {
    int traced = trace_hex();
    sio_redactor *red = sio_redact_global();
    /* Written directly unless a secret may need replacing, or a field
     * would take the place of the trace's ids (the tree below keeps that
     * order). */
    if (sio_redact_count(red) == 0 &&
        !(traced && (json_object_get(fields, "trace_id") || json_object_get(fields, "span_id")))) {
        linebuf b = {.len = 0, .cap = sizeof b.stack};
        b.p = b.stack;
        if (write_line(&b, level, msg, msg_len, fields, traced) == 0)
            (sink ? sink : sio_log_stderr)(ud, b.p, b.len);
        if (b.p != b.stack) free(b.p);
        return;
    }
    char when[40];
    json_t *line = json_pack("{s:s,s:s,s:o}", "ts", sio_log_timestamp(when, sizeof when), "level",
                             level, "msg", sio_json_text(msg, msg_len));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v) {
        if (line && !reserved_key(k)) json_object_set(line, k, v);
    }
    if (line && traced) {
        json_object_set_new(line, "trace_id", json_string(tr.trace_id));
        json_object_set_new(line, "span_id", json_string(tr.span_id));
    }
    /* No secret in any line (redact.h): the msg and every field, whatever
     * the sink; "ts" is ours, never a secret. */
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

int sio_log_enabled(sio_log_level level) {
    return (int)level >= min_level;
}

void sio_log_json(sio_log_level level, const char *msg, json_t *fields) {
    if ((int)level >= min_level)
        sio_log_emit(NULL, NULL, sio_log_level_name(level), msg, strlen(msg), fields);
    json_decref(fields);
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
