/*
 * worker_trace.c - the telemetry of a Lua run: a span per step and per
 * sio.http / sio.kv / sio.kafka call, and the steps' durations.
 *
 * The engine tells the host when a step begins, is retried and ends, and
 * which step it resumes (host.step_* in worker_host.c); an op started
 * during that resume belongs to that step, so its span is the step span's
 * child.  Spans of a run belong to the worker's loop thread.  A run that
 * goes away with spans open (a failed fail_fast sibling, a limit kill, a
 * cancelled command) ends them as abandoned, so none leaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "worker_int.h"

struct sio_run_step {
    sio_span *span;
    uint64_t t0;   /* sio_mono_ns at begin; 0 when not running */
    size_t label;  /* sio_metrics_step */
    char id[SIO_STEP_MAX]; /* as sio_exec_step gives it (cut alike) */
};

struct sio_op_span {
    sio_op_span *next;
    uint64_t op;
    sio_span *span;
};

void sio_run_trace_init(sio_run *r, const sio_trace_ctx *parent, const char *workflow) {
    r->traced = parent != NULL;
    if (parent) r->trace = *parent;
    r->wf_label = sio_metrics_workflow(workflow);
}

void sio_run_log_here(const sio_run *r) {
    sio_trace_log_here(r->traced ? &r->trace : NULL);
}

/* The slot of step i, grown on demand; NULL when i is out of range or
 * memory is short (the step then goes untraced). */
static sio_run_step *step_at(sio_run *r, lua_Integer i) {
    if (i < 1 || i > 65536) return NULL;
    size_t k = (size_t)i;
    if (k > r->nsteps) {
        size_t n = r->nsteps ? r->nsteps : 8;
        while (n < k) n *= 2;
        sio_run_step *s = realloc(r->steps, n * sizeof *s);
        if (s == NULL) return NULL;
        memset(s + r->nsteps, 0, (n - r->nsteps) * sizeof *s);
        r->steps = s;
        r->nsteps = n;
    }
    return &r->steps[k - 1];
}

void sio_run_step_begin(sio_run *r, lua_Integer i, const char *step_id) {
    sio_run_step *s = step_at(r, i);
    if (s == NULL) return;
    if (s->span) sio_span_end(s->span); /* begun twice: the engine's bug, not a leak */
    s->span = NULL;
    s->t0 = sio_mono_ns();
    s->label = sio_metrics_step(r->wf_label, step_id);
    snprintf(s->id, sizeof s->id, "%s", step_id);
    if (!r->traced) return;
    char name[160];
    size_t n = strlen(step_id);
    memcpy(name, "step ", 5);
    memcpy(name + 5, step_id, n < sizeof name - 6 ? n : sizeof name - 6);
    name[5 + (n < sizeof name - 6 ? n : sizeof name - 6)] = '\0';
    s->span = sio_span_start(name, SIO_SPAN_INTERNAL, &r->trace);
    sio_span_set_str(s->span, "sio.step.id", step_id);
}

void sio_run_step_retry(sio_run *r, lua_Integer i, const char *error) {
    if (i < 1 || (size_t)i > r->nsteps) return;
    sio_span_event(r->steps[i - 1].span, "retry", "error", error);
}

void sio_run_step_end(sio_run *r, lua_Integer i, int ok, const char *error) {
    if (i < 1 || (size_t)i > r->nsteps) return;
    sio_run_step *s = &r->steps[i - 1];
    if (s->t0 == 0) return; /* never began (a guard that failed) */
    sio_metric_observe_ns(SIO_M_STEP_DURATION, s->label, sio_mono_ns() - s->t0);
    s->t0 = 0;
    if (!ok) sio_span_error(s->span, error ? error : "failed");
    sio_span_end(s->span);
    s->span = NULL;
}

sio_span *sio_run_op_span(sio_run *r, const char *name, sio_span_kind kind) {
    if (!r->traced) return NULL;
    const sio_trace_ctx *parent = &r->trace;
    const char *cur = r->exec ? sio_exec_step(r->exec) : "";
    for (size_t i = 0; cur[0] && i < r->nsteps; i++) {
        if (r->steps[i].span && strcmp(r->steps[i].id, cur) == 0) {
            parent = sio_span_context(r->steps[i].span);
            break;
        }
    }
    return sio_span_start(name, kind, parent);
}

void sio_run_op_started(sio_run *r, sio_span *s, uint64_t op_id, const sio_err *err) {
    if (s == NULL) return;
    sio_op_span *o = op_id ? malloc(sizeof *o) : NULL;
    if (o == NULL) {
        if (op_id == 0) sio_span_error(s, err ? err->msg : "not started");
        sio_span_end(s);
        return;
    }
    o->op = op_id;
    o->span = s;
    o->next = r->op_spans;
    r->op_spans = o;
}

void sio_run_op_done(sio_run *r, uint64_t op_id, const sio_aio_result *res) {
    for (sio_op_span **p = &r->op_spans; *p; p = &(*p)->next) {
        sio_op_span *o = *p;
        if (o->op != op_id) continue;
        *p = o->next;
        if (res == NULL) {
            sio_span_event(o->span, "cancelled", NULL, NULL);
        } else if (res->err.code != SIO_E_OK) {
            sio_span_error(o->span, res->err.msg);
        } else if (res->kind == SIO_AIO_HTTP) {
            sio_span_set_int(o->span, "http.response.status_code", res->http_status);
            if (res->http_status >= 400) { /* a client span's error (semantic conventions) */
                char m[32];
                snprintf(m, sizeof m, "status %ld", res->http_status);
                sio_span_error(o->span, m);
            }
        } else if (res->kind == SIO_AIO_PRODUCE) {
            char part[16];
            snprintf(part, sizeof part, "%d", (int)res->partition);
            sio_span_set_str(o->span, "messaging.destination.partition.id", part);
            sio_span_set_int(o->span, "messaging.kafka.offset", res->offset);
        }
        sio_span_end(o->span);
        free(o);
        return;
    }
}

void sio_run_trace_release(sio_run *r) {
    for (sio_op_span *o = r->op_spans, *n; o; o = n) {
        n = o->next;
        sio_span_error(o->span, "abandoned: the run ended first");
        sio_span_end(o->span);
        free(o);
    }
    r->op_spans = NULL;
    for (size_t i = 0; i < r->nsteps; i++) {
        if (r->steps[i].span == NULL) continue;
        sio_span_error(r->steps[i].span, "abandoned: the run ended first");
        sio_span_end(r->steps[i].span);
    }
    free(r->steps);
    r->steps = NULL;
    r->nsteps = 0;
}
