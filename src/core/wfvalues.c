/* wfvalues.c - see wfvalues.h. */
#include "wfvalues.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_int.h"
#include "json.h"
#include "redact.h"

#define NAME_MAX_LEN 64
#define VALUE_MAX (1024 * 1024)
#define SECRET_MIN 8 /* bytes: see put() */

static const char *const kind_word[2] = {"config", "secret"};
static const char *const kind_setting[2] = {"WORKFLOW_CONFIG", "WORKFLOW_SECRETS"};
static const char *const kind_env[2] = {"SIO_CONFIG_", "SIO_SECRET_"};

int sio_wfvalue_name_ok(const char *name, size_t len) {
    if (len == 0 || len > NAME_MAX_LEN) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-') return 0;
    }
    return 1;
}

/* The set under construction: arrays grow, a name given again is replaced. */
typedef struct building {
    sio_wfvalues *s;
    size_t cap[2];
} building;

/* Checks and stores name = value[0..len) (both copied); where names the
 * source for errors. */
static int put(building *b, sio_wfkind k, const char *name, size_t nlen, const char *value,
               size_t len, const char *where, sio_err *err) {
    if (!sio_wfvalue_name_ok(name, nlen))
        return sio_err_set(err, SIO_E_CONFIG,
                           "%s: \"%.*s\" is not a %s name (1-64 of A-Z a-z 0-9 _ -)", where,
                           (int)(nlen > 80 ? 80 : nlen), name, kind_word[k]);
    if (len > VALUE_MAX)
        return sio_err_set(err, SIO_E_CONFIG, "%s: the value of %s '%.*s' is over 1 MiB", where,
                           kind_word[k], (int)nlen, name);
    if (k == SIO_WF_SECRET && len < SECRET_MIN)
        return sio_err_set(err, SIO_E_CONFIG,
                           "%s: secret '%.*s' is shorter than %d bytes: every occurrence of it is "
                           "redacted from logs and outputs, so a short one would mask unrelated "
                           "text",
                           where, (int)nlen, name, SECRET_MIN);
    if (k == SIO_WF_SECRET) {
        for (size_t i = 0; i < len;) {
            size_t n = value[i] == '\0' ? 0 : sio_utf8_seq((const unsigned char *)value + i, len - i);
            if (n == 0)
                return sio_err_set(err, SIO_E_CONFIG,
                                   "%s: secret '%.*s' is not UTF-8 text (a NUL or invalid byte at "
                                   "%zu; encode binary secrets, e.g. base64)",
                                   where, (int)nlen, name, i);
            i += n;
        }
    }
    sio_wfvalues *s = b->s;
    char *nm = strndup(name, nlen), *val = malloc(len + 1);
    if (nm == NULL || val == NULL) {
        free(nm), free(val);
        return sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
    }
    if (len) memcpy(val, value, len);
    val[len] = '\0';
    for (size_t i = 0; i < s->n[k]; i++) {
        sio_wfvalue *e = &s->v[k][i];
        if (strcmp(e->name, nm) == 0) {
            free(nm);
            free((char *)e->value);
            e->value = val, e->len = len;
            return 0;
        }
    }
    if (s->n[k] == b->cap[k]) {
        size_t cap = b->cap[k] ? b->cap[k] * 2 : 8;
        sio_wfvalue *v = realloc(s->v[k], cap * sizeof *v);
        if (v == NULL) {
            free(nm), free(val);
            return sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
        }
        s->v[k] = v, b->cap[k] = cap;
    }
    s->v[k][s->n[k]++] = (sio_wfvalue){.name = nm, .value = val, .len = len};
    return 0;
}

/* SIO_CONFIG_<NAME> / SIO_SECRET_<NAME>: name = <NAME> in lower case. */
static int read_env(building *b, const sio_config *cfg, sio_err *err) {
    for (size_t i = 0; i < cfg->n_wf_env; i++) {
        const char *var = cfg->wf_env[i].key, *val = cfg->wf_env[i].val;
        sio_wfkind k = strncmp(var, kind_env[SIO_WF_CONFIG], 11) == 0 ? SIO_WF_CONFIG
                                                                       : SIO_WF_SECRET;
        char name[NAME_MAX_LEN + 2];
        size_t n = strlen(var + 11);
        if (n > NAME_MAX_LEN) n = NAME_MAX_LEN + 1; /* put() refuses it */
        for (size_t j = 0; j < n; j++) name[j] = (char)tolower((unsigned char)var[11 + j]);
        if (put(b, k, name, n, val, strlen(val), var, err) != 0) return -1;
    }
    return 0;
}

/* Reads the whole file at path (at most VALUE_MAX + 1 bytes). */
static char *slurp(const char *path, size_t *len, const char *where, sio_err *err) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        sio_err_set(err, SIO_E_CONFIG, "%s: cannot open: %s", where, strerror(errno));
        return NULL;
    }
    char *p = malloc(VALUE_MAX + 2);
    size_t n = p ? fread(p, 1, VALUE_MAX + 1, f) : 0;
    int bad = p == NULL || ferror(f);
    fclose(f);
    if (bad) {
        if (p == NULL) sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
        else sio_err_set(err, SIO_E_CONFIG, "%s: cannot read: %s", where, strerror(errno));
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A folder: one value per file, named by the file. */
static int read_dir(building *b, sio_wfkind k, const char *dir, sio_err *err) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return sio_err_set(err, SIO_E_CONFIG, "%s: cannot open \"%s\": %s", kind_setting[k], dir,
                           strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., and Kubernetes' ..data */
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *nn);
            if (nn == NULL) rc = sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
            else names = nn;
        }
        if (rc == 0 && (names[n] = strdup(e->d_name)) == NULL)
            rc = sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
        else if (rc == 0)
            n++;
    }
    closedir(d);
    if (n > 1) qsort(names, n, sizeof *names, cmp_name); /* errors in a stable order */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096], where[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(where, sizeof where, "%s: %s", kind_setting[k], path);
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = sio_err_set(err, SIO_E_CONFIG, "%s: %s", where, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = sio_err_set(err, SIO_E_CONFIG, "%s: not a file (one file per %s name)", where,
                             kind_word[k]);
            break;
        }
        size_t len;
        char *val = slurp(path, &len, where, err);
        if (val == NULL) {
            rc = -1;
            break;
        }
        if (len > 0 && val[len - 1] == '\n') len--; /* one trailing newline, as echo writes */
        if (len > 0 && val[len - 1] == '\r') len--;
        rc = put(b, k, names[i], strlen(names[i]), val, len, where, err);
        free(val);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* A file of name=value lines. */
static int read_lines(building *b, sio_wfkind k, const char *path, sio_err *err) {
    char where[4200];
    snprintf(where, sizeof where, "%s: %s", kind_setting[k], path);
    size_t len;
    char *text = slurp(path, &len, where, err);
    if (text == NULL) return -1;
    int rc = 0;
    size_t lineno = 0;
    for (char *line = text, *next; rc == 0 && line != NULL && line < text + len; line = next) {
        next = memchr(line, '\n', (size_t)(text + len - line));
        if (next) *next++ = '\0';
        lineno++;
        char *key, *val, at[4300];
        snprintf(at, sizeof at, "%s:%zu", where, lineno);
        int kind = sio_cfg_split_line(line, &key, &val);
        if (kind < 0)
            rc = sio_err_set(err, SIO_E_CONFIG, "%s: expected name=value", at);
        else if (kind > 0)
            rc = put(b, k, key, strlen(key), val, strlen(val), at, err);
    }
    free(text);
    return rc;
}

static int read_source(building *b, sio_wfkind k, const char *path, sio_err *err) {
    if (path == NULL || *path == '\0') return 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return sio_err_set(err, SIO_E_CONFIG, "%s: \"%s\": %s", kind_setting[k], path,
                           strerror(errno));
    return S_ISDIR(st.st_mode) ? read_dir(b, k, path, err) : read_lines(b, k, path, err);
}

static int cmp_value(const void *a, const void *b) {
    return strcmp(((const sio_wfvalue *)a)->name, ((const sio_wfvalue *)b)->name);
}

sio_wfvalues *sio_wfvalues_read(const sio_config *cfg, sio_err *err) {
    building b = {.s = calloc(1, sizeof *b.s)};
    if (b.s == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "workflow values: out of memory");
        return NULL;
    }
    if (cfg != NULL && (read_env(&b, cfg, err) != 0 ||
                        read_source(&b, SIO_WF_CONFIG, cfg->workflow_config, err) != 0 ||
                        read_source(&b, SIO_WF_SECRET, cfg->workflow_secrets, err) != 0))
        goto fail;
    for (int k = 0; k < 2; k++)
        if (b.s->n[k] > 1) qsort(b.s->v[k], b.s->n[k], sizeof *b.s->v[k], cmp_value);
    for (size_t i = 0; i < b.s->n[SIO_WF_SECRET]; i++) {
        const sio_wfvalue *v = &b.s->v[SIO_WF_SECRET][i];
        if (sio_redact_add(sio_redact_global(), v->name, v->value, v->len, err) != 0) goto fail;
    }
    return b.s;
fail:
    sio_wfvalues_free(b.s);
    return NULL;
}

const sio_wfvalue *sio_wfvalues_get(const sio_wfvalues *s, sio_wfkind kind, const char *name) {
    if (s == NULL || s->n[kind] == 0) return NULL;
    sio_wfvalue key = {.name = name};
    return bsearch(&key, s->v[kind], s->n[kind], sizeof key, cmp_value);
}

void sio_wfvalues_free(sio_wfvalues *s) {
    if (s == NULL) return;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < s->n[k]; i++) free((char *)s->v[k][i].name), free((char *)s->v[k][i].value);
        free(s->v[k]);
    }
    free(s);
}
