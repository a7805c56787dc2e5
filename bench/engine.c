/*
 * engine.c - the engine alone: no Kafka, no Redis, one thread.
 *
 *   sio_bench_engine WORKFLOWS_DIR LUA_DIR WORKFLOW ATTRS_JSON SECONDS|Nx
 *
 * Creates one worker (sio_worker_create, never started: its loop runs on
 * this thread through sio_worker_run_until_idle) with the daemon's default
 * limits (64 MiB, 1e8 instructions, 10 min), warms up, then submits runs
 * (sio_worker_submit_run: WORKFLOW with ATTRS_JSON as Lua values) in batches of 100
 * until SECONDS of CPU time have been used - or, given Nx (e.g. 10000x),
 * exactly N executions (N a multiple of 1,000): with a fixed count, two
 * runs under `valgrind --tool=cachegrind` of different N give the machine
 * instructions per execution from the difference, a figure a loaded
 * machine does not move.  Since it is single-threaded,
 * executions per CPU second is executions per core.  Prints one JSON line,
 * with the allocations per execution over the timed part: lua_allocs /
 * lua_bytes the Lua state's (blocks allocated or grown by the counting
 * allocator, and their sizes) and c_mallocs the C heap's (malloc, calloc,
 * realloc calls of the whole process: jansson trees, the run's records;
 * the Lua state's small blocks come from its own pool, so they are not in
 * this count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "worker.h"

/* C heap calls, counted by wrapping glibc's allocator (not under the
 * sanitizers, which bring their own). */
static unsigned long c_mallocs;
#if defined(__has_feature) /* clang's spelling of the sanitizer checks */
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIO_BENCH_SANITIZED 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && \
    !defined(SIO_BENCH_SANITIZED) && defined(__GLIBC__)
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n) {
    c_mallocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    c_mallocs++;
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    c_mallocs++;
    return __libc_realloc(p, n);
}
#define C_MALLOCS_COUNTED 1
#else
#define C_MALLOCS_COUNTED 0
#endif

static long done, ok;
static char last_err[512];

static void on_step_result(void *ud, const char *step_id, const char *payload, size_t len,
                           const json_t *query) {
    (void)ud, (void)step_id, (void)payload, (void)len, (void)query;
}

static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    (void)ud;
    done++;
    ok += result != NULL;
    if (!result) snprintf(last_err, sizeof last_err, "%s", e->message);
    json_decref(result);
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { BATCH = 100 };

static void run_batches(sio_worker *w, sio_run_job *jobs, long batches) {
    for (long b = 0; b < batches; b++) {
        for (int i = 0; i < BATCH; i++) sio_worker_submit_run(w, &jobs[i]);
        sio_worker_run_until_idle(w);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s WORKFLOWS_DIR LUA_DIR WORKFLOW ATTRS_JSON SECONDS|Nx\n", argv[0]);
        return 2;
    }
    const char *wf = argv[3], *attrs = argv[4];
    double seconds = atof(argv[5]);
    size_t alen = strlen(argv[5]);
    long fixed = alen > 1 && argv[5][alen - 1] == 'x' ? atol(argv[5]) : 0;
    if (fixed < 0 || fixed % (10 * BATCH) != 0) {
        fprintf(stderr, "Nx: N must be a multiple of %d\n", 10 * BATCH);
        return 2;
    }
    sio_worker_cfg cfg = {.id = 0, .workflows_dir = argv[1], .lua_dir = argv[2],
                          .limits = {.mem_limit_bytes = 64u << 20, .instr_limit = 100000000,
                                     .deadline_ms = 600000},
                          .http_timeout_ms = 10000};
    sio_err err;
    sio_worker *w = sio_worker_create(&cfg, &err);
    if (w == NULL) {
        fprintf(stderr, "worker: %s\n", err.msg);
        return 1;
    }
    json_t *attrs_v = sio_json_parse(attrs, strlen(attrs), &err);
    if (attrs_v == NULL) {
        fprintf(stderr, "attrs: %s\n", err.msg);
        return 2;
    }
    static sio_run_job jobs[BATCH];
    for (int i = 0; i < BATCH; i++)
        jobs[i] = (sio_run_job){.workflow = wf, .attrs = attrs_v,
                                .cbs = {.step_result = on_step_result, .done = on_done}};
    run_batches(w, jobs, 20); /* warm-up: 2,000 executions */
    if (ok != done) {
        fprintf(stderr, "%s failed: %s\n", wf, last_err);
        return 1;
    }
    done = ok = 0;
    uint64_t a0, b0, a1, b1;
    sio_worker_alloc_stats(w, &a0, &b0);
    unsigned long m0 = c_mallocs;
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC), c1;
    do {
        run_batches(w, jobs, 10);
        c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    } while (fixed ? done < fixed : c1 - c0 < seconds);
    double wall = clock_s(CLOCK_MONOTONIC) - w0, cpu = c1 - c0;
    unsigned long m1 = c_mallocs;
    sio_worker_alloc_stats(w, &a1, &b1);
    double n = (double)done;
    printf("{\"workflow\":\"%s\",\"executions\":%ld,\"ok\":%ld,\"cpu_s\":%.3f,\"wall_s\":%.3f,"
           "\"per_sec_per_core\":%.0f,\"us_per_exec\":%.2f,\"lua_allocs\":%.1f,"
           "\"lua_bytes\":%.0f",
           wf, done, ok, cpu, wall, n / cpu, cpu * 1e6 / n, (double)(a1 - a0) / n,
           (double)(b1 - b0) / n);
    if (C_MALLOCS_COUNTED) printf(",\"c_mallocs\":%.1f", (double)(m1 - m0) / n);
    printf("}\n");
    sio_worker_destroy(w);
    json_decref(attrs_v);
    return ok == done ? 0 : 1;
}
