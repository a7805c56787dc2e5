/*
 * health.h - liveness (heartbeats of the loop threads) and readiness.
 *
 * Liveness.  Every thread that runs a loop (the consumer, the producer's
 * poller, each worker's uv loop) registers once and beats at least once
 * per turn of its loop: one relaxed atomic store of the monotonic clock.
 * A thread that has not beaten for longer than the stall bound
 * (OPS_STALL_TIMEOUT) is wedged - a C call stuck, a script spinning on the
 * loop - and /healthz answers 503 naming it.  A thread that stops on
 * purpose unregisters first.
 *
 * Readiness.  /readyz is 200 only when every check passes: the consumer
 * joined its group (partitions assigned, possibly none when the group has
 * more members than partitions), the workflow set is loaded with at least
 * one workflow, and Redis answers (a probe the service registers; the ops
 * thread runs it when asked, so it may block briefly).
 *
 * Threads: beat from the registered thread; everything else from any
 * thread.
 */
#ifndef SIO_HEALTH_H
#define SIO_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#define SIO_HEALTH_MAX_THREADS 1040 /* WORKER_COUNT's maximum + the service's */

/* Registers a loop thread named name (copied, at most 31 bytes kept) and
 * beats once.  Returns its slot (>= 0), or -1 when every slot is taken
 * (the thread is then not watched). */
int sio_health_register(const char *name);

/* The thread's loop made progress.  slot < 0 is ignored. */
void sio_health_beat(int slot);

/* The thread stops on purpose: no longer watched.  slot < 0 is ignored. */
void sio_health_unregister(int slot);

typedef struct sio_health_thread {
    char name[32];
    int64_t age_ms; /* since its last beat */
} sio_health_thread;

/* Copies up to cap registered threads into out; returns how many. */
size_t sio_health_threads(sio_health_thread *out, size_t cap);

/* The stall bound in ms (default 30000). */
void sio_health_set_stall_ms(int64_t ms);

/* Writes the liveness report as JSON into *body (malloc'd, caller frees):
 * {"status":"ok"|"wedged","stall_ms":N,"threads":[{"name","age_ms","ok"}]}.
 * Returns 1 when every thread is alive, 0 when one is wedged, -1 when out
 * of memory (*body NULL). */
int sio_health_live(char **body);

/* --- readiness -----------------------------------------------------------*/

typedef enum sio_ready_item {
    SIO_READY_KAFKA,     /* group joined (an assignment, maybe empty) */
    SIO_READY_WORKFLOWS, /* a workflow set with at least one workflow */
    SIO_READY_REDIS,     /* Redis answers (the probe, when one is set) */
    SIO_READY__COUNT
} sio_ready_item;

/* Sets an item's state; detail (copied, may be NULL) says why when not ok. */
void sio_health_set_ready(sio_ready_item item, int ok, const char *detail);

/* A probe run by sio_health_ready for item instead of its stored state:
 * returns 1 when ok, else 0 with a reason written into why (size n).
 * fn NULL removes it.  data is borrowed; clear the probe before it goes. */
typedef int (*sio_ready_probe)(void *data, char *why, size_t n);
void sio_health_set_probe(sio_ready_item item, sio_ready_probe fn, void *data);

/* Runs the checks: 1 when ready, 0 when not, -1 out of memory; *body as
 * {"status":"ready"|"not ready","checks":{"kafka":{"ok":true},
 * "redis":{"ok":false,"error":"..."},...}} (malloc'd, caller frees). */
int sio_health_ready(char **body);

/* Test support: forgets every thread, state and probe. */
void sio_health_reset(void);

#endif
