/*
 * log.h - structured JSON log lines on stderr, one per event:
 *   {"ts":"2026-11-27T01:02:03.456Z","level":"info","msg":"...", <fields>}
 * fields is a JSON object body without braces ("\"topic\":\"t\",\"partition\":3")
 * built by the caller, or NULL.  Lines are written with one write(2), so
 * threads do not interleave within a line.
 */
#ifndef SIO_LOG_H
#define SIO_LOG_H

#include <stdint.h>

#include "config.h"

struct json_t;

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

/* unix_ms (wall clock, ms since the epoch) as "2026-11-27T01:02:03.456Z"
 * in buf (>= 32 bytes); returns buf. */
char *sio_iso8601(int64_t unix_ms, char *buf, size_t n);

/* The wall clock in ms since the epoch. */
int64_t sio_wall_ms(void);

/* Logs {"ts","level","msg", <each member of fields>} built with jansson
 * (so every value is escaped and valid).  fields is stolen (may be NULL). */
void sio_log_json(sio_log_level level, const char *msg, struct json_t *fields)
    __attribute__((nonnull(2)));

/* Writes one finished JSON line (line[0..len), '\n'-terminated) to stderr
 * with one write(2), after replacing every secret value in its strings
 * (redact.h).  The one writer of log lines: the functions above and the
 * sandbox's lines (host.log, print) all end here. */
void sio_log_write(const char *line, size_t len);

/* JSON-escapes s into buf (size n, always NUL-terminated); returns buf. */
char *sio_json_escape(const char *s, char *buf, size_t n);

#endif
