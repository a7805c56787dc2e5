/*
 * service_reload.c - a reload of the workflows, asked for by SIGHUP or by
 * the watcher, done by every worker on its own loop and logged once: when
 * the last worker of the round has told its outcome, one line says what
 * the set became and which files changed ("workflows reloaded" / "reload
 * rejected"), not one line per worker.
 *
 * Workers coalesce reload requests, so a request made while a round is
 * still out joins it: the round waits for every worker again and names
 * the files of both.
 */
#include "service_int.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

void sio_service_reload(sio_service *s) {
    s->reload = 1;
}

void sio_service_reload_files(sio_service *s, const char *const *paths, size_t npaths,
                              size_t more) {
    pthread_mutex_lock(&s->reload_mu);
    svc_reload *r = &s->rl;
    if (r->next_files == NULL) r->next_files = json_array();
    for (size_t i = 0; i < npaths; i++) {
        size_t n = json_array_size(r->next_files), k;
        for (k = 0; k < n; k++)
            if (strcmp(json_string_value(json_array_get(r->next_files, k)), paths[i]) == 0) break;
        if (k < n) continue;
        if (n < 64) json_array_append_new(r->next_files, sio_json_text(paths[i], strlen(paths[i])));
        else r->next_more++;
    }
    r->next_more += more;
    pthread_mutex_unlock(&s->reload_mu);
    s->reload = 1;
}

void sio_service_reload_now(sio_service *s) {
    pthread_mutex_lock(&s->reload_mu);
    svc_reload *r = &s->rl;
    if (!r->active) {
        json_decref(r->files);
        r->files = NULL;
        r->more = 0;
        r->reloaded = r->rejected = 0;
        free(r->errors);
        r->errors = NULL;
    }
    if (r->next_files) {
        if (r->files == NULL) r->files = json_array();
        json_array_extend(r->files, r->next_files);
        json_decref(r->next_files);
        r->next_files = NULL;
    }
    r->more += r->next_more;
    r->next_more = 0;
    r->active = 1;
    r->pending = s->nworkers;
    for (int i = 0; i < s->nworkers; i++) s->slots[i].reported = 0;
    pthread_mutex_unlock(&s->reload_mu);
    for (int i = 0; i < s->nworkers; i++) sio_worker_reload(s->slots[i].w);
}

void sio_service_on_reload(void *ud, int worker_id, int ok, long version, const char *errors) {
    sio_service *s = ud;
    svc_reload *r = &s->rl;
    pthread_mutex_lock(&s->reload_mu);
    svc_slot *slot = worker_id >= 0 && worker_id < s->nworkers ? &s->slots[worker_id] : NULL;
    if (slot == NULL || !r->active || slot->reported) {
        pthread_mutex_unlock(&s->reload_mu);
        return;
    }
    slot->reported = 1;
    if (ok) {
        r->reloaded++;
        r->version = version;
    } else {
        r->rejected++;
        if (r->errors == NULL) r->errors = strdup(errors ? errors : "rejected");
    }
    json_t *fields = NULL;
    int rejected = 0;
    if (--r->pending == 0) { /* the round's line, logged outside the lock */
        r->active = 0;
        rejected = r->rejected > 0;
        fields = json_pack("{s:i,s:I}", "workers", s->nworkers, rejected ? "rejected_by" : "version",
                           rejected ? (json_int_t)r->rejected : (json_int_t)r->version);
        if (fields && rejected && r->errors)
            json_object_set_new(fields, "errors", sio_json_text(r->errors, strlen(r->errors)));
        if (fields && r->files) json_object_set_new(fields, "files", json_deep_copy(r->files));
        if (fields && r->more) json_object_set_new(fields, "files_more", json_integer((json_int_t)r->more));
    }
    pthread_mutex_unlock(&s->reload_mu);
    if (fields == NULL) return;
    sio_log_json(rejected ? SIO_LOG_ERROR : SIO_LOG_INFO,
                 rejected ? "reload rejected" : "workflows reloaded", fields);
}

void sio_service_reload_free(sio_service *s) {
    json_decref(s->rl.next_files);
    json_decref(s->rl.files);
    free(s->rl.errors);
    memset(&s->rl, 0, sizeof s->rl);
}
