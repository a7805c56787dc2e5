/* replay.c - reading and choosing DLQ entries; see replay.h. */
#include "replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "config.h"
#include "json.h"
#include "kafka.h"

/* A string member of o, or NULL. */
static const char *str(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* Does the entry's "truncated" list name field? */
static int truncated(const json_t *doc, const char *field) {
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(doc, "truncated"), i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), field) == 0) return 1;
    }
    return 0;
}

/* The command's bytes into e, or a reason in e->why. */
static void read_command(sio_replay_entry *e) {
    const json_t *cmd = json_object_get(e->doc, "command");
    const json_t *b64 = json_object_get(e->doc, "command_base64");
    if (truncated(e->doc, "command") || truncated(e->doc, "command_base64")) {
        snprintf(e->why, sizeof e->why, "the command was cut to fit the DLQ (\"truncated\")");
    } else if (cmd && b64) {
        snprintf(e->why, sizeof e->why, "both command and command_base64");
    } else if (cmd) {
        e->command = sio_json_dump(cmd, &e->command_len);
        if (e->command == NULL) snprintf(e->why, sizeof e->why, "out of memory");
    } else if (json_is_string(b64)) {
        e->command = (char *)sio_base64_decode(json_string_value(b64), json_string_length(b64),
                                               &e->command_len);
        if (e->command == NULL) snprintf(e->why, sizeof e->why, "command_base64 is not base64");
    } else {
        snprintf(e->why, sizeof e->why, "not a DLQ entry: no command or command_base64");
    }
}

void sio_replay_entry_read(const void *value, size_t len, sio_replay_entry *e) {
    memset(e, 0, sizeof *e);
    sio_err err;
    e->doc = value ? sio_json_parse(value, len, &err) : NULL;
    if (e->doc == NULL) {
        snprintf(e->why, sizeof e->why, "not JSON (%s)", value ? err.msg : "no value");
        return;
    }
    if (!json_is_object(e->doc)) {
        snprintf(e->why, sizeof e->why, "not a DLQ entry: not a JSON object");
        return;
    }
    e->correlation_id = str(e->doc, "correlation_id");
    e->workflow = str(e->doc, "workflow");
    e->error = str(e->doc, "error");
    e->error_class = str(e->doc, "error_class");
    read_command(e);
    const json_t *h = json_object_get(e->doc, "headers");
    if (e->why[0] == '\0' && h && !json_is_null(h) &&
        sio_kafka_headers_from_json(h, &e->headers, &err) != 0)
        snprintf(e->why, sizeof e->why, "%s", err.msg);
}

void sio_replay_entry_clear(sio_replay_entry *e) {
    json_decref(e->doc);
    free(e->command);
    if (e->headers) rd_kafka_headers_destroy(e->headers);
    memset(e, 0, sizeof *e);
}

/* want is NULL, or equal to have. */
static int same(const char *want, const char *have) {
    return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

int sio_replay_match(const sio_replay_entry *e, const sio_replay_filter *f) {
    if (!json_is_object(e->doc))
        return !f->error_class && !f->workflow && !f->error_text && !f->correlation_id;
    return same(f->error_class, e->error_class) && same(f->workflow, e->workflow) &&
           same(f->correlation_id, e->correlation_id) &&
           (f->error_text == NULL || (e->error && strstr(e->error, f->error_text)));
}

rd_kafka_headers_t *sio_replay_headers(const sio_replay_entry *e, const char *topic,
                                       int32_t partition, int64_t offset) {
    rd_kafka_headers_t *h = e->headers ? rd_kafka_headers_copy(e->headers)
                                       : rd_kafka_headers_new(1);
    rd_kafka_header_remove(h, SIO_REPLAY_HEADER);
    char of[400];
    snprintf(of, sizeof of, "%s/%d/%lld", topic, (int)partition, (long long)offset);
    rd_kafka_header_add(h, SIO_REPLAY_HEADER, -1, of, -1);
    return h;
}

/* ------------------------------------------------------------------------ */
/* Times                                                                     */

/* n decimal digits at *p into *out; advances *p. */
static int digits(const char **p, int n, int *out) {
    *out = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9') return -1;
        *out = *out * 10 + (**p - '0');
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339: YYYY-MM-DD(T| )HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int rfc3339(const char *s, int64_t *out) {
    int y, mo, d, h, mi, sec, zh = 0, zm = 0, ms = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    if (*p == '.') { /* a fraction: milliseconds, the rest ignored */
        int scale = 100, any = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, any = 1, scale /= 10) ms += (*p - '0') * scale;
        if (!any) return -1;
    }
    int sign = *p == '+' ? 1 : *p == '-' ? -1 : 0;
    if (sign) {
        p++;
        if (digits(&p, 2, &zh) || *p++ != ':' || digits(&p, 2, &zm)) return -1;
    } else if (*p == 'Z' || *p == 'z') {
        p++;
    } else {
        return -1;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60 || zh > 23 || zm > 59)
        return -1;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec);
    *out = (t - sign * (zh * 3600 + zm * 60)) * 1000 + ms;
    return 0;
}

int sio_replay_parse_time(const char *s, int64_t now_ms, int64_t *out, sio_err *err) {
    size_t n = strspn(s, "0123456789");
    if (n > 0 && s[n] == '\0') {
        if (n > 18) return sio_err_set(err, SIO_E_INVAL, "\"%s\" is too large", s);
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    if (n == 4 && s[4] == '-') {
        if (rfc3339(s, out) == 0) return 0;
        return sio_err_set(err, SIO_E_INVAL, "\"%s\" is not an RFC 3339 time "
                                             "(2026-11-27T01:33:49Z)", s);
    }
    int64_t ago;
    sio_err derr;
    if (sio_parse_duration_ms(s, &ago, &derr) == 0) {
        *out = now_ms - ago;
        return 0;
    }
    return sio_err_set(err, SIO_E_INVAL,
                       "\"%s\" is not a time: write 2026-11-27T01:33:49Z, epoch milliseconds "
                       "or a duration ago (2h)", s);
}
