/*
 * watch.c - the reload watcher: one thread, one uv loop, one uv_fs_event
 * per watched directory, one debounce timer.
 *
 * The set of watches follows the trees: after any rename-class event
 * (an entry created, removed or renamed: UV_RENAME) and when a burst
 * settles, the trees are walked again; a directory without a watch gets
 * one, a watch whose directory is gone (or is now another inode under the
 * same path) is dropped.  Walking at each rename keeps a new subdirectory's
 * own later events in the same burst; walking at settle time is the safety
 * net.  Anything written into a new subdirectory before its watch exists
 * is still picked up, because the reload that follows the burst reads the
 * whole tree from disk.
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "json.h"
#include "log.h"

#define WATCH_MAX_DEPTH 16 /* below a root; deeper directories are not watched */

typedef struct wdir {
    struct wdir *next;
    sio_watch *w;
    uv_fs_event_t ev;
    char *path; /* owned */
    dev_t dev;
    ino_t ino;
    int seen; /* found by the walk in progress */
} wdir;

struct sio_watch {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    uv_thread_t thread;
    int loop_ready, wake_ready, timer_ready, started;
    char **roots; /* NULL-terminated, owned */
    sio_watch_fn on_change;
    void *ud;
    pthread_mutex_t mu; /* guards trigger, stop and stats */
    int trigger, stop;
    sio_watch_stats stats;
    wdir *dirs; /* loop thread only from here on (or the creator before start) */
    int pending;
    uint64_t burst_start;
    /* the burst's changed paths (loop thread only): owned strings */
    char *changed[SIO_WATCH_MAX_PATHS + 1];
    size_t nchanged, more;
};

static void count(sio_watch *w, unsigned long *field, unsigned long n) {
    pthread_mutex_lock(&w->mu);
    *field += n;
    pthread_mutex_unlock(&w->mu);
}

/* The log line for a watch that could not be added at run time
 * (typically ENOSPC: the inotify watch limit). */
static void log_watch_error(const char *path, const char *why) {
    sio_log_json(SIO_LOG_ERROR, "cannot watch",
                 json_pack("{s:s,s:o}", "error", why, "path", sio_json_text(path, strlen(path))));
}

static void on_dir_closed(uv_handle_t *h) {
    wdir *d = h->data;
    free(d->path);
    free(d);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

/* Makes sure path (a directory, st its stat) has a watch and marks it seen.
 * Fails (filling err) when the watch cannot be added. */
static int watch_dir(sio_watch *w, const char *path, const struct stat *st, sio_err *err) {
    for (wdir *d = w->dirs; d; d = d->next) {
        if (d->dev == st->st_dev && d->ino == st->st_ino && strcmp(d->path, path) == 0) {
            d->seen = 1;
            return 0;
        }
    }
    wdir *d = calloc(1, sizeof *d);
    if (d == NULL || (d->path = strdup(path)) == NULL) {
        free(d);
        count(w, &w->stats.errors, 1);
        return sio_err_set(err, SIO_E_NOMEM, "watch: out of memory");
    }
    d->w = w;
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    uv_fs_event_init(&w->loop, &d->ev);
    d->ev.data = d;
    int r = uv_fs_event_start(&d->ev, on_fs_event, path, 0);
    if (r != 0) {
        uv_close((uv_handle_t *)&d->ev, on_dir_closed);
        count(w, &w->stats.errors, 1);
        if (err == NULL) log_watch_error(path, uv_strerror(r));
        return sio_err_set(err, SIO_E_IO, "watch: %s: %s", path, uv_strerror(r));
    }
    d->seen = 1;
    d->next = w->dirs;
    w->dirs = d;
    pthread_mutex_lock(&w->mu);
    w->stats.dirs++;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Watches the directory in path[0..len) and the directories below it.
 * path is a PATH_MAX buffer, restored on return.  Only a root's failure is
 * an error; below a root, what cannot be watched is counted and skipped. */
static int walk(sio_watch *w, char *path, size_t len, int depth, sio_err *err) {
    struct stat st;
    int root = depth == 0;
    if ((root ? stat(path, &st) : lstat(path, &st)) != 0) {
        if (!root) return 0; /* gone meanwhile */
        return sio_err_set(err, SIO_E_INVAL, "watch: %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!root) return 0; /* a symlink, or replaced meanwhile */
        return sio_err_set(err, SIO_E_INVAL, "watch: %s: not a directory", path);
    }
    if (watch_dir(w, path, &st, err) != 0 && root) return -1;
    if (depth >= WATCH_MAX_DEPTH) return 0;
    DIR *dp = opendir(path);
    if (dp == NULL) return 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL;) {
        if (e->d_name[0] == '.') continue; /* ".", "..", hidden */
        if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
        size_t n = strlen(e->d_name);
        if (len + 1 + n >= PATH_MAX) continue;
        path[len] = '/';
        memcpy(path + len + 1, e->d_name, n + 1);
        walk(w, path, len + 1 + n, depth + 1, NULL);
        path[len] = '\0';
    }
    closedir(dp);
    return 0;
}

/* Brings the watches in line with the trees on disk: adds the missing,
 * drops the stale.  Returns -1 when a root cannot be watched. */
static int sync_tree(sio_watch *w, sio_err *err) {
    char path[PATH_MAX];
    int rc = 0;
    for (wdir *d = w->dirs; d; d = d->next) d->seen = 0;
    for (char **r = w->roots; *r; r++) {
        size_t len = strlen(*r);
        if (len >= sizeof path) {
            rc = sio_err_set(err, SIO_E_INVAL, "watch: path too long: %.200s", *r);
            continue;
        }
        memcpy(path, *r, len + 1);
        if (walk(w, path, len, 0, err) != 0) rc = -1;
    }
    size_t dropped = 0;
    for (wdir **pp = &w->dirs; *pp;) {
        wdir *d = *pp;
        if (d->seen) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        uv_close((uv_handle_t *)&d->ev, on_dir_closed);
        dropped++;
    }
    pthread_mutex_lock(&w->mu);
    w->stats.dirs -= dropped;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static void forget_changes(sio_watch *w) {
    for (size_t i = 0; i < w->nchanged; i++) free(w->changed[i]);
    w->nchanged = w->more = 0;
    w->changed[0] = NULL;
}

/* Notes dir/name as changed in this burst (once). */
static void note_path(sio_watch *w, const char *dir, const char *name) {
    if (name == NULL || *name == '\0') return;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) return;
    for (size_t i = 0; i < w->nchanged; i++)
        if (strcmp(w->changed[i], path) == 0) return;
    char *copy = w->nchanged < SIO_WATCH_MAX_PATHS ? strdup(path) : NULL;
    if (copy == NULL) {
        w->more++;
        return;
    }
    w->changed[w->nchanged++] = copy;
    w->changed[w->nchanged] = NULL;
}

/* A burst went quiet (or hit the maximum delay): refresh the watches and
 * report it.  bursts is counted after on_change returns, so whoever sees
 * the count knows the callback for that burst has run. */
static void on_settle(uv_timer_t *t) {
    sio_watch *w = t->data;
    w->pending = 0;
    sync_tree(w, NULL);
    w->on_change(w->ud, (const char *const *)w->changed, w->nchanged, w->more);
    forget_changes(w);
    count(w, &w->stats.bursts, 1);
}

/* Restarts the debounce: on_settle runs SIO_WATCH_QUIET_MS after the last
 * change, but no later than SIO_WATCH_MAX_DELAY_MS after the first one. */
static void note_change(sio_watch *w) {
    uv_update_time(&w->loop);
    uint64_t now = uv_now(&w->loop);
    if (!w->pending) {
        w->pending = 1;
        w->burst_start = now;
    }
    uint64_t due = now + SIO_WATCH_QUIET_MS;
    uint64_t cap = w->burst_start + SIO_WATCH_MAX_DELAY_MS;
    if (due > cap) due = cap;
    uv_timer_start(&w->timer, on_settle, due > now ? due - now : 0, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    wdir *d = h->data;
    sio_watch *w = d->w;
    count(w, status < 0 ? &w->stats.errors : &w->stats.events, 1);
    if (status >= 0) note_path(w, d->path, filename);
    if (events & UV_RENAME) sync_tree(w, NULL); /* may close h: fine inside its callback */
    note_change(w);
}

/* Closes every handle; the loop then ends by itself. */
static void close_all(sio_watch *w) {
    while (w->dirs) {
        wdir *d = w->dirs;
        w->dirs = d->next;
        uv_close((uv_handle_t *)&d->ev, on_dir_closed);
    }
    pthread_mutex_lock(&w->mu);
    w->stats.dirs = 0;
    pthread_mutex_unlock(&w->mu);
    if (w->timer_ready && !uv_is_closing((uv_handle_t *)&w->timer))
        uv_close((uv_handle_t *)&w->timer, NULL);
    if (w->wake_ready && !uv_is_closing((uv_handle_t *)&w->wake))
        uv_close((uv_handle_t *)&w->wake, NULL);
}

static void on_wake(uv_async_t *a) {
    sio_watch *w = a->data;
    pthread_mutex_lock(&w->mu);
    int stop = w->stop, trig = w->trigger;
    w->trigger = 0;
    if (trig && !stop) w->stats.events++;
    pthread_mutex_unlock(&w->mu);
    if (stop) close_all(w);
    else if (trig) note_change(w);
}

static void thread_main(void *arg) {
    sio_watch *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

sio_watch *sio_watch_create(const char *const *dirs, sio_watch_fn on_change, void *ud,
                            sio_err *err) {
    if (dirs == NULL || dirs[0] == NULL || on_change == NULL) {
        sio_err_set(err, SIO_E_INVAL, "watch: no directory or no callback");
        return NULL;
    }
    sio_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "watch: out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    w->on_change = on_change;
    w->ud = ud;
    size_t n = 0;
    while (dirs[n]) n++;
    w->roots = calloc(n + 1, sizeof *w->roots);
    for (size_t i = 0; w->roots && i < n; i++) {
        if ((w->roots[i] = strdup(dirs[i])) == NULL) goto nomem;
    }
    if (w->roots == NULL) goto nomem;
    int r = uv_loop_init(&w->loop);
    if (r != 0) {
        sio_err_set(err, SIO_E_IO, "watch: loop: %s", uv_strerror(r));
        goto fail;
    }
    w->loop_ready = 1;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    w->wake_ready = 1;
    uv_timer_init(&w->loop, &w->timer);
    w->timer.data = w;
    w->timer_ready = 1;
    if (sync_tree(w, err) != 0) goto fail;
    if (uv_thread_create(&w->thread, thread_main, w) != 0) {
        sio_err_set(err, SIO_E_NOMEM, "watch: cannot start a thread");
        goto fail;
    }
    w->started = 1;
    return w;
nomem:
    sio_err_set(err, SIO_E_NOMEM, "watch: out of memory");
fail:
    sio_watch_destroy(w);
    return NULL;
}

void sio_watch_trigger(sio_watch *w) {
    pthread_mutex_lock(&w->mu);
    w->trigger = 1;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

void sio_watch_get_stats(sio_watch *w, sio_watch_stats *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

void sio_watch_destroy(sio_watch *w) {
    if (w == NULL) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_mutex_unlock(&w->mu);
        uv_async_send(&w->wake);
        uv_thread_join(&w->thread);
    } else if (w->loop_ready) {
        close_all(w);
    }
    if (w->loop_ready) {
        uv_run(&w->loop, UV_RUN_DEFAULT); /* let closing handles finish */
        uv_loop_close(&w->loop);
    }
    forget_changes(w);
    for (char **r = w->roots; r && *r; r++) free(*r);
    free(w->roots);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
