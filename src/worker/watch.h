/*
 * watch.h - the reload watcher: inotify (libuv's uv_fs_event) on directory
 * trees, debounced, on a thread of its own.
 *
 * Linux inotify is not recursive, so the watcher keeps one watch per
 * directory of each tree and adds a watch whenever a subdirectory appears
 * (and drops the watch of one that went away).  Events are debounced: the
 * callback runs once per settled burst, after SIO_WATCH_QUIET_MS without
 * any event, so an editor's write-rename sequence or a partial write is
 * seen as one change of the finished file.  A burst that never goes quiet
 * still fires after SIO_WATCH_MAX_DELAY_MS.
 *
 * Typical use (the service): the callback asks every worker to reload
 * (sio_worker_reload), and SIGHUP, turned into a flag by the signal
 * handler, calls sio_watch_trigger so both paths share the debounce.
 */
#ifndef SIO_WATCH_H
#define SIO_WATCH_H

#include <stddef.h>

#include "sio_err.h"

#define SIO_WATCH_QUIET_MS 150
#define SIO_WATCH_MAX_DELAY_MS 2000

typedef struct sio_watch sio_watch;

/* The most changed paths a burst reports (more are counted, not named). */
#define SIO_WATCH_MAX_PATHS 32

/* Called on the watcher's thread, once per settled burst of changes or
 * triggers, with the paths that changed in it (a watched directory's path
 * joined with the entry's name, each once, in the order first seen; at
 * most SIO_WATCH_MAX_PATHS of them, valid during the call; npaths 0 for a
 * burst of triggers only) and how many more there were.  Must be quick and
 * must not call sio_watch_destroy. */
typedef void (*sio_watch_fn)(void *ud, const char *const *paths, size_t npaths, size_t more);

typedef struct sio_watch_stats {
    unsigned long events;  /* inotify events and triggers seen */
    unsigned long bursts;  /* on_change calls */
    unsigned long errors;  /* watches that could not be added, failed events */
    size_t dirs;           /* directories watched now */
} sio_watch_stats;

/* Watches every directory under each of dirs (a NULL-terminated array of
 * existing directories; copied) and starts the watcher thread.
 * Subdirectories whose name starts with '.' and symbolic links to
 * directories below a root are not descended into (a root may itself be a
 * symlink).  on_change and ud are kept until sio_watch_destroy.  Returns
 * NULL and fills err when a root is not a directory or cannot be watched,
 * or on out of memory.  The caller owns the result. */
sio_watch *sio_watch_create(const char *const *dirs, sio_watch_fn on_change, void *ud,
                            sio_err *err);

/* Counts as a change (thread-safe; not async-signal-safe): on_change runs
 * once the burst it belongs to settles.  For SIGHUP. */
void sio_watch_trigger(sio_watch *w);

/* A snapshot of the counters (thread-safe). */
void sio_watch_get_stats(sio_watch *w, sio_watch_stats *out);

/* Stops the thread, waits for it (a burst not settled yet is dropped: no
 * on_change call after this returns) and frees everything.  Accepts NULL. */
void sio_watch_destroy(sio_watch *w);

#endif
