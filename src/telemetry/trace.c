/* trace.c - see trace.h. */
#include "trace.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "metrics.h"

#define BATCH_MAX 512
#define BATCH_DELAY_MS 1000
#define EXPORT_TIMEOUT_MS 10000

struct sio_span {
    sio_trace_ctx ctx;
    uint8_t parent_id[8];
    int has_parent, recording;
    sio_span_kind kind;
    char *name;
    uint64_t start_ns, end_ns; /* wall clock */
    json_t *attrs, *events;    /* OTLP KeyValue / Event arrays; NULL unless recording */
    int status;                /* 0 unset, 2 error */
    char *status_msg;
    sio_span *next;            /* the export queue */
};

/* The exporter.  cfg fields are written by start before the thread runs
 * and read-only afterwards; the queue under mu. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    _Atomic int running; /* spans are recorded only while 1 */
    int stop;
    sio_span *head, *tail;
    size_t queued, max;
    char *url, *service;
    sio_sampler sampler;
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
        .sampler = {SIO_SAMPLER_PARENTBASED_ALWAYS_ON, 1.0}};

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- spans ----------------------------------------------------------------*/

sio_span *sio_span_start(const char *name, sio_span_kind kind, const sio_trace_ctx *parent) {
    sio_span *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    if (parent) {
        memcpy(s->ctx.trace_id, parent->trace_id, 16);
        memcpy(s->parent_id, parent->span_id, 8);
        memcpy(s->ctx.tracestate, parent->tracestate, sizeof s->ctx.tracestate);
        s->has_parent = 1;
    } else {
        sio_trace_new_trace_id(s->ctx.trace_id);
    }
    sio_trace_new_span_id(s->ctx.span_id);
    s->ctx.flags = sio_sampler_sample(&ex.sampler, parent, s->ctx.trace_id) ? 1 : 0;
    s->kind = kind;
    s->recording = (s->ctx.flags & 1) && atomic_load_explicit(&ex.running, memory_order_relaxed);
    if (s->recording) {
        s->name = strdup(name);
        s->attrs = json_array();
        s->events = json_array();
        s->start_ns = wall_ns();
        if (s->name == NULL || s->attrs == NULL || s->events == NULL) s->recording = 0;
    }
    return s;
}

const sio_trace_ctx *sio_span_context(const sio_span *s) {
    return s ? &s->ctx : NULL;
}

void sio_span_traceparent(const sio_span *s, char out[SIO_TRACEPARENT_LEN + 1]) {
    if (s) sio_traceparent_format(&s->ctx, out);
    else out[0] = '\0';
}

int sio_span_recording(const sio_span *s) {
    return s && s->recording;
}

/* Appends {"key":k,"value":v} (v stolen) to arr. */
static void add_kv(json_t *arr, const char *k, json_t *v) {
    json_t *kv = v ? json_pack("{s:s,s:o}", "key", k, "value", v) : NULL;
    if (kv) json_array_append_new(arr, kv);
}

static json_t *str_value(const char *val, size_t len) {
    return json_pack("{s:o}", "stringValue", sio_json_text(val, len));
}

void sio_span_set_strn(sio_span *s, const char *key, const char *val, size_t len) {
    if (sio_span_recording(s) && val) add_kv(s->attrs, key, str_value(val, len));
}

void sio_span_set_str(sio_span *s, const char *key, const char *val) {
    if (val) sio_span_set_strn(s, key, val, strlen(val));
}

void sio_span_set_int(sio_span *s, const char *key, int64_t val) {
    if (!sio_span_recording(s)) return;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)val); /* OTLP/JSON: int64 as a string */
    add_kv(s->attrs, key, json_pack("{s:s}", "intValue", n));
}

void sio_span_event(sio_span *s, const char *name, const char *key, const char *val) {
    if (!sio_span_recording(s)) return;
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)wall_ns());
    json_t *attrs = json_array();
    if (attrs && key && val) add_kv(attrs, key, str_value(val, strlen(val)));
    json_t *e = attrs ? json_pack("{s:s,s:o,s:o}", "timeUnixNano", t, "name",
                                  sio_json_text(name, strlen(name)), "attributes", attrs)
                      : NULL;
    if (e) json_array_append_new(s->events, e);
}

void sio_span_error(sio_span *s, const char *message) {
    if (!sio_span_recording(s)) return;
    s->status = 2;
    free(s->status_msg);
    s->status_msg = strdup(message ? message : "");
    sio_span_event(s, "exception", "exception.message", message ? message : "");
}

static void span_free(sio_span *s) {
    if (s == NULL) return;
    json_decref(s->attrs);
    json_decref(s->events);
    free(s->name);
    free(s->status_msg);
    free(s);
}

void sio_span_end(sio_span *s) {
    if (s == NULL) return;
    if (!s->recording) {
        span_free(s);
        return;
    }
    s->end_ns = wall_ns();
    pthread_mutex_lock(&ex.mu);
    int take = !ex.stop && ex.queued < ex.max;
    if (take) {
        if (ex.tail) ex.tail->next = s;
        else ex.head = s;
        ex.tail = s;
        if (++ex.queued == BATCH_MAX || ex.queued == 1) pthread_cond_signal(&ex.cv);
    }
    pthread_mutex_unlock(&ex.mu);
    if (!take) {
        sio_metric_inc(SIO_M_SPANS_DROPPED, 0);
        span_free(s);
    }
}

void sio_trace_log_here(const sio_trace_ctx *c) {
    if (c == NULL) {
        sio_log_set_trace(NULL, NULL);
        return;
    }
    char t[33], sp[17];
    sio_trace_hex(c->trace_id, 16, t);
    sio_trace_hex(c->span_id, 8, sp);
    sio_log_set_trace(t, sp);
}

void sio_span_log_here(const sio_span *s) {
    sio_trace_log_here(s ? &s->ctx : NULL);
}

/* --- OTLP/JSON --------------------------------------------------------------*/

static json_t *span_json(const sio_span *s) {
    char tid[33], sid[17], pid[17], st[24], et[24];
    sio_trace_hex(s->ctx.trace_id, 16, tid);
    sio_trace_hex(s->ctx.span_id, 8, sid);
    snprintf(st, sizeof st, "%llu", (unsigned long long)s->start_ns);
    snprintf(et, sizeof et, "%llu", (unsigned long long)s->end_ns);
    json_t *j = json_pack("{s:s,s:s,s:o,s:i,s:s,s:s,s:O,s:O}", "traceId", tid, "spanId", sid,
                          "name", sio_json_text(s->name, strlen(s->name)), "kind", (int)s->kind,
                          "startTimeUnixNano", st, "endTimeUnixNano", et, "attributes", s->attrs,
                          "events", s->events);
    if (j == NULL) return NULL;
    if (s->has_parent) {
        sio_trace_hex(s->parent_id, 8, pid);
        json_object_set_new(j, "parentSpanId", json_string(pid));
    }
    if (s->ctx.tracestate[0]) json_object_set_new(j, "traceState", json_string(s->ctx.tracestate));
    json_object_set_new(j, "flags", json_integer(s->ctx.flags | 0x100)); /* bit 8: flags known */
    if (s->status == 2)
        json_object_set_new(j, "status", json_pack("{s:i,s:o}", "code", 2, "message",
                                                   sio_json_text(s->status_msg, strlen(s->status_msg))));
    return j;
}

/* An ExportTraceServiceRequest of the list (n spans); NULL when out of memory. */
static char *batch_json(const sio_span *list) {
    json_t *spans = json_array();
    for (const sio_span *s = list; s && spans; s = s->next) {
        json_t *j = span_json(s);
        if (j) json_array_append_new(spans, j);
    }
    json_t *res = json_array();
    if (res) {
        add_kv(res, "service.name", str_value(ex.service, strlen(ex.service)));
        add_kv(res, "telemetry.sdk.name", str_value("sio-orchestrator", 16));
        add_kv(res, "telemetry.sdk.language", str_value("c", 1));
    }
    json_t *doc = spans && res ? json_pack(
        "{s:[{s:{s:o},s:[{s:{s:s},s:o}]}]}", "resourceSpans", "resource", "attributes", res,
        "scopeSpans", "scope", "name", "sio-orchestrator", "spans", spans) : NULL;
    if (doc == NULL) json_decref(spans), json_decref(res);
    char *text = doc ? sio_json_dump(doc, NULL) : NULL;
    json_decref(doc);
    return text;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p, (void)ud;
    return size * n;
}

/* Posts one batch; counts it exported or dropped. */
static void post(CURL *curl, struct curl_slist *hdrs, sio_span *list, size_t n) {
    char *body = batch_json(list);
    long status = 0;
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (body) {
        curl_easy_setopt(curl, CURLOPT_URL, ex.url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)EXPORT_TIMEOUT_MS);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
        rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    free(body);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        sio_metric_add(SIO_M_SPANS_EXPORTED, 0, (int64_t)n);
    } else {
        sio_metric_add(SIO_M_SPANS_DROPPED, 0, (int64_t)n);
        static _Atomic int64_t last_log_ns; /* one line per 10 s at most */
        uint64_t now = sio_mono_ns();
        if ((int64_t)now - atomic_load(&last_log_ns) > 10000000000LL) {
            atomic_store(&last_log_ns, (int64_t)now);
            sio_log_json(SIO_LOG_WARN, "span export failed: spans dropped",
                         json_pack("{s:I,s:o,s:I}", "status", (json_int_t)status, "error",
                                   sio_json_cstr(curl_easy_strerror(rc)), "dropped",
                                   (json_int_t)n));
        }
    }
    for (sio_span *s = list, *nx; s; s = nx) nx = s->next, span_free(s);
}

static void *exporter_main(void *arg) {
    (void)arg;
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    pthread_mutex_lock(&ex.mu);
    for (;;) {
        while (!ex.stop && ex.queued == 0) pthread_cond_wait(&ex.cv, &ex.mu);
        if (!ex.stop && ex.queued < BATCH_MAX) { /* give the batch a second to fill */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += BATCH_DELAY_MS / 1000;
            while (!ex.stop && ex.queued < BATCH_MAX &&
                   pthread_cond_timedwait(&ex.cv, &ex.mu, &until) == 0) {
            }
        }
        if (ex.queued == 0 && ex.stop) break;
        sio_span *list = ex.head, *last = list;
        size_t n = 1;
        while (n < BATCH_MAX && last->next) last = last->next, n++;
        ex.head = last->next;
        if (ex.head == NULL) ex.tail = NULL;
        last->next = NULL;
        ex.queued -= n;
        pthread_mutex_unlock(&ex.mu);
        if (curl && hdrs) post(curl, hdrs, list, n);
        else for (sio_span *s = list, *nx; s; s = nx) nx = s->next, span_free(s);
        pthread_mutex_lock(&ex.mu);
    }
    pthread_mutex_unlock(&ex.mu);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return NULL;
}

int sio_trace_start(const sio_trace_cfg *cfg, sio_err *err) {
    ex.sampler = cfg->sampler;
    if (cfg->url == NULL || atomic_load(&ex.running)) return 0;
    ex.url = strdup(cfg->url);
    ex.service = strdup(cfg->service_name ? cfg->service_name : "sio-orchestrator");
    ex.max = cfg->queue_max ? cfg->queue_max : 2048;
    ex.stop = 0;
    if (ex.url == NULL || ex.service == NULL) {
        free(ex.url), free(ex.service);
        return sio_err_set(err, SIO_E_NOMEM, "trace exporter: out of memory");
    }
    if (pthread_create(&ex.thread, NULL, exporter_main, NULL) != 0) {
        free(ex.url), free(ex.service);
        return sio_err_set(err, SIO_E_NOMEM, "trace exporter: cannot start a thread");
    }
    atomic_store(&ex.running, 1);
    return 0;
}

void sio_trace_stop(void) {
    if (!atomic_load(&ex.running)) return;
    atomic_store(&ex.running, 0);
    pthread_mutex_lock(&ex.mu);
    ex.stop = 1;
    pthread_cond_signal(&ex.cv);
    pthread_mutex_unlock(&ex.mu);
    pthread_join(ex.thread, NULL);
    free(ex.url), free(ex.service);
    ex.url = ex.service = NULL;
}
