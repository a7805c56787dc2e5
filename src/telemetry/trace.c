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
#include "pb.h"

#define BATCH_MAX 512
#define BATCH_DELAY_MS 1000
#define EXPORT_TIMEOUT_MS 10000

struct sio_span {
    sio_trace_ctx ctx;
    uint8_t parent_id[8];
    int has_parent, recording;
    sio_span_kind kind;
    uint64_t start_ns, end_ns; /* wall clock */
    int status;                /* 0 unset, 2 error */
    char *status_msg;
    /* Recording: the OTLP Span message (trace.proto) as it is built - the
     * name, then attributes and events as they come, the ids, times and
     * status when the span ends - so exporting a span is one copy. */
    sio_pb pb;
    sio_span *next; /* the export queue */
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

uint64_t sio_trace_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- spans ----------------------------------------------------------------*/

/* A recording span is allocated with this much room for its message, which
 * holds a command's span with its attributes: one allocation per span. */
#define SPAN_INLINE 1024

sio_span *sio_span_start(const char *name, sio_span_kind kind, const sio_trace_ctx *parent) {
    return sio_span_start_at(name, kind, parent, 0);
}

sio_span *sio_span_start_at(const char *name, sio_span_kind kind, const sio_trace_ctx *parent,
                            uint64_t start_ns) {
    uint8_t trace_id[16];
    if (parent) memcpy(trace_id, parent->trace_id, 16);
    else sio_trace_new_trace_id(trace_id);
    int sampled = sio_sampler_sample(&ex.sampler, parent, trace_id);
    int recording = sampled && atomic_load_explicit(&ex.running, memory_order_relaxed);
    sio_span *s = malloc(sizeof *s + (recording ? SPAN_INLINE : 0));
    if (s == NULL) return NULL;
    memcpy(s->ctx.trace_id, trace_id, 16);
    sio_trace_new_span_id(s->ctx.span_id);
    s->ctx.flags = sampled ? 1 : 0;
    s->ctx.tracestate[0] = '\0';
    s->has_parent = parent != NULL;
    if (parent) {
        memcpy(s->parent_id, parent->span_id, 8);
        memcpy(s->ctx.tracestate, parent->tracestate, strnlen(parent->tracestate, SIO_TRACESTATE_MAX) + 1);
        s->ctx.tracestate[SIO_TRACESTATE_MAX] = '\0';
    }
    s->recording = recording;
    s->kind = kind;
    s->start_ns = s->end_ns = 0;
    s->status = 0;
    s->status_msg = NULL;
    s->next = NULL;
    sio_pb_init(&s->pb, recording ? (void *)(s + 1) : NULL, SPAN_INLINE);
    if (recording) {
        s->start_ns = start_ns ? start_ns : sio_trace_now_ns();
        sio_pb_string(&s->pb, 5, name, strlen(name)); /* Span.name */
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

/* A KeyValue {key, AnyValue {string_value}} as field `field` of b. */
static void kv_str(sio_pb *b, unsigned field, const char *key, const char *val, size_t len) {
    size_t kv = sio_pb_begin(b, field);
    sio_pb_string(b, 1, key, strlen(key));
    size_t any = sio_pb_begin(b, 2);
    sio_pb_string(b, 1, val, len);
    sio_pb_end(b, any);
    sio_pb_end(b, kv);
}

void sio_span_set_strn(sio_span *s, const char *key, const char *val, size_t len) {
    if (sio_span_recording(s) && val) kv_str(&s->pb, 9, key, val, len); /* Span.attributes */
}

void sio_span_set_str(sio_span *s, const char *key, const char *val) {
    if (val) sio_span_set_strn(s, key, val, strlen(val));
}

void sio_span_set_int(sio_span *s, const char *key, int64_t val) {
    if (!sio_span_recording(s)) return;
    size_t kv = sio_pb_begin(&s->pb, 9);
    sio_pb_string(&s->pb, 1, key, strlen(key));
    size_t any = sio_pb_begin(&s->pb, 2);
    sio_pb_uint(&s->pb, 3, (uint64_t)val); /* AnyValue.int_value: int64, two's complement */
    sio_pb_end(&s->pb, any);
    sio_pb_end(&s->pb, kv);
}

void sio_span_event(sio_span *s, const char *name, const char *key, const char *val) {
    if (!sio_span_recording(s)) return;
    size_t ev = sio_pb_begin(&s->pb, 11); /* Span.events */
    sio_pb_fixed64(&s->pb, 1, sio_trace_now_ns());
    sio_pb_string(&s->pb, 2, name, strlen(name));
    if (key && val) kv_str(&s->pb, 3, key, val, strlen(val));
    sio_pb_end(&s->pb, ev);
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
    sio_pb_free(&s->pb);
    free(s->status_msg);
    free(s);
}

/* The rest of the Span message: ids, kind, times, status, flags. */
static void span_finish(sio_span *s) {
    sio_pb *b = &s->pb;
    sio_pb_bytes(b, 1, s->ctx.trace_id, 16);
    sio_pb_bytes(b, 2, s->ctx.span_id, 8);
    if (s->ctx.tracestate[0]) sio_pb_string(b, 3, s->ctx.tracestate, strlen(s->ctx.tracestate));
    if (s->has_parent) sio_pb_bytes(b, 4, s->parent_id, 8);
    sio_pb_uint(b, 6, (uint64_t)s->kind);
    sio_pb_fixed64(b, 7, s->start_ns);
    sio_pb_fixed64(b, 8, s->end_ns);
    if (s->status == 2) {
        size_t st = sio_pb_begin(b, 15);
        const char *m = s->status_msg ? s->status_msg : "";
        sio_pb_string(b, 2, m, strlen(m));
        sio_pb_uint(b, 3, 2); /* STATUS_CODE_ERROR */
        sio_pb_end(b, st);
    }
    sio_pb_fixed32(b, 16, (uint32_t)s->ctx.flags | 0x100); /* bit 8: the flags are known */
}

void sio_span_end(sio_span *s) {
    if (s == NULL) return;
    if (!s->recording) {
        span_free(s);
        return;
    }
    s->end_ns = sio_trace_now_ns();
    span_finish(s);
    pthread_mutex_lock(&ex.mu);
    int take = !s->pb.oom && !ex.stop && ex.queued < ex.max;
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
    sio_log_set_trace(c ? c->trace_id : NULL, c ? c->span_id : NULL);
}

void sio_span_log_here(const sio_span *s) {
    sio_trace_log_here(s ? &s->ctx : NULL);
}

/* --- OTLP/protobuf ------------------------------------------------------------*/

/* An ExportTraceServiceRequest (trace_service.proto) of the list: one
 * ResourceSpans with the service's resource and one ScopeSpans holding
 * every span's message as it was built.  *len gets its size; NULL when out
 * of memory. */
static uint8_t *batch_pb(const sio_span *list, size_t *len) {
    sio_pb b = {0};
    size_t rs = sio_pb_begin(&b, 1);    /* resource_spans */
    size_t res = sio_pb_begin(&b, 1);   /* ResourceSpans.resource */
    kv_str(&b, 1, "service.name", ex.service, strlen(ex.service));
    kv_str(&b, 1, "telemetry.sdk.name", "sio-orchestrator", 16);
    kv_str(&b, 1, "telemetry.sdk.language", "c", 1);
    sio_pb_end(&b, res);
    size_t ss = sio_pb_begin(&b, 2);    /* ResourceSpans.scope_spans */
    size_t scope = sio_pb_begin(&b, 1); /* ScopeSpans.scope */
    sio_pb_string(&b, 1, "sio-orchestrator", 16);
    sio_pb_end(&b, scope);
    for (const sio_span *s = list; s; s = s->next) sio_pb_bytes(&b, 2, s->pb.p, s->pb.len);
    sio_pb_end(&b, ss);
    sio_pb_end(&b, rs);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p, (void)ud;
    return size * n;
}

/* Posts one batch; counts it exported or dropped. */
static void post(CURL *curl, struct curl_slist *hdrs, sio_span *list, size_t n) {
    size_t len = 0;
    uint8_t *body = batch_pb(list, &len);
    long status = 0;
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (body) {
        curl_easy_setopt(curl, CURLOPT_URL, ex.url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (char *)body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
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
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
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
