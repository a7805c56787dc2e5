/* health.c - see health.h. */
#include "health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "metrics.h"

/* A watched thread.  name is written before `used` is set (release) and
 * not changed while used; last_ms by the thread itself. */
typedef struct slot {
    _Atomic int used;
    _Atomic int64_t last_ms;
    char name[32];
} slot;

static slot slots[SIO_HEALTH_MAX_THREADS];
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER; /* registration */
static _Atomic int64_t stall_ms = 30000;

static int64_t now_ms(void) {
    return (int64_t)(sio_mono_ns() / 1000000u);
}

int sio_health_register(const char *name) {
    pthread_mutex_lock(&reg_mu);
    int found = -1;
    for (int i = 0; i < SIO_HEALTH_MAX_THREADS && found < 0; i++)
        if (!atomic_load(&slots[i].used)) found = i;
    if (found >= 0) {
        snprintf(slots[found].name, sizeof slots[found].name, "%s", name);
        atomic_store(&slots[found].last_ms, now_ms());
        atomic_store_explicit(&slots[found].used, 1, memory_order_release);
    }
    pthread_mutex_unlock(&reg_mu);
    return found;
}

void sio_health_beat(int s) {
    if (s >= 0 && s < SIO_HEALTH_MAX_THREADS)
        atomic_store_explicit(&slots[s].last_ms, now_ms(), memory_order_relaxed);
}

void sio_health_unregister(int s) {
    if (s < 0 || s >= SIO_HEALTH_MAX_THREADS) return;
    pthread_mutex_lock(&reg_mu);
    atomic_store(&slots[s].used, 0);
    pthread_mutex_unlock(&reg_mu);
}

size_t sio_health_threads(sio_health_thread *out, size_t cap) {
    size_t n = 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&reg_mu); /* names are stable while registration waits */
    for (int i = 0; i < SIO_HEALTH_MAX_THREADS && n < cap; i++) {
        if (!atomic_load_explicit(&slots[i].used, memory_order_acquire)) continue;
        memcpy(out[n].name, slots[i].name, sizeof out[n].name);
        int64_t age = now - atomic_load_explicit(&slots[i].last_ms, memory_order_relaxed);
        out[n++].age_ms = age < 0 ? 0 : age;
    }
    pthread_mutex_unlock(&reg_mu);
    return n;
}

void sio_health_set_stall_ms(int64_t ms) {
    atomic_store(&stall_ms, ms > 0 ? ms : 1);
}

/* Dumps v (stolen) into *body; returns rc, or -1 when out of memory. */
static int finish(json_t *v, char **body, int rc) {
    *body = v ? sio_json_dump(v, NULL) : NULL;
    json_decref(v);
    return *body ? rc : -1;
}

int sio_health_live(char **body) {
    static sio_health_thread t[SIO_HEALTH_MAX_THREADS];
    static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER; /* guards t (too big for a stack) */
    pthread_mutex_lock(&t_mu);
    size_t n = sio_health_threads(t, SIO_HEALTH_MAX_THREADS);
    int64_t bound = atomic_load(&stall_ms);
    json_t *threads = json_array(), *wedged = json_array();
    for (size_t i = 0; i < n && threads && wedged; i++) {
        int ok = t[i].age_ms <= bound;
        json_array_append_new(threads, json_pack("{s:s,s:I,s:b}", "name", t[i].name, "age_ms",
                                                 (json_int_t)t[i].age_ms, "ok", ok));
        if (!ok) json_array_append_new(wedged, json_string(t[i].name));
    }
    pthread_mutex_unlock(&t_mu);
    int alive = wedged && json_array_size(wedged) == 0;
    json_t *v = threads && wedged ? json_pack("{s:s,s:I,s:o,s:o}", "status", alive ? "ok" : "wedged",
                                             "stall_ms", (json_int_t)bound, "wedged", wedged,
                                             "threads", threads)
                                  : NULL;
    if (v == NULL) json_decref(threads), json_decref(wedged);
    return finish(v, body, alive);
}

/* --- readiness ---------------------------------------------------------------*/

static const char *const item_names[SIO_READY__COUNT] = {"kafka", "workflows", "redis"};

static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER; /* guards what follows */
static int ready_ok[SIO_READY__COUNT] = {0, 0, 1};
static char ready_why[SIO_READY__COUNT][256] = {"not joined yet", "not loaded yet", ""};
static sio_ready_probe probes[SIO_READY__COUNT];
static void *probe_data[SIO_READY__COUNT];
/* Held while a probe runs, so set_probe(NULL) waits for a running one. */
static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;

void sio_health_set_ready(sio_ready_item item, int ok, const char *detail) {
    if ((unsigned)item >= SIO_READY__COUNT) return;
    pthread_mutex_lock(&ready_mu);
    ready_ok[item] = ok != 0;
    snprintf(ready_why[item], sizeof ready_why[item], "%s", detail ? detail : "");
    pthread_mutex_unlock(&ready_mu);
}

void sio_health_set_probe(sio_ready_item item, sio_ready_probe fn, void *data) {
    if ((unsigned)item >= SIO_READY__COUNT) return;
    pthread_mutex_lock(&probe_mu);
    probes[item] = fn;
    probe_data[item] = data;
    pthread_mutex_unlock(&probe_mu);
}

int sio_health_ready(char **body) {
    json_t *checks = json_object();
    int all = 1;
    pthread_mutex_lock(&probe_mu);
    for (int i = 0; i < SIO_READY__COUNT && checks; i++) {
        char why[256] = "";
        int ok;
        if (probes[i]) {
            ok = probes[i](probe_data[i], why, sizeof why);
        } else {
            pthread_mutex_lock(&ready_mu);
            ok = ready_ok[i];
            memcpy(why, ready_why[i], sizeof why);
            pthread_mutex_unlock(&ready_mu);
        }
        all &= ok != 0;
        json_t *e = json_string(why); /* NULL for bytes that are not UTF-8 */
        json_t *c = ok ? json_pack("{s:b}", "ok", 1)
                       : json_pack("{s:b,s:o}", "ok", 0, "error", e ? e : json_string("(not UTF-8)"));
        if (ok) json_decref(e);
        json_object_set_new(checks, item_names[i], c);
    }
    pthread_mutex_unlock(&probe_mu);
    json_t *v = checks ? json_pack("{s:s,s:o}", "status", all ? "ready" : "not ready", "checks", checks)
                       : NULL;
    return finish(v, body, all);
}

void sio_health_reset(void) {
    for (int i = 0; i < SIO_HEALTH_MAX_THREADS; i++) atomic_store(&slots[i].used, 0);
    atomic_store(&stall_ms, 30000);
    pthread_mutex_lock(&probe_mu);
    pthread_mutex_lock(&ready_mu);
    for (int i = 0; i < SIO_READY__COUNT; i++) probes[i] = NULL, probe_data[i] = NULL;
    ready_ok[0] = 0, ready_ok[1] = 0, ready_ok[2] = 1;
    snprintf(ready_why[0], sizeof ready_why[0], "not joined yet");
    snprintf(ready_why[1], sizeof ready_why[1], "not loaded yet");
    ready_why[2][0] = '\0';
    pthread_mutex_unlock(&ready_mu);
    pthread_mutex_unlock(&probe_mu);
}
