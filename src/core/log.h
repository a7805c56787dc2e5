/*
 * log.h - structured JSON log lines on stderr, one per event:
 *   {"ts":"2026-11-27T01:02:03.456Z","level":"info","msg":"...", <fields>}
 * fields is a JSON object body without braces ("\"topic\":\"t\",\"partition\":3")
 * built by the caller, or NULL.  Lines are written with one write(2), so
 * threads do not interleave within a line.
 */
#ifndef SIO_LOG_H
#define SIO_LOG_H

#include "config.h"

/* Lines below level are dropped.  Default: info. */
void sio_log_set_level(sio_log_level level);

void sio_log(sio_log_level level, const char *msg, const char *fields)
    __attribute__((nonnull(2)));

/* sio_log with fields formatted printf-style (fields may contain %). */
void sio_logf(sio_log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The current UTC time as "2026-11-27T01:02:03.456Z" in buf (>= 32 bytes);
 * returns buf.  Every log line's "ts" uses it. */
char *sio_log_timestamp(char *buf, size_t n);

/* The trace the calling thread works for (hex trace id and span id, as
 * telemetry's spans give them): every line logged from this thread until
 * it is cleared carries "trace_id" and "span_id".  NULL clears.  Copied
 * (ids longer than 32 / 16 characters are cut). */
void sio_log_set_trace(const char *trace_id, const char *span_id);

/* The calling thread's ",\"trace_id\":\"...\",\"span_id\":\"...\"" (with
 * the leading comma), or "" when none is set.  Thread-local storage. */
const char *sio_log_trace_fields(void);

/* JSON-escapes s into buf (size n, always NUL-terminated); returns buf. */
char *sio_json_escape(const char *s, char *buf, size_t n);

#endif
