/*
 * log.h - structured JSON log lines on stderr, one per event:
 *   {"ts":"2026-11-27T01:02:03.456Z","level":"info","msg":"...", <fields>,
 *    "trace_id":"...","span_id":"..."}
 * Every line is built by one function (sio_log_line) with jansson, so every
 * value is escaped and the line is valid JSON and valid UTF-8; the trace
 * ids are those the calling thread works for (sio_log_set_trace), when
 * set.  Lines are written with one write(2), so threads do not interleave
 * within a line.
 */
#ifndef SIO_LOG_H
#define SIO_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct json_t;

/* Lines below level are dropped.  Default: info. */
void sio_log_set_level(sio_log_level level);

/* Logs {"ts","level","msg", <each member of fields>, trace ids} on stderr.
 * fields (an object, or NULL) is stolen; msg may be any bytes (invalid
 * UTF-8 becomes U+FFFD). */
void sio_log_json(sio_log_level level, const char *msg, struct json_t *fields)
    __attribute__((nonnull(2)));

/* The line sio_log_json writes, for callers with a sink of their own (a
 * sandbox's log sink): a malloc'd text ending in '\n' (not NUL-terminated
 * beyond it), its length in *len; NULL when out of memory.  fields is
 * stolen.  Ignores the level filter. */
char *sio_log_line(sio_log_level level, const char *msg, struct json_t *fields, size_t *len)
    __attribute__((nonnull(2, 4)));

/* A rate limit for a line that can come in a flood (a retry per command):
 * at most per_second lines a second from all threads together; the rest
 * are counted, and the next line written carries "suppressed": <count>.
 * Static storage, initialised with SIO_LOG_LIMIT(n). */
typedef struct sio_log_limit {
    unsigned per_second;
    _Atomic int64_t second;     /* the current window (monotonic seconds) */
    _Atomic unsigned in_second; /* lines asked for in it */
    _Atomic uint64_t suppressed;
} sio_log_limit;

#define SIO_LOG_LIMIT(n) {.per_second = (n)}

/* sio_log_json under lim (any thread).  Returns 1 when the line was
 * written (or filtered by level), 0 when suppressed. */
int sio_log_limited(sio_log_limit *lim, sio_log_level level, const char *msg,
                    struct json_t *fields) __attribute__((nonnull(1, 3)));

/* The current UTC time as "2026-11-27T01:02:03.456Z" in buf (>= 32 bytes);
 * returns buf.  Every log line's "ts" uses it. */
char *sio_log_timestamp(char *buf, size_t n);

/* unix_ms (wall clock, ms since the epoch) as "2026-11-27T01:02:03.456Z"
 * in buf (>= 32 bytes); returns buf. */
char *sio_iso8601(int64_t unix_ms, char *buf, size_t n);

/* The wall clock in ms since the epoch. */
int64_t sio_wall_ms(void);

/* The trace the calling thread works for (a W3C trace id and span id):
 * every line logged from this thread until it is cleared carries them in
 * lower-case hex as "trace_id" and "span_id".  NULL clears.  Copied; cheap
 * (the hex is made only when a line is written), as it is set on every
 * callback a command's loop runs. */
void sio_log_set_trace(const uint8_t trace_id[16], const uint8_t span_id[8]);

/* The calling thread's ",\"trace_id\":\"...\",\"span_id\":\"...\"" (with
 * the leading comma), or "" when none is set: for the sandbox's host.log,
 * which builds its lines from Lua values.  Thread-local storage. */
const char *sio_log_trace_fields(void);

#endif
