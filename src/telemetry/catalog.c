/* catalog.c - see catalog.h. */
#include "catalog.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

typedef struct entry {
    char *intent, *file;
    char sha256[65];
    char loaded_at[32];
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static entry *entries;
static size_t nentries;
static long version;
static char set_loaded_at[32];
static int has_reload, reload_ok;
static char reload_at[32];
static char *reload_errors;

/* The SHA-256 of the file at path as hex into out (65 bytes), or "" when
 * it cannot be read. */
static void hash_file(const char *path, char out[65]) {
    out[0] = '\0';
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f == NULL) return;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    char buf[16384];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n) == 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(ctx);
    fclose(f);
}

static void free_entries(entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) free(e[i].intent), free(e[i].file);
    free(e);
}

void sio_catalog_publish(long v, const sio_metrics_wf *wfs, const char *const *files,
                         const char *const *paths, size_t n) {
    sio_metrics_set_catalog(wfs, n);
    sio_metric_set(SIO_M_WORKFLOWS_LOADED, 0, (int64_t)n);
    sio_metric_set(SIO_M_WORKFLOW_SET_VERSION, 0, v);
    char now[32];
    sio_log_timestamp(now, sizeof now);
    entry *fresh = calloc(n ? n : 1, sizeof *fresh);
    if (fresh == NULL) return;
    for (size_t i = 0; i < n; i++) {
        fresh[i].intent = strdup(wfs[i].intent ? wfs[i].intent : "");
        fresh[i].file = strdup(files[i] ? files[i] : "");
        hash_file(paths[i], fresh[i].sha256);
        snprintf(fresh[i].loaded_at, sizeof fresh[i].loaded_at, "%s", now);
    }
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n; i++) /* unchanged content keeps its load time */
        for (size_t k = 0; k < nentries; k++)
            if (fresh[i].file && entries[k].file && strcmp(fresh[i].file, entries[k].file) == 0 &&
                strcmp(fresh[i].sha256, entries[k].sha256) == 0 && fresh[i].sha256[0])
                memcpy(fresh[i].loaded_at, entries[k].loaded_at, sizeof fresh[i].loaded_at);
    entry *old = entries;
    size_t nold = nentries;
    entries = fresh, nentries = n, version = v;
    memcpy(set_loaded_at, now, sizeof now);
    pthread_mutex_unlock(&mu);
    free_entries(old, nold);
}

void sio_catalog_reload(int ok, const char *errors) {
    char *e = errors ? strdup(errors) : NULL;
    sio_metric_inc(SIO_M_RELOADS, ok ? SIO_RELOAD_OK : SIO_RELOAD_REJECTED);
    pthread_mutex_lock(&mu);
    free(reload_errors);
    reload_errors = e;
    has_reload = 1, reload_ok = ok;
    sio_log_timestamp(reload_at, sizeof reload_at);
    pthread_mutex_unlock(&mu);
}

/* A JSON string of s; text that is not UTF-8 is reported as such. */
static json_t *text(const char *s) {
    json_t *v = json_string(s ? s : "");
    return v ? v : json_string("(not valid UTF-8)");
}

/* The last reload as JSON (under mu), errors split into lines. */
static json_t *reload_json(void) {
    if (!has_reload) return json_null();
    json_t *errs = json_array();
    for (const char *p = reload_errors; p && *p && errs;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        if (line && len) json_array_append_new(errs, text(line));
        free(line);
        p = nl ? nl + 1 : p + len;
    }
    return json_pack("{s:s,s:s,s:o}", "result", reload_ok ? "ok" : "rejected", "at", reload_at,
                     "errors", errs);
}

char *sio_catalog_json(size_t *len) {
    pthread_mutex_lock(&mu);
    json_t *list = json_array();
    for (size_t i = 0; i < nentries && list; i++)
        json_array_append_new(list, json_pack("{s:o,s:o,s:s,s:s}", "intent", text(entries[i].intent),
                                              "file", text(entries[i].file), "sha256",
                                              entries[i].sha256, "loaded_at", entries[i].loaded_at));
    json_t *doc = json_pack("{s:I,s:s?,s:o,s:o}", "version", (json_int_t)version, "loaded_at",
                            set_loaded_at[0] ? set_loaded_at : NULL, "workflows", list,
                            "last_reload", reload_json());
    pthread_mutex_unlock(&mu);
    char *out = doc ? sio_json_dump(doc, len) : NULL;
    json_decref(doc);
    return out;
}

void sio_catalog_reset(void) {
    pthread_mutex_lock(&mu);
    free_entries(entries, nentries);
    entries = NULL, nentries = 0, version = 0;
    set_loaded_at[0] = '\0';
    free(reload_errors);
    reload_errors = NULL;
    has_reload = 0;
    pthread_mutex_unlock(&mu);
}
