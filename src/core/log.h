/*
 * log.h - the one logging route: structured JSON log lines, one per event,
 *   {"ts":"2026-11-27T01:02:03.456Z","level":"info","msg":"...", <fields>}
 * built with jansson (every value escaped, valid UTF-8 whatever the bytes)
 * and handed whole, newline included, to a sink: stderr by default (one
 * write(2) per line, so threads do not interleave within a line), or the
 * one a sandbox was given (the busted harness captures its lines).  The
 * host's own lines (sio_log_json), a script's (host.log, print:
 * sandbox_log.c), the watcher's and the reload's all go through
 * sio_log_emit.  A line also carries the trace the calling thread works
 * for ("trace_id", "span_id": sio_log_set_trace), when set.
 */
#ifndef SIO_LOG_H
#define SIO_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct json_t;

/* Where a line goes: len bytes ending with '\n' (not NUL-terminated),
 * valid during the call. */
typedef void (*sio_log_fn)(void *ud, const char *line, size_t len);

/* The default sink: stderr, one write(2) per line (ud unused). */
void sio_log_stderr(void *ud, const char *line, size_t len);

/* Lines below level are dropped by sio_log_json.  Default: info. */
void sio_log_set_level(sio_log_level level);

/* Builds {"ts","level","msg", <each member of fields>, trace ids} (fields
 * borrowed, may be NULL; members named ts, level or msg are left out; the
 * thread's trace ids replace members of those names), replaces every
 * secret value in its strings (redact.h: the process's redactor), and
 * hands it to sink (NULL: stderr).  msg is msg_len bytes, any bytes.  A line that
 * cannot be built (memory) is dropped. */
void sio_log_emit(sio_log_fn sink, void *ud, const char *level, const char *msg, size_t msg_len,
                  const struct json_t *fields);

/* The host's lines: sio_log_emit to stderr at level, unless below the
 * level set.  fields is stolen (may be NULL). */
void sio_log_json(sio_log_level level, const char *msg, struct json_t *fields)
    __attribute__((nonnull(2)));

/* 1 when a host line at level would be written: callers skip building
 * the fields of a frequent line nobody reads (LOG_LEVEL=warn). */
int sio_log_enabled(sio_log_level level);

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
 * written (or filtered by level), 0 when suppressed.  fields is stolen. */
int sio_log_limited(sio_log_limit *lim, sio_log_level level, const char *msg,
                    struct json_t *fields) __attribute__((nonnull(1, 3)));

/* The trace the calling thread works for (a W3C trace id and span id):
 * every line sio_log_emit builds on this thread until it is cleared
 * carries them in lower-case hex as "trace_id" and "span_id".  NULL
 * clears.  Copied into thread-local storage; cheap (the hex is made only
 * when a line is written), as it is set on every callback a command's
 * loop runs. */
void sio_log_set_trace(const uint8_t trace_id[16], const uint8_t span_id[8]);

/* The current UTC time as "2026-11-27T01:02:03.456Z" in buf (>= 32 bytes);
 * returns buf.  Every log line's "ts" uses it. */
char *sio_log_timestamp(char *buf, size_t n);

/* unix_ms (wall clock, ms since the epoch) as "2026-11-27T01:02:03.456Z"
 * in buf (>= 32 bytes); returns buf. */
char *sio_iso8601(int64_t unix_ms, char *buf, size_t n);

/* The wall clock in ms since the epoch. */
int64_t sio_wall_ms(void);

#endif
