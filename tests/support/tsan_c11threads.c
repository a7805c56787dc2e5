/*
 * tsan_c11threads.c - C11 threads (threads.h) routed through pthreads, for
 * ThreadSanitizer builds only (tests/CMakeLists.txt links it into the
 * tests when SIO_TSAN is on).
 *
 * Debian's librdkafka creates its threads and locks its queues with glibc's
 * C11 threads, which call glibc's pthread internals directly.  GCC 12's
 * ThreadSanitizer intercepts pthread_create, pthread_mutex_lock, ... but
 * not thrd_create and friends, so it knows nothing of librdkafka's threads
 * (it crashes in the first malloc one makes) nor of the locks that hand our
 * data (delivery-report contexts, messages) from thread to thread (it would
 * report races that are not there).  Defining the C11 functions here, in
 * the executable, makes the dynamic linker bind librdkafka to these, which
 * call the intercepted pthread functions.  glibc's mtx_t and cnd_t are
 * unions holding a pthread_mutex_t and a pthread_cond_t, and thrd_t is a
 * pthread_t, so the casts are exact.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

static int result(int rc) {
    return rc == 0 ? thrd_success : rc == ENOMEM ? thrd_nomem : rc == EBUSY ? thrd_busy
                                  : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

typedef struct start {
    thrd_start_t fn;
    void *arg;
} start;

static void *run(void *p) {
    start s = *(start *)p;
    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
    start *s = malloc(sizeof *s);
    if (s == NULL) return thrd_nomem;
    s->fn = fn, s->arg = arg;
    int rc = pthread_create((pthread_t *)thr, NULL, run, s);
    if (rc != 0) free(s);
    return result(rc);
}

int thrd_join(thrd_t thr, int *res) {
    void *r = NULL;
    int rc = pthread_join((pthread_t)thr, &r);
    if (rc == 0 && res) *res = (int)(intptr_t)r;
    return result(rc);
}

int thrd_detach(thrd_t thr) {
    return result(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return result(rc);
}

int mtx_lock(mtx_t *m) {
    return result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m) {
    return result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict until) {
    return result(pthread_mutex_timedlock((pthread_mutex_t *)m, until));
}

int mtx_unlock(mtx_t *m) {
    return result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m) {
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c) {
    return result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c) {
    return result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c) {
    return result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m) {
    return result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict until) {
    return result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, until));
}

void cnd_destroy(cnd_t *c) {
    pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void)) {
    pthread_once((pthread_once_t *)flag, fn);
}
