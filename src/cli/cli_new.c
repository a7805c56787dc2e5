/*
 * cli_new.c - `sio-orchestrator new NAME`: scaffolds a workflow in the
 * current folder, ready for `validate`, `run` and `test`:
 *
 *   workflows/NAME.yaml    the workflow (a Lua step, a guard, a template)
 *   lua/NAME.lua           its step module, function(A, args, ctx)
 *   spec/NAME_spec.lua     its busted spec
 *
 * and, for editors, refreshed on every run: .sio/workflow.schema.json,
 * .sio/types/ (the shipped schema and type definitions), plus a
 * .luarc.json pointing the Lua language server at .sio/types
 * (scaffold/luarc.json) when there is none.  The three files come from <share>/scaffold/ with {{name}} replaced.
 * Nothing is written when any of them exists already.  Exit 0 done, 1 a
 * file exists or cannot be written, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_share.h"

#define WHO "sio-orchestrator new"
#define NAME_MAX_LEN 64

/* A name is an intent, a file name and a Lua module name at once. */
static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    /* lua/filters.lua and require "sio" have meanings of their own */
    return strcmp(s, "filters") != 0 && strcmp(s, "sio") != 0;
}

/* Reads a whole file; returns a malloc'd NUL-terminated buffer the caller
 * frees, or NULL with a message on stderr. */
static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, WHO ": cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        char *p = realloc(buf, cap * 2);
        if (p == NULL) free(buf);
        buf = p;
        cap *= 2;
    }
    int bad = buf == NULL || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, WHO ": cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* text with every {{name}} replaced by name: a malloc'd string the caller
 * frees, or NULL (out of memory). */
static char *fill(const char *text, const char *name) {
    static const char mark[] = "{{name}}";
    size_t ml = sizeof mark - 1, nl = strlen(name), count = 0;
    for (const char *p = text; (p = strstr(p, mark)) != NULL; p += ml) count++;
    char *out = malloc(strlen(text) + count * nl + 1);
    if (out == NULL) return NULL;
    char *o = out;
    for (const char *p = text;;) {
        const char *q = strstr(p, mark);
        size_t n = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, n);
        o += n;
        if (q == NULL) break;
        memcpy(o, name, nl);
        o += nl;
        p = q + ml;
    }
    *o = '\0';
    return out;
}

/* mkdir -p of path's parent folders.  Returns 0 or -1 (message printed). */
static int make_parents(const char *path) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p) return -1;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, WHO ": cannot create %s: %s\n", p, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    return 0;
}

/* Writes data to path; with excl, fails when path exists.  Returns 0 or -1
 * (message printed). */
static int write_file(const char *path, const char *data, int excl) {
    if (make_parents(path) != 0) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0666);
    if (fd < 0) {
        fprintf(stderr, WHO ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int ok = off == len;
    if (close(fd) != 0) ok = 0;
    if (!ok) fprintf(stderr, WHO ": cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

/* Copies share/rel to dst (replacing it).  Returns 0 or -1. */
static int copy_shared(const char *share, const char *rel, const char *dst) {
    char src[PATH_MAX];
    if ((size_t)snprintf(src, sizeof src, "%s/%s", share, rel) >= sizeof src) return -1;
    char *data = read_all(src);
    if (data == NULL) return -1;
    int rc = write_file(dst, data, 0);
    free(data);
    return rc;
}

static const char *const EDITOR_FILES[][2] = {
    {"schema/workflow.schema.json", ".sio/workflow.schema.json"},
    {"types/sio.lua", ".sio/types/sio.lua"},
    {"types/sio_testing.lua", ".sio/types/sio_testing.lua"},
};

const sio_cli_command sio_cli_new_cmd = {
    "new", sio_cli_new, "NAME", 1, "scaffold a workflow, its Lua step and its spec here",
     "Writes workflows/NAME.yaml, lua/NAME.lua and spec/NAME_spec.lua in the current folder "
     "(nothing when any exists), and refreshes .sio/ (schema and type definitions for "
     "editors).\nExit codes: 0 done, 1 a file exists or cannot be written, 2 usage.",
     sio_cli_no_flags};

int sio_cli_new(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sio-orchestrator new NAME   (scaffolds workflows/NAME.yaml, "
                        "lua/NAME.lua and spec/NAME_spec.lua here)\n");
        return 2;
    }
    const char *name = argv[1];
    if (!valid_name(name)) {
        fprintf(stderr, WHO ": '%s' is not a usable name: a letter, then letters, digits or _ "
                        "(at most %d; not 'filters' or 'sio')\n", name, NAME_MAX_LEN);
        return 2;
    }
    char share[PATH_MAX];
    if (sio_cli_share_dir(WHO, share, sizeof share) != 0) return 1;

    static const char *const templates[] = {"workflow.yaml", "step.lua", "spec.lua"};
    char targets[3][PATH_MAX];
    snprintf(targets[0], PATH_MAX, "workflows/%s.yaml", name);
    snprintf(targets[1], PATH_MAX, "lua/%s.lua", name);
    snprintf(targets[2], PATH_MAX, "spec/%s_spec.lua", name);
    for (int i = 0; i < 3; i++) {
        if (access(targets[i], F_OK) == 0) {
            fprintf(stderr, WHO ": %s exists already; nothing was written\n", targets[i]);
            return 1;
        }
    }
    char *texts[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        char src[PATH_MAX];
        char *raw = (size_t)snprintf(src, sizeof src, "%s/scaffold/%s", share, templates[i]) <
                            sizeof src
                        ? read_all(src)
                        : NULL;
        texts[i] = raw ? fill(raw, name) : NULL;
        if (raw && texts[i] == NULL) fprintf(stderr, WHO ": out of memory\n");
        free(raw);
        if (texts[i] == NULL) rc = 1;
    }
    for (int i = 0; i < 3 && rc == 0; i++)
        if (write_file(targets[i], texts[i], 1) != 0) rc = 1;
    for (int i = 0; i < 3; i++) free(texts[i]);
    if (rc != 0) return 1;

    int editor_ok = 1;
    for (size_t i = 0; i < sizeof EDITOR_FILES / sizeof EDITOR_FILES[0]; i++)
        if (copy_shared(share, EDITOR_FILES[i][0], EDITOR_FILES[i][1]) != 0) editor_ok = 0;
    int luarc = access(".luarc.json", F_OK) != 0;
    if (luarc && copy_shared(share, "scaffold/luarc.json", ".luarc.json") != 0) editor_ok = 0;

    printf("created %s, %s and %s\n", targets[0], targets[1], targets[2]);
    printf("editor support: .sio/ (workflow schema, Lua type definitions)%s\n",
           luarc ? " and .luarc.json" : "");
    printf("next:\n  sio-orchestrator validate\n  sio-orchestrator test\n"
           "  sio-orchestrator run %s --attrs '{\"query\":\"hi\",\"name\":\"Ada\"}'\n", name);
    return editor_ok ? 0 : 1;
}
