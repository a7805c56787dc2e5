/*
 * test_reload.c - hot reload end to end, without Kafka or Redis: a watcher
 * on a temporary workflows/ and lua/ asks two running workers to reload
 * while commands are in flight.
 *
 * Waiting is by content, not by time: after each rewrite the test sends
 * quick probe commands to each worker until one answers with the version
 * just written, so every assertion holds however slow the machine is.
 * Polling loops only have a (generous) timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "watch.h"
#include "json.h"
#include "outcome.h"
#include "worker.h"

#define TIMEOUT_MS 600000 /* a bound for a broken test, not a speed assumption */

static char root[64], wfdir[96], luadir[96];

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Polls cond(arg) every 5 ms; fails the test after TIMEOUT_MS. */
static void wait_until(int (*cond)(void *), void *arg, const char *what) {
    long end = now_ms() + TIMEOUT_MS;
    while (!cond(arg)) {
        if (now_ms() > end) fail_msg("timed out waiting for %s", what);
        sleep_ms(5);
    }
}

/* --- files ----------------------------------------------------------------*/

static void path_in(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Writes the workflow `ver` at version v: step a echoes mkA-v-, step wait
 * (only when attrs have a url) holds the command on an HTTP request, step
 * b echoes mkB-v-.  A command that finishes on one version shows the same
 * v in both markers. */
static void ver_text(char *buf, size_t size, int v, const char *guard) {
    snprintf(buf, size,
             "# version %d\n"
             "intent: ver\n"
             "steps:\n"
             "  - id: a\n"
             "    tool:\n"
             "      name: echo\n"
             "      args:\n"
             "        v: \"mkA-%d-\"\n"
             "  - id: wait\n"
             "    guard: \"%s\"\n"
             "    tool:\n"
             "      name: http\n"
             "      args:\n"
             "        url: \"${A.url}\"\n"
             "  - id: b\n"
             "    tool:\n"
             "      name: echo\n"
             "      args:\n"
             "        v: \"mkB-%d-\"\n",
             v, v, guard, v);
}

/* In place: truncate, write half, flush, write the rest (a reader may see
 * the partial file; the debounce hides it unless the writer pauses longer
 * than SIO_WATCH_QUIET_MS, and then the partial file is rejected). */
static void write_in_place(const char *dir, const char *name, const char *text) {
    char path[256];
    path_in(path, sizeof path, dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    size_t n = strlen(text), half = n / 2;
    assert_int_equal(fwrite(text, 1, half, f), half);
    fflush(f);
    assert_int_equal(fwrite(text + half, 1, n - half, f), n - half);
    assert_int_equal(fclose(f), 0);
}

/* As editors do: write a hidden temporary file, then rename it over. */
static void write_by_rename(const char *dir, const char *name, const char *text) {
    char tmp[256], path[256], tname[128];
    snprintf(tname, sizeof tname, ".%s.tmp", name);
    path_in(tmp, sizeof tmp, dir, tname);
    path_in(path, sizeof path, dir, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void write_ver(int v, int in_place) {
    char text[1024];
    ver_text(text, sizeof text, v, "A.url");
    if (in_place) write_in_place(wfdir, "ver.yaml", text);
    else write_by_rename(wfdir, "ver.yaml", text);
}

static int make_root(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/sio-test-reload.XXXXXX");
    assert_non_null(mkdtemp(root));
    path_in(wfdir, sizeof wfdir, root, "workflows");
    path_in(luadir, sizeof luadir, root, "lua");
    assert_int_equal(mkdir(wfdir, 0700), 0);
    assert_int_equal(mkdir(luadir, 0700), 0);
    write_ver(0, 1);
    return 0;
}

static int remove_root(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd);
}

/* --- workers and commands -------------------------------------------------*/

/* What on_reload saw, per test. */
typedef struct reloads {
    pthread_mutex_t mu;
    int n_ok, n_rejected;
    char last_errors[2048];
} reloads;

static void on_reload(void *ud, int worker_id, int ok, long version, const char *errors) {
    (void)worker_id;
    (void)version;
    reloads *r = ud;
    pthread_mutex_lock(&r->mu);
    if (ok) {
        r->n_ok++;
    } else {
        r->n_rejected++;
        snprintf(r->last_errors, sizeof r->last_errors, "%s", errors ? errors : "(null)");
    }
    pthread_mutex_unlock(&r->mu);
}

/* Workers may call the test's server (set before they are created). */
static char allow_entry[32];

static sio_worker *new_worker(int id, reloads *r) {
    const char *allow[] = {allow_entry, NULL};
    sio_worker_cfg cfg = {.id = id, .workflows_dir = wfdir, .lua_dir = luadir,
                          .http_allow = allow, .http_timeout_ms = 3600000, /* held */
                          .limits = {.deadline_ms = 3600000},
                          .on_reload = on_reload, .reload_data = r};
    sio_err err;
    sio_worker *w = sio_worker_create(&cfg, &err);
    if (w == NULL) fail_msg("worker: %s", err.msg);
    assert_null(sio_worker_load_errors(w));
    assert_int_equal(sio_worker_start(w, &err), 0);
    return w;
}

typedef struct workers {
    sio_worker *w[2];
    int n;
} workers;

/* The watcher's callback: every settled burst reloads every worker. */
static void reload_all(void *ud, const char *const *paths, size_t npaths, size_t more) {
    (void)paths, (void)npaths, (void)more;
    workers *ws = ud;
    for (int i = 0; i < ws->n; i++) sio_worker_reload(ws->w[i]);
}

static sio_watch *new_watch(sio_watch_fn fn, void *ud) {
    const char *dirs[] = {wfdir, luadir, NULL};
    sio_err err;
    sio_watch *wt = sio_watch_create(dirs, fn, ud, &err);
    if (wt == NULL) fail_msg("watch: %s", err.msg);
    return wt;
}

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
    char first_failure[512];
} tally;

typedef struct rjob {
    sio_run_job job;
    tally *t;
    int wi;                 /* worker index, for `confirmed` */
    json_t *attrs;
    int done, ok, a, b;     /* markers, -1 when absent */
    int confirmed_at_done;  /* confirmed[wi] when it finished */
} rjob;

/* The version a probe has seen live on each worker (set by the test). */
static pthread_mutex_t confirmed_mu = PTHREAD_MUTEX_INITIALIZER;
static int confirmed[2];

static void set_confirmed(int wi, int v) {
    pthread_mutex_lock(&confirmed_mu);
    confirmed[wi] = v;
    pthread_mutex_unlock(&confirmed_mu);
}

/* The number after tag in res, or -1. */
static int marker(const char *res, size_t len, const char *tag) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s", (int)len, res);
    const char *p = strstr(buf, tag);
    int v;
    if (p == NULL || sscanf(p + strlen(tag), "%d", &v) != 1) return -1;
    return v;
}

static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    rjob *j = ud;
    tally *t = j->t;
    char res[4096];
    outcome_text(result, e, res, sizeof res);
    size_t len = strlen(res);
    int ok = result != NULL;
    json_decref(result);
    json_decref(j->attrs);
    j->attrs = NULL;
    j->ok = ok;
    j->a = marker(res, len, "mkA-");
    j->b = marker(res, len, "mkB-");
    pthread_mutex_lock(&confirmed_mu);
    j->confirmed_at_done = confirmed[j->wi];
    pthread_mutex_unlock(&confirmed_mu);
    pthread_mutex_lock(&t->mu);
    j->done = 1;
    t->done++;
    t->ok += ok;
    if (!ok && t->first_failure[0] == '\0')
        snprintf(t->first_failure, sizeof t->first_failure, "%.*s", (int)len, res);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void wait_done(tally *t, int n) {
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += TIMEOUT_MS / 1000;
    pthread_mutex_lock(&t->mu);
    while (t->done < n) {
        if (pthread_cond_timedwait(&t->cv, &t->mu, &end) == ETIMEDOUT) {
            int d = t->done;
            pthread_mutex_unlock(&t->mu);
            fail_msg("timed out: %d of %d commands done", d, n);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

static void submit(sio_worker *w, int wi, rjob *j, tally *t, const char *attrs) {
    j->t = t;
    j->wi = wi;
    j->attrs = sio_json_parse(attrs, strlen(attrs), NULL);
    assert_non_null(j->attrs);
    j->job = (sio_run_job){.workflow = "ver", .attrs = j->attrs, .cbs = {.done = on_done},
                           .ud = j};
    sio_worker_submit_run(w, &j->job);
}

/* A quick command (no url: the wait step is dropped); returns its marker
 * and checks it succeeded on one version. */
static int probe(sio_worker *w) {
    tally t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    rjob j = {0};
    submit(w, 0, &j, &t, "{}");
    wait_done(&t, 1);
    if (!j.ok) fail_msg("probe failed: %s", t.first_failure);
    assert_int_equal(j.a, j.b);
    return j.a;
}

/* Probes worker wi until it serves version v, then records it. */
static void wait_version(sio_worker *w, int wi, int v) {
    long end = now_ms() + TIMEOUT_MS;
    int got;
    while ((got = probe(w)) != v) {
        if (now_ms() > end) fail_msg("worker serves version %d, expected %d", got, v);
        sleep_ms(5);
    }
    set_confirmed(wi, v);
}

/* --- tests ----------------------------------------------------------------*/

/* 1,000 commands on 2 workers while the workflow is rewritten 20 times:
 * all succeed, each on one version.  Each batch's first third is held at
 * the test server's gate (inside the command, on the old version) until
 * the new version is live on both workers, so those commands certainly
 * run across a reload; the last third starts on the new version. */
static void thousand_commands_through_twenty_rewrites(void **state) {
    (void)state;
    enum { N = 1000, REWRITES = 20, BATCH = N / REWRITES };
    set_confirmed(0, 0);
    set_confirmed(1, 0);
    test_httpd *h = test_httpd_start(0);
    assert_non_null(h);
    snprintf(allow_entry, sizeof allow_entry, "127.0.0.1:%d", test_httpd_port(h));
    reloads r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    workers ws = {.w = {new_worker(1, &r), new_worker(2, &r)}, .n = 2};
    sio_watch *wt = new_watch(reload_all, &ws);
    tally t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    rjob *jobs = calloc(N, sizeof *jobs);
    assert_non_null(jobs);
    char attrs[128];
    snprintf(attrs, sizeof attrs, "{\"url\":\"http://127.0.0.1:%d/wait\"}", test_httpd_port(h));
    int next = 0;
    for (int v = 1; v <= REWRITES; v++) {
        /* A third of the batch starts on the live version and waits at the
         * gate, a third races the reload, a third starts once the new
         * version is live; then the gate lets them all finish. */
        test_httpd_hold(h);
        for (int i = 0; i < BATCH / 3; i++, next++)
            submit(ws.w[next % 2], next % 2, &jobs[next], &t, attrs);
        if (test_httpd_wait(h, TEST_HTTPD_HELD, BATCH / 3, TIMEOUT_MS) < BATCH / 3)
            fail_msg("rewrite %d: the first third did not reach the server", v);
        write_ver(v, v % 3 == 0); /* every third rewrite in place, else by rename */
        for (int i = BATCH / 3; i < 2 * BATCH / 3; i++, next++)
            submit(ws.w[next % 2], next % 2, &jobs[next], &t, attrs);
        for (int i = 0; i < 2; i++) wait_version(ws.w[i], i, v);
        for (int i = 2 * BATCH / 3; i < BATCH; i++, next++)
            submit(ws.w[next % 2], next % 2, &jobs[next], &t, attrs);
        test_httpd_open(h);
        wait_done(&t, next);
    }
    assert_int_equal(next, N);
    wait_done(&t, N);
    if (t.ok != N) fail_msg("%d of %d failed; first: %s", N - t.ok, N, t.first_failure);

    int seen[REWRITES + 1] = {0}, distinct = 0, stale = 0;
    for (int i = 0; i < N; i++) {
        rjob *j = &jobs[i];
        if (j->a < 0 || j->a > REWRITES || j->a != j->b)
            fail_msg("command %d: markers %d/%d", i, j->a, j->b);
        if (!seen[j->a]++) distinct++;
        /* Finished on version a after a probe had seen a newer one live
         * on the same worker: it ran across a reload. */
        if (j->a < j->confirmed_at_done) stale++;
    }
    assert_true(distinct >= 2);
    assert_true(stale >= REWRITES * (BATCH / 3)); /* the held thirds ran across reloads */
    assert_true(stale <= N - REWRITES * (BATCH - 2 * BATCH / 3)); /* the last thirds did not */
    assert_true(seen[REWRITES] > 0);

    sio_watch_stats st;
    sio_watch_get_stats(wt, &st);
    assert_true(st.bursts >= REWRITES);
    for (int i = 0; i < 2; i++) {
        unsigned long ok = 0, rejected = 0;
        sio_worker_reload_stats(ws.w[i], &ok, &rejected);
        assert_true(ok >= REWRITES);
        assert_true(ok <= st.bursts);
        /* Only a half-written file (an in-place rewrite whose writer paused
         * longer than the debounce) is ever rejected - it keeps the
         * previous version, and the finished file goes live after it: at
         * most its truncated and its half state, for 6 in-place rewrites. */
        assert_true(rejected <= 2 * (REWRITES / 3));
    }
    sio_watch_destroy(wt);
    for (int i = 0; i < 2; i++) sio_worker_destroy(ws.w[i]);
    test_httpd_stop(h);
    free(jobs);
    printf("# %d commands, %d versions seen, %d finished on an older version, %lu bursts\n", N,
           distinct, stale, st.bursts);
}

typedef struct rejected_at_least {
    reloads *r;
    int n;
} rejected_at_least;

static int has_rejections(void *arg) {
    rejected_at_least *x = arg;
    pthread_mutex_lock(&x->r->mu);
    int ok = x->r->n_rejected >= x->n;
    pthread_mutex_unlock(&x->r->mu);
    return ok;
}

/* Fails unless errors names ver.yaml with a line number ("ver.yaml:N"). */
static void assert_file_and_line(const char *errors) {
    const char *p = strstr(errors, "ver.yaml:");
    if (p == NULL || p[9] < '0' || p[9] > '9') fail_msg("no file:line in: %s", errors);
}

/* A bad guard, then a YAML syntax error: both rejected with file and line,
 * the previous version serving meanwhile; then a valid rewrite goes live. */
static void invalid_rewrites_keep_the_previous_version(void **state) {
    (void)state;
    reloads r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    workers ws = {.w = {new_worker(1, &r)}, .n = 1};
    sio_watch *wt = new_watch(reload_all, &ws);
    assert_int_equal(probe(ws.w[0]), 0);

    char text[1024];
    ver_text(text, sizeof text, 1, "A.url ==");
    write_by_rename(wfdir, "ver.yaml", text);
    rejected_at_least one = {&r, 1};
    wait_until(has_rejections, &one, "the bad guard to be rejected");
    pthread_mutex_lock(&r.mu);
    assert_file_and_line(r.last_errors);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(probe(ws.w[0]), 0);

    write_by_rename(wfdir, "ver.yaml", "intent: ver\nsteps:\n  - id: a\n    tool: [echo\n");
    rejected_at_least two = {&r, 2};
    wait_until(has_rejections, &two, "the YAML error to be rejected");
    pthread_mutex_lock(&r.mu);
    assert_file_and_line(r.last_errors);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(probe(ws.w[0]), 0);

    write_ver(2, 0);
    wait_version(ws.w[0], 0, 2);
    unsigned long ok = 0, rejected = 0;
    sio_worker_reload_stats(ws.w[0], &ok, &rejected);
    assert_true(ok >= 1);
    assert_int_equal(rejected, 2);
    sio_watch_destroy(wt);
    sio_worker_destroy(ws.w[0]);
}

typedef struct counter {
    sio_watch *wt;
    unsigned long bursts;
    size_t dirs;
} counter;

static void ignore_change(void *ud, const char *const *paths, size_t npaths, size_t more) {
    (void)ud, (void)paths, (void)npaths, (void)more;
}

static int bursts_reached(void *arg) {
    counter *c = arg;
    sio_watch_stats st;
    sio_watch_get_stats(c->wt, &st);
    return st.bursts >= c->bursts && (c->dirs == 0 || st.dirs == c->dirs);
}

static unsigned long bursts_now(sio_watch *wt) {
    sio_watch_stats st;
    sio_watch_get_stats(wt, &st);
    return st.bursts;
}

/* mkdir under lua/ after start adds a watch; a file written in the new
 * directory (seen only through that watch) is a change; a removed
 * directory loses its watch.  Each step waits for a burst after the ones
 * counted before it (a slow machine may split a step's events into more
 * bursts; never fewer). */
static void subdirectories_created_later_are_watched(void **state) {
    (void)state;
    sio_watch *wt = new_watch(ignore_change, NULL);
    sio_watch_stats st;
    sio_watch_get_stats(wt, &st);
    assert_int_equal(st.dirs, 2);
    assert_int_equal(st.bursts, 0);

    char sub[160], deep[200], file[256];
    path_in(sub, sizeof sub, luadir, "tools");
    assert_int_equal(mkdir(sub, 0700), 0);
    counter c = {wt, 1, 3};
    wait_until(bursts_reached, &c, "the mkdir burst and the new watch");
    c = (counter){wt, bursts_now(wt) + 1, 3};
    write_in_place(sub, "mark.lua", "return { fn = function(args) return 'x' end }\n");
    wait_until(bursts_reached, &c, "a change inside the new subdirectory");

    /* Two levels at once: the inner one is found by walking the new one. */
    c = (counter){wt, bursts_now(wt) + 1, 5};
    path_in(deep, sizeof deep, sub, "a");
    assert_int_equal(mkdir(deep, 0700), 0);
    path_in(deep, sizeof deep, sub, "a/b");
    assert_int_equal(mkdir(deep, 0700), 0);
    wait_until(bursts_reached, &c, "watches on a/ and a/b/");
    c = (counter){wt, bursts_now(wt) + 1, 5};
    write_in_place(deep, "m.lua", "return {}\n");
    wait_until(bursts_reached, &c, "a change two levels down");

    c = (counter){wt, bursts_now(wt) + 1, 4};
    path_in(file, sizeof file, deep, "m.lua");
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(deep), 0);
    wait_until(bursts_reached, &c, "the removed directory's watch to go");
    sio_watch_destroy(wt);
}

/* A watch callback the test can hold: while held, the watcher's thread is
 * inside on_change and cannot see anything else. */
typedef struct held_cb {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold, inside, calls;
} held_cb;

static void held_change(void *ud, const char *const *paths, size_t npaths, size_t more) {
    (void)paths, (void)npaths, (void)more;
    held_cb *h = ud;
    pthread_mutex_lock(&h->mu);
    h->calls++;
    h->inside = 1;
    pthread_cond_broadcast(&h->cv);
    while (h->hold) pthread_cond_wait(&h->cv, &h->mu);
    h->inside = 0;
    pthread_mutex_unlock(&h->mu);
}

/* Triggers (SIGHUP) share the debounce: several that arrive while a burst
 * is being handled are one more burst, not several.  The first burst's
 * callback is held while the five triggers arrive, so they arrive
 * together on any machine. */
static void triggers_are_debounced(void **state) {
    (void)state;
    held_cb h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .hold = 1};
    sio_watch *wt = new_watch(held_change, &h);
    sio_watch_trigger(wt);
    pthread_mutex_lock(&h.mu);
    while (!h.inside) pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    for (int i = 0; i < 5; i++) sio_watch_trigger(wt);
    pthread_mutex_lock(&h.mu);
    h.hold = 0;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    counter c = {wt, 2, 0};
    wait_until(bursts_reached, &c, "the burst of the five triggers");
    sio_watch_stats st;
    sio_watch_get_stats(wt, &st);
    assert_int_equal(st.bursts, 2);
    assert_int_equal(st.events, 2);
    sio_watch_trigger(wt);
    c = (counter){wt, 3, 0};
    wait_until(bursts_reached, &c, "a later trigger's own burst");
    pthread_mutex_lock(&h.mu);
    assert_int_equal(h.calls, 3);
    pthread_mutex_unlock(&h.mu);
    sio_watch_destroy(wt);
}

static void create_rejects_a_missing_directory(void **state) {
    (void)state;
    char missing[160];
    path_in(missing, sizeof missing, root, "nope");
    const char *dirs[] = {wfdir, missing, NULL};
    sio_err err;
    assert_null(sio_watch_create(dirs, ignore_change, NULL, &err));
    assert_int_equal(err.code, SIO_E_INVAL);
    assert_non_null(strstr(err.msg, "nope"));
    const char *none[] = {NULL};
    assert_null(sio_watch_create(none, ignore_change, NULL, &err));
    sio_watch_destroy(NULL);
}

/* What the watcher's callback was told, per burst (any thread). */
typedef struct seen_paths {
    pthread_mutex_t mu;
    char names[8][256];
    size_t n, bursts;
} seen_paths;

static void record_paths(void *ud, const char *const *paths, size_t npaths, size_t more) {
    seen_paths *sp = ud;
    pthread_mutex_lock(&sp->mu);
    for (size_t i = 0; i < npaths && sp->n < 8; i++)
        snprintf(sp->names[sp->n++], sizeof sp->names[0], "%s", paths[i]);
    (void)more;
    sp->bursts++;
    pthread_mutex_unlock(&sp->mu);
}

static int path_seen(void *arg) {
    void **a = arg;
    seen_paths *sp = a[0];
    int found = 0;
    pthread_mutex_lock(&sp->mu);
    for (size_t i = 0; i < sp->n; i++) found |= strcmp(sp->names[i], a[1]) == 0;
    pthread_mutex_unlock(&sp->mu);
    return found;
}

/* The burst names the files that changed (the reload's log line lists
 * them), each once however many events it made. */
static void a_burst_names_the_changed_files(void **state) {
    (void)state;
    seen_paths sp = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sio_watch *wt = new_watch(record_paths, &sp);
    write_in_place(wfdir, "named.yaml", "intent: named\nsteps: []\n");
    char want[256];
    path_in(want, sizeof want, wfdir, "named.yaml");
    void *arg[2] = {&sp, want};
    wait_until(path_seen, arg, "a burst naming workflows/named.yaml");
    sio_watch_destroy(wt);
    size_t times = 0;
    for (size_t i = 0; i < sp.n; i++) times += strcmp(sp.names[i], want) == 0;
    assert_true(times >= 1);
    assert_true(times <= sp.bursts); /* once per burst, whatever the events */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(thousand_commands_through_twenty_rewrites, make_root,
                                        remove_root),
        cmocka_unit_test_setup_teardown(invalid_rewrites_keep_the_previous_version, make_root,
                                        remove_root),
        cmocka_unit_test_setup_teardown(subdirectories_created_later_are_watched, make_root,
                                        remove_root),
        cmocka_unit_test_setup_teardown(triggers_are_debounced, make_root, remove_root),
        cmocka_unit_test_setup_teardown(a_burst_names_the_changed_files, make_root, remove_root),
        cmocka_unit_test_setup_teardown(create_rejects_a_missing_directory, make_root,
                                        remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
