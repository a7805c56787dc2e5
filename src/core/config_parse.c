/* config_parse.c - the value parsers of the configuration: durations,
 * sizes, booleans, numbers, topics, broker lists, host lists and Redis
 * addresses.  Each error names the bad value; callers prefix the source. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* Trims leading and trailing whitespace in place; returns the new start. */
char *sio_cfg_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

int sio_cfg_split_line(char *line, char **key, char **val) {
    line = sio_cfg_trim(line);
    *key = *val = line;
    if (*line == '\0' || *line == '#') return 0;
    char *eq = strchr(line, '=');
    if (eq == NULL) return -1;
    *eq = '\0';
    *key = sio_cfg_trim(line);
    char *v = sio_cfg_trim(eq + 1);
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) { /* one pair of quotes */
        v[n - 1] = '\0';
        v++;
    }
    *val = v;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Value parsers                                                             */

/* Reads the digits (and an optional fraction) of one duration component:
 * *whole and the fraction as num/den.  Returns chars consumed, 0 if none. */
static size_t read_number(const char *p, int64_t *whole, int64_t *num, int64_t *den) {
    const char *s = p;
    *whole = 0, *num = 0, *den = 1;
    while (isdigit((unsigned char)*p)) {
        if (*whole > (INT64_MAX - 9) / 10) return 0; /* overflow: treat as invalid */
        *whole = *whole * 10 + (*p++ - '0');
    }
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (*den <= INT64_MAX / 10 / HOUR_MS) *num = *num * 10 + (*p - '0'), *den *= 10;
            p++;
        }
    }
    return (size_t)(p - s);
}

/* Milliseconds per unit at p (ms, s, m, h); sets *len, 0 when unknown. */
static int64_t unit_ms(const char *p, size_t *len) {
    if (p[0] == 'm' && p[1] == 's') return *len = 2, 1;
    if (p[0] == 's') return *len = 1, 1000;
    if (p[0] == 'm') return *len = 1, 60 * 1000;
    if (p[0] == 'h') return *len = 1, HOUR_MS;
    return *len = 0, 0;
}

int sio_parse_duration_ms(const char *s, int64_t *out, sio_err *err) {
    static const char hint[] = "(e.g. \"500ms\", \"30s\", \"10m\", \"1h30m\")";
    if (s == NULL || *s == '\0') return sio_err_set(err, SIO_E_CONFIG, "empty duration %s", hint);
    if (strcmp(s, "0") == 0) return *out = 0, 0;
    int64_t total = 0;
    for (const char *p = s; *p;) {
        int64_t whole, num, den, mul;
        size_t n = read_number(p, &whole, &num, &den), ulen;
        if (n == 0) {
            if (*p == '-') return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is negative", s);
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a duration %s", s, hint);
        }
        mul = unit_ms(p + n, &ulen);
        if (mul == 0 && p[n] == '\0' && p == s)
            return sio_err_set(err, SIO_E_CONFIG,
                               "\"%s\" has no unit (write \"%.*ss\" or \"%.*sms\")", s, (int)n,
                               s, (int)n, s);
        if (mul == 0) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a duration %s", s, hint);
        if (whole > (INT64_MAX - total) / mul)
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is too long", s);
        if ((num * mul) % den != 0)
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is finer than a millisecond", s);
        total += whole * mul + num * mul / den;
        p += n + ulen;
    }
    *out = total;
    return 0;
}

/* Multiplier of a size suffix (k, m, g, t + optional b / ib), 0 if bad. */
static uint64_t size_suffix(const char *p) {
    static const char units[] = "kmgt";
    if (*p == '\0') return 1;
    const char *u = strchr(units, tolower((unsigned char)*p));
    if (u == NULL || *p == '\0') return 0;
    const char *rest = p + 1;
    if (*rest != '\0' && strcasecmp(rest, "b") != 0 && strcasecmp(rest, "ib") != 0) return 0;
    return 1ULL << (10 * (u - units + 1));
}

int sio_parse_size(const char *s, uint64_t *out, sio_err *err) {
    static const char hint[] = "(e.g. \"64m\", \"1g\", \"512k\", or bytes)";
    if (s == NULL || !isdigit((unsigned char)*s))
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a size %s", s ? s : "", hint);
    uint64_t v = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is too large", s);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    uint64_t mul = size_suffix(p);
    if (mul == 0) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a size %s", s, hint);
    if (v > UINT64_MAX / mul) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is too large", s);
    *out = v * mul;
    return 0;
}

int sio_parse_bool(const char *s, bool *out, sio_err *err) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; s != NULL && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)",
                       s ? s : "");
}

/* Strict decimal integer in [min, max]; messages as the config reports them. */
int sio_cfg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, sio_err *err) {
    const char *what = min == 1 ? "a positive integer" : min == 0 ? "a non-negative integer"
                                                                    : "an integer";
    char *end;
    errno = 0;
    long long v = (*s == '-' || isdigit((unsigned char)*s)) ? strtoll(s, &end, 10) : 0;
    if (!(*s == '-' || isdigit((unsigned char)*s)) || *end != '\0' || errno == ERANGE ||
        v < min)
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is not %s", s, what);
    if (v > max) return sio_err_set(err, SIO_E_CONFIG, "\"%s\" is too large (at most %" PRId64 ")", s, max);
    *out = v;
    return 0;
}

/* A Kafka topic name: 1..249 of [A-Za-z0-9._-], not "." or "..". */
int sio_cfg_check_topic(const char *s, sio_err *err) {
    size_t n = strlen(s);
    if (n == 0) return sio_err_set(err, SIO_E_CONFIG, "empty topic name");
    if (n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        return sio_err_set(err, SIO_E_CONFIG,
                           "\"%s\" is not a valid topic name (1-249 of A-Z a-z 0-9 . _ -)", s);
    return 0;
}

/* A comma-separated broker list without empty entries. */
int sio_cfg_check_brokers(const char *s, sio_err *err) {
    const char *p = s;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t blanks = 0;
        while (blanks < n && isspace((unsigned char)p[blanks])) blanks++;
        if (blanks == n)
            return sio_err_set(err, SIO_E_CONFIG, "\"%s\" has an empty broker entry", s);
        if (p[n] == '\0') return 0;
        p += n + 1;
    }
}

/* Checks a partition.assignment.strategy list: librdkafka's assignors,
 * comma-separated, all of one protocol family - the eager ones (range,
 * roundrobin) or cooperative-sticky alone (librdkafka refuses a member
 * that mixes the two; said here with the setting's name instead). */
int sio_cfg_check_assignors(const char *s, sio_err *err) {
    static const struct {
        const char *name;
        int cooperative;
    } known[] = {{"range", 0}, {"roundrobin", 0}, {"cooperative-sticky", 1}};
    int n_eager = 0, n_coop = 0;
    for (const char *p = s;; p++) {
        size_t n = strcspn(p, ","), b = 0;
        while (b < n && isspace((unsigned char)p[b])) b++;
        while (n > b && isspace((unsigned char)p[n - 1])) n--;
        size_t i = 0, len = n - b;
        while (i < sizeof known / sizeof known[0] &&
               !(strlen(known[i].name) == len && strncmp(p + b, known[i].name, len) == 0))
            i++;
        if (i == sizeof known / sizeof known[0])
            return sio_err_set(err, SIO_E_CONFIG,
                               "\"%.*s\" is not an assignor (cooperative-sticky, or range and/or "
                               "roundrobin)", (int)len, p + b);
        if (known[i].cooperative) n_coop++;
        else n_eager++;
        p += strcspn(p, ",");
        if (*p == '\0') break;
    }
    if (n_eager && n_coop)
        return sio_err_set(err, SIO_E_CONFIG,
                           "\"%s\" mixes cooperative-sticky with eager assignors: a member uses "
                           "one protocol", s);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Composite values: host lists and Redis addresses                          */

/* Frees a NULL-terminated array of owned strings. */
void sio_cfg_free_strv(char **v) {
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) free(v[i]);
    free(v);
}

/* Splits a comma list of hosts (trimmed, lower-cased, empties skipped)
 * into a NULL-terminated array the caller owns. */
char **sio_cfg_parse_hosts(const char *s, sio_err *err) {
    size_t cap = 2;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **v = calloc(cap, sizeof *v), *copy = strdup(s);
    size_t n = 0;
    if (v == NULL || copy == NULL) goto nomem;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = sio_cfg_trim(tok);
        if (*tok == '\0') continue;
        for (char *q = tok; *q; q++) *q = (char)tolower((unsigned char)*q);
        sio_err why;
        if (sio_http_allow_parse(tok, NULL, 0, NULL, &why) != 0) {
            sio_err_set(err, SIO_E_CONFIG, "\"%s\": %s", s, why.msg);
            goto fail;
        }
        if ((v[n++] = strdup(tok)) == NULL) goto nomem;
    }
    free(copy);
    return v;
nomem:
    sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
fail:
    free(copy);
    sio_cfg_free_strv(v);
    return NULL;
}

/* Decodes %XX escapes of a URL part of length n into a new string. */
static char *pct_decode(const char *s, size_t n, sio_err *err) {
    char *d = malloc(n + 1), *o = d;
    if (d == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return d;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" (n bytes of s):
 * *hs and *hn the host without brackets, *port 0 when absent.  -1 when it is
 * none of these (empty host, a bad port, a bare IPv6 address). */
static int split_hostport(const char *s, size_t n, const char **hs, size_t *hn, int *port) {
    const char *colon = NULL;
    *hs = s;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL) return -1;
        *hs = s + 1, *hn = (size_t)(close - *hs);
        if (close + 1 < s + n && close[1] != ':') return -1;
        if (close + 1 < s + n) colon = close + 1;
    } else {
        colon = memchr(s, ':', n);
        *hn = colon ? (size_t)(colon - s) : n;
        if (colon && memchr(colon + 1, ':', n - *hn - 1)) return -1;
    }
    if (*hn == 0) return -1;
    *port = 0;
    if (colon != NULL) {
        char digits[8] = {0};
        size_t pn = (size_t)(s + n - colon - 1);
        int64_t v;
        if (pn == 0 || pn >= sizeof digits) return -1;
        memcpy(digits, colon + 1, pn);
        if (sio_cfg_parse_i64(digits, 1, 65535, &v, NULL) != 0) return -1;
        *port = (int)v;
    }
    return 0;
}

/* A Redis address's host and port (6379 when absent) into r. */
static int parse_hostport(const char *s, size_t n, const char *all, redis_addr *r, sio_err *err) {
    const char *hs;
    size_t hn;
    if (split_hostport(s, n, &hs, &hn, &r->port) != 0)
        return sio_err_set(err, SIO_E_CONFIG,
                           "\"%s\" is not a Redis address (host:port or redis://[user:pass@]host:port)",
                           all);
    if (r->port == 0) r->port = 6379;
    if ((r->host = strndup(hs, hn)) == NULL) return sio_err_set(err, SIO_E_NOMEM, "config: out of memory");
    return 0;
}

int sio_http_allow_parse(const char *entry, char *host, size_t size, int *port, sio_err *err) {
    const char *hs = entry;
    size_t hn = strlen(entry);
    int p = -1;
    if (strcmp(entry, "*") != 0 &&
        (strspn(entry, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") !=
             hn ||
         split_hostport(entry, hn, &hs, &hn, &p) != 0))
        return sio_err_set(err, SIO_E_CONFIG,
                           "\"%s\" is not a host name (give host or host:port, not URLs; "
                           "[addr] for IPv6)",
                           entry);
    if (size > 0) {
        if (hn >= size) return sio_err_set(err, SIO_E_CONFIG, "\"%s\": host name too long", entry);
        memcpy(host, hs, hn);
        host[hn] = '\0';
    }
    if (port) *port = p;
    return 0;
}

/* Parses host:port or redis://[user[:pass]@]host[:port][/] into r (owned
 * strings; free with sio_cfg_redis_addr_free). */
int sio_cfg_parse_redis(const char *s, redis_addr *r, sio_err *err) {
    memset(r, 0, sizeof *r);
    if (strncasecmp(s, "rediss://", 9) == 0)
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\": TLS (rediss://) is not supported", s);
    const char *p = s;
    if (strncasecmp(s, "redis://", 8) == 0) {
        p = s + 8;
    } else if (strstr(s, "://") != NULL) {
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\": only redis:// URLs are supported", s);
    }
    size_t auth_end = strcspn(p, "/");
    const char *at = NULL;
    for (const char *q = p; q < p + auth_end; q++) if (*q == '@') at = q;
    if (p[auth_end] == '/' && p[auth_end + 1] != '\0')
        return sio_err_set(err, SIO_E_CONFIG, "\"%s\": a database path is not supported", s);
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t un = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (un > 0 && (r->user = pct_decode(p, un, err)) == NULL) return -1;
        if (colon && (r->pass = pct_decode(colon + 1, (size_t)(at - colon - 1), err)) == NULL) return -1;
        auth_end -= (size_t)(at + 1 - p), p = at + 1;
    }
    return parse_hostport(p, auth_end, s, r, err);
}

/* Frees the strings of r. */
void sio_cfg_redis_addr_free(redis_addr *r) {
    free(r->host), free(r->user), free(r->pass);
}

