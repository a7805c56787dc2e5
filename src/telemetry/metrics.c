/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health.h"
#include "json.h"
#include "log.h"

/* --- dimensions ----------------------------------------------------------*/

static const char *const outcome_names[SIO_OUTCOME__COUNT] = {"success", "dlq", "duplicate"};
static const char *const class_names[2] = {"permanent", "transient"};
static const char *const kind_names[SIO_METRICS_KINDS] = {"memory", "instructions", "deadline"};
static const char *const result_names[SIO_RELOAD__COUNT] = {"ok", "rejected"};

/* Cells per label scheme (the storage size; exposition shows the used part). */
#define CELLS_NONE 1
#define CELLS_WORKFLOW (SIO_METRICS_MAX_WORKFLOWS + 1)
#define CELLS_WORKFLOW_OUTCOME (CELLS_WORKFLOW * SIO_OUTCOME__COUNT)
#define CELLS_WORKFLOW_CODE (CELLS_WORKFLOW * SIO_E__COUNT)
#define CELLS_STEP (SIO_METRICS_MAX_STEPS + 1)
#define CELLS_CLASS 2
#define CELLS_KIND SIO_METRICS_KINDS
#define CELLS_RESULT SIO_RELOAD__COUNT
#define CELLS_WORKER SIO_METRICS_MAX_WORKERS
#define CELLS_COLLECTED 1

/* Histogram buckets (upper bounds, seconds).  WORK: commands and steps,
 * from a few ms to a workflow timeout's order; FAST: Redis round trips. */
static const double work_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1, 2.5, 5, 10, 30, 60, 300};
static const double fast_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01, 0.025, 0.05, 0.1, 0.25, 1};
#define NWORK (sizeof work_bounds / sizeof work_bounds[0])
#define NFAST (sizeof fast_bounds / sizeof fast_bounds[0])
/* Per histogram cell: one count per finite bucket, +Inf, the sum in ns. */
#define WIDTH_COUNTER(b) 1
#define WIDTH_GAUGE(b) 1
#define WIDTH_HISTOGRAM(b) (N##b + 2)
#define NNONE 0

typedef _Atomic uint64_t cell;

#define SIO_X_(id, type, name, labels, buckets, help) \
    static cell store_##id[CELLS_##labels * WIDTH_##type(buckets)];
SIO_METRICS(SIO_X_)
#undef SIO_X_

typedef struct mdef {
    const char *name, *help;
    sio_mtype type;
    sio_mlabels labels;
    sio_mbuckets buckets;
    cell *store;
    size_t ncells, width;
} mdef;

static const mdef defs[SIO_M__COUNT] = {
#define SIO_X_(id, type, name, labels, buckets, help)                                   \
    [SIO_M_##id] = {name, help, SIO_MT_##type, SIO_ML_##labels, SIO_MB_##buckets,        \
                    store_##id, CELLS_##labels, WIDTH_##type(buckets)},
    SIO_METRICS(SIO_X_)
#undef SIO_X_
};

/* --- the label catalogue --------------------------------------------------*/

typedef struct step_label {
    size_t wf;
    char *id;
} step_label;

/* Appended under cat_mu, published by the release store of the counts;
 * readers load the count (acquire) and read entries below it. */
static pthread_mutex_t cat_mu = PTHREAD_MUTEX_INITIALIZER;
static char *wf_names[SIO_METRICS_MAX_WORKFLOWS + 1];
static step_label steps[SIO_METRICS_MAX_STEPS + 1];
static _Atomic size_t nwf = 1, nsteps = 1; /* index 0 is unknown */
static _Atomic int nworkers;
static int cat_full_logged;

/* Label values are cut to this many bytes (a cut sequence becomes '?'). */
#define SIO_METRICS_MAX_LABEL 128

/* A copy of s that is valid UTF-8 without control characters ('?' for
 * each offending byte), so label values are always exposable. */
static char *clean_label(const char *s) {
    size_t n = strnlen(s, SIO_METRICS_MAX_LABEL);
    char *d = malloc(n + 1);
    if (d == NULL) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = sio_utf8_seq(p + i, n - i);
        if (len > 0 && i + len <= n) {
            for (size_t k = 0; k < len; k++) d[i + k] = p[i + k] < 0x20 || p[i + k] == 0x7f ? '?' : (char)p[i + k];
            i += len;
        } else {
            d[i++] = '?';
        }
    }
    d[n] = '\0';
    return d;
}

static size_t find_wf(const char *intent, size_t count) {
    for (size_t i = 1; i < count; i++)
        if (strcmp(wf_names[i], intent) == 0) return i;
    return 0;
}

size_t sio_metrics_workflow(const char *intent) {
    if (intent == NULL) return 0;
    return find_wf(intent, atomic_load_explicit(&nwf, memory_order_acquire));
}

size_t sio_metrics_step(size_t wf, const char *step_id) {
    if (wf == 0 || step_id == NULL) return 0;
    size_t count = atomic_load_explicit(&nsteps, memory_order_acquire);
    for (size_t i = 1; i < count; i++)
        if (steps[i].wf == wf && strcmp(steps[i].id, step_id) == 0) return i;
    return 0;
}

/* Adds one step label under cat_mu; returns 0 when full. */
static int add_step(size_t wf, const char *id) {
    size_t n = atomic_load_explicit(&nsteps, memory_order_relaxed);
    if (sio_metrics_step(wf, id) != 0) return 1;
    if (n > SIO_METRICS_MAX_STEPS) return 0;
    char *c = clean_label(id);
    if (c == NULL) return 0;
    steps[n].wf = wf, steps[n].id = c;
    atomic_store_explicit(&nsteps, n + 1, memory_order_release);
    return 1;
}

void sio_metrics_set_catalog(const sio_metrics_wf *wfs, size_t n) {
    int full = 0;
    pthread_mutex_lock(&cat_mu);
    for (size_t i = 0; i < n; i++) {
        if (wfs[i].intent == NULL) continue;
        size_t count = atomic_load_explicit(&nwf, memory_order_relaxed);
        size_t w = find_wf(wfs[i].intent, count);
        if (w == 0 && count <= SIO_METRICS_MAX_WORKFLOWS &&
            (wf_names[count] = clean_label(wfs[i].intent)) != NULL) {
            w = count;
            atomic_store_explicit(&nwf, count + 1, memory_order_release);
        }
        if (w == 0) {
            full = 1;
            continue;
        }
        for (size_t k = 0; k < wfs[i].nsteps; k++)
            if (wfs[i].steps[k] && !add_step(w, wfs[i].steps[k])) full = 1;
    }
    int log_it = full && !cat_full_logged;
    if (full) cat_full_logged = 1;
    pthread_mutex_unlock(&cat_mu);
    if (log_it)
        sio_log_json(SIO_LOG_WARN,
                     "metrics: too many workflows or steps; the rest are labelled unknown",
                     json_pack("{s:i,s:i}", "max_workflows", SIO_METRICS_MAX_WORKFLOWS, "max_steps",
                               SIO_METRICS_MAX_STEPS));
}

void sio_metrics_set_workers(int n) {
    if (n > SIO_METRICS_MAX_WORKERS) n = SIO_METRICS_MAX_WORKERS;
    atomic_store(&nworkers, n < 0 ? 0 : n);
}

size_t sio_metrics_code(sio_code code) {
    return (unsigned)code < SIO_E__COUNT ? (size_t)code : 0;
}

size_t sio_metrics_kill_kind(int k) {
    switch (k) { /* sandbox.h: 1 instructions, 2 memory, 3 deadline */
    case 2: return 0;
    case 1: return 1;
    default: return 2;
    }
}

/* --- updates -------------------------------------------------------------*/

size_t sio_metrics_cell2(sio_metric m, size_t i0, size_t i1) {
    switch (defs[m].labels) {
    case SIO_ML_WORKFLOW_OUTCOME: return i0 * SIO_OUTCOME__COUNT + i1;
    case SIO_ML_WORKFLOW_CODE: return i0 * SIO_E__COUNT + i1;
    default: return i0;
    }
}

void sio_metric_add(sio_metric m, size_t c, int64_t n) {
    if ((unsigned)m >= SIO_M__COUNT || c >= defs[m].ncells) return;
    atomic_fetch_add_explicit(&defs[m].store[c], (uint64_t)n, memory_order_relaxed);
}

void sio_metric_set(sio_metric m, size_t c, int64_t v) {
    if ((unsigned)m >= SIO_M__COUNT || c >= defs[m].ncells) return;
    atomic_store_explicit(&defs[m].store[c], (uint64_t)v, memory_order_relaxed);
}

static const double *bounds_of(sio_mbuckets b, size_t *n) {
    *n = b == SIO_MB_FAST ? NFAST : NWORK;
    return b == SIO_MB_FAST ? fast_bounds : work_bounds;
}

void sio_metric_observe_ns(sio_metric m, size_t c, uint64_t ns) {
    if ((unsigned)m >= SIO_M__COUNT || defs[m].type != SIO_MT_HISTOGRAM || c >= defs[m].ncells)
        return;
    size_t nb;
    const double *b = bounds_of(defs[m].buckets, &nb);
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < nb && s > b[i]) i++; /* i == nb: +Inf */
    cell *h = &defs[m].store[c * defs[m].width];
    atomic_fetch_add_explicit(&h[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h[nb + 1], ns, memory_order_relaxed);
}

uint64_t sio_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sio_metrics_reset(void) {
    for (size_t m = 0; m < SIO_M__COUNT; m++)
        for (size_t i = 0; i < defs[m].ncells * defs[m].width; i++)
            atomic_store(&defs[m].store[i], 0);
    sio_metrics_clear_lag();
}

/* --- consumer lag ------------------------------------------------------------*/

#define MAX_LAG 4096
typedef struct lag_entry {
    char topic[256];
    int32_t partition;
    int64_t lag;
} lag_entry;
static pthread_mutex_t lag_mu = PTHREAD_MUTEX_INITIALIZER;
static lag_entry lags[MAX_LAG];
static size_t nlags;

void sio_metrics_set_lag(const char *topic, int32_t partition, int64_t lag) {
    pthread_mutex_lock(&lag_mu);
    size_t i = 0;
    while (i < nlags && !(lags[i].partition == partition && strcmp(lags[i].topic, topic) == 0)) i++;
    if (lag < 0) {
        if (i < nlags) lags[i] = lags[--nlags];
    } else if (i < nlags) {
        lags[i].lag = lag;
    } else if (nlags < MAX_LAG && strlen(topic) < sizeof lags[0].topic) {
        snprintf(lags[nlags].topic, sizeof lags[0].topic, "%s", topic);
        lags[nlags].partition = partition, lags[nlags].lag = lag;
        nlags++;
    }
    pthread_mutex_unlock(&lag_mu);
}

void sio_metrics_clear_lag(void) {
    pthread_mutex_lock(&lag_mu);
    nlags = 0;
    pthread_mutex_unlock(&lag_mu);
}

/* One topic of a consumer's statistics: the lag of every partition it
 * fetches (librdkafka reports -1 while it does not know). */
static void stats_topic(const char *topic, json_t *parts) {
    const char *pk;
    json_t *p;
    json_object_foreach(parts, pk, p) {
        json_t *id = json_object_get(p, "partition"), *lag = json_object_get(p, "consumer_lag");
        json_t *state = json_object_get(p, "fetch_state");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || !json_is_integer(lag)) continue;
        if (!json_is_string(state) || strcmp(json_string_value(state), "active") != 0) continue;
        if (json_integer_value(lag) >= 0)
            sio_metrics_set_lag(topic, (int32_t)json_integer_value(id), json_integer_value(lag));
    }
}

void sio_metrics_kafka_stats(const char *text, size_t len) {
    json_t *root = sio_json_parse(text, len, NULL);
    if (root == NULL) return;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type && strcmp(type, "producer") == 0) {
        json_t *q = json_object_get(root, "msg_cnt");
        if (json_is_integer(q)) sio_metric_set(SIO_M_PRODUCER_QUEUE, 0, json_integer_value(q));
    } else if (type && strcmp(type, "consumer") == 0) {
        const char *tk;
        json_t *t;
        json_object_foreach(json_object_get(root, "topics"), tk, t) {
            stats_topic(tk, json_object_get(t, "partitions"));
        }
    }
    json_decref(root);
}

/* --- exposition ------------------------------------------------------------*/

/* Text being built; a fixed buffer (fixed = 1) is never reallocated. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    int oom, fixed;
} tbuf;

static void put(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *q = b->fixed ? NULL : realloc(b->p, cap);
        if (q == NULL) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
}

/* A label value escaped per the text format (\\, \", \n). */
static void put_escaped(tbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') put(b, "\\\\");
        else if (*s == '"') put(b, "\\\"");
        else if (*s == '\n') put(b, "\\n");
        else put(b, "%c", *s);
    }
}

/* The label set of cell c of metric m, without braces; "" for none. */
static void put_labels(tbuf *b, const mdef *d, size_t c) {
    size_t wf, k;
    switch (d->labels) {
    case SIO_ML_WORKFLOW:
    case SIO_ML_WORKFLOW_OUTCOME:
    case SIO_ML_WORKFLOW_CODE:
        k = d->labels == SIO_ML_WORKFLOW ? 1 : d->labels == SIO_ML_WORKFLOW_OUTCOME ? SIO_OUTCOME__COUNT : SIO_E__COUNT;
        wf = c / k;
        put(b, "workflow=\"");
        put_escaped(b, wf ? wf_names[wf] : "unknown");
        put(b, "\"");
        if (d->labels == SIO_ML_WORKFLOW_OUTCOME) put(b, ",outcome=\"%s\"", outcome_names[c % k]);
        if (d->labels == SIO_ML_WORKFLOW_CODE) {
            char lower[32];
            const char *name = sio_code_name((sio_code)(c % k));
            size_t i = 0;
            for (; name[i] && i + 1 < sizeof lower; i++)
                lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
            lower[i] = '\0';
            put(b, ",code=\"%s\"", lower);
        }
        break;
    case SIO_ML_STEP:
        put(b, "workflow=\"");
        put_escaped(b, c ? wf_names[steps[c].wf] : "unknown");
        put(b, "\",step=\"");
        put_escaped(b, c ? steps[c].id : "unknown");
        put(b, "\"");
        break;
    case SIO_ML_CLASS: put(b, "class=\"%s\"", class_names[c]); break;
    case SIO_ML_KIND: put(b, "kind=\"%s\"", kind_names[c]); break;
    case SIO_ML_RESULT: put(b, "result=\"%s\"", result_names[c]); break;
    case SIO_ML_WORKER: put(b, "worker=\"%zu\"", c); break;
    default: break;
    }
}

/* Is cell c of d exposed?  Enum cells always; catalogue cells once known;
 * error codes only for the transient ones (the only ones retried). */
static int cell_used(const mdef *d, size_t c, size_t wfs, size_t stps, size_t workers) {
    switch (d->labels) {
    case SIO_ML_WORKFLOW: return c < wfs;
    case SIO_ML_WORKFLOW_OUTCOME: return c / SIO_OUTCOME__COUNT < wfs;
    case SIO_ML_WORKFLOW_CODE:
        return c / SIO_E__COUNT < wfs && sio_code_class((sio_code)(c % SIO_E__COUNT)) == SIO_TRANSIENT;
    case SIO_ML_STEP: return c < stps;
    case SIO_ML_WORKER: return c < workers;
    default: return 1;
    }
}


/* One histogram cell: cumulative buckets, +Inf, sum, count. */
static void put_histogram(tbuf *b, const mdef *d, size_t c) {
    size_t nb;
    const double *bounds = bounds_of(d->buckets, &nb);
    const cell *h = &d->store[c * d->width];
    char first[512];
    tbuf lab = {.p = first, .cap = sizeof first, .fixed = 1};
    first[0] = '\0';
    put_labels(&lab, d, c);
    if (lab.oom) { /* a label set longer than first: no room to grow a stack buffer */
        b->oom = 1;
        return;
    }
    const char *sep = lab.len ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += atomic_load_explicit(&h[i], memory_order_relaxed);
        if (i < nb) put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", d->name, lab.p, sep, bounds[i], (unsigned long long)cum);
        else put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", d->name, lab.p, sep, (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&h[nb + 1], memory_order_relaxed) / 1e9;
    put(b, "%s_sum%s%s%s %.9g\n", d->name, lab.len ? "{" : "", lab.p, lab.len ? "}" : "", sum);
    put(b, "%s_count%s%s%s %llu\n", d->name, lab.len ? "{" : "", lab.p, lab.len ? "}" : "",
        (unsigned long long)cum);
}

static void put_collected(tbuf *b, sio_metric m) {
    if (m == SIO_M_CONSUMER_LAG) {
        pthread_mutex_lock(&lag_mu);
        for (size_t i = 0; i < nlags; i++) {
            put(b, "%s{topic=\"", defs[m].name);
            put_escaped(b, lags[i].topic);
            put(b, "\",partition=\"%d\"} %lld\n", (int)lags[i].partition, (long long)lags[i].lag);
        }
        pthread_mutex_unlock(&lag_mu);
    } else if (m == SIO_M_HEARTBEAT_AGE) {
        sio_health_thread t[SIO_HEALTH_MAX_THREADS];
        size_t n = sio_health_threads(t, SIO_HEALTH_MAX_THREADS);
        for (size_t i = 0; i < n; i++) {
            put(b, "%s{thread=\"", defs[m].name);
            put_escaped(b, t[i].name);
            put(b, "\"} %.3f\n", (double)t[i].age_ms / 1000.0);
        }
    }
}

static const char *type_name(sio_mtype t) {
    return t == SIO_MT_COUNTER ? "counter" : t == SIO_MT_GAUGE ? "gauge" : "histogram";
}

/* HELP text escaped per the format (\\ and \n). */
static void put_help(tbuf *b, const mdef *d) {
    put(b, "# HELP %s ", d->name);
    for (const char *s = d->help; *s; s++) {
        if (*s == '\\') put(b, "\\\\");
        else if (*s == '\n') put(b, "\\n");
        else put(b, "%c", *s);
    }
    put(b, "\n# TYPE %s %s\n", d->name, type_name(d->type));
}

char *sio_metrics_expose(size_t *len) {
    tbuf b = {.p = malloc(16384), .cap = 16384};
    if (b.p == NULL) return NULL;
    b.p[0] = '\0';
    size_t wfs = atomic_load_explicit(&nwf, memory_order_acquire);
    size_t stps = atomic_load_explicit(&nsteps, memory_order_acquire);
    size_t workers = (size_t)atomic_load(&nworkers);
    for (size_t m = 0; m < SIO_M__COUNT; m++) {
        const mdef *d = &defs[m];
        put_help(&b, d);
        if (d->labels == SIO_ML_COLLECTED) {
            put_collected(&b, (sio_metric)m);
            continue;
        }
        for (size_t c = 0; c < d->ncells; c++) {
            if (!cell_used(d, c, wfs, stps, workers)) continue;
            if (d->type == SIO_MT_HISTOGRAM) {
                put_histogram(&b, d, c);
                continue;
            }
            uint64_t v = atomic_load_explicit(&d->store[c], memory_order_relaxed);
            int labelled = d->labels != SIO_ML_NONE;
            put(&b, "%s%s", d->name, labelled ? "{" : "");
            put_labels(&b, d, c);
            if (d->type == SIO_MT_GAUGE) put(&b, "%s %lld\n", labelled ? "}" : "", (long long)(int64_t)v);
            else put(&b, "%s %llu\n", labelled ? "}" : "", (unsigned long long)v);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}

int sio_metrics_info(size_t i, const char **name, sio_mtype *type, const char **help,
                     const char **labels) {
    static const char *const label_names[] = {
        [SIO_ML_NONE] = "", [SIO_ML_WORKFLOW] = "workflow",
        [SIO_ML_WORKFLOW_OUTCOME] = "workflow outcome", [SIO_ML_WORKFLOW_CODE] = "workflow code",
        [SIO_ML_STEP] = "workflow step", [SIO_ML_CLASS] = "class", [SIO_ML_KIND] = "kind",
        [SIO_ML_RESULT] = "result", [SIO_ML_WORKER] = "worker", [SIO_ML_COLLECTED] = NULL};
    if (i >= SIO_M__COUNT) return 0;
    const mdef *d = &defs[i];
    if (name) *name = d->name;
    if (type) *type = d->type;
    if (help) *help = d->help;
    if (labels) {
        *labels = label_names[d->labels];
        if (i == SIO_M_CONSUMER_LAG) *labels = "topic partition";
        else if (i == SIO_M_HEARTBEAT_AGE) *labels = "thread";
    }
    return 1;
}
