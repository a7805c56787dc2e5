/*
 * cli_test.c - `sio-orchestrator test [busted args]`: runs the project's
 * busted specs (spec/ under the current folder, per its .busted) with
 * `busted --lua=lua5.4`, the sio.testing harness and the sio_core Lua
 * module of this build or installation on the Lua paths.
 *
 * Where things are looked up, relative to this executable's folder E:
 *   module  E/../lua/sio_core.so (build tree)   E/../lib/sio-orchestrator/sio_core.so (installed)
 *   Lua     <share>/lua (cli_share.h: installed, or the source tree)
 * LUA_PATH_5_4 / LUA_CPATH_5_4 get these prepended (existing values and the
 * defaults kept); SIO_BIN and SIO_BINARY_DIR are set when unset, so specs
 * that run the binary find this one.  Returns only on failure: 2 when the
 * module or the harness is missing, 1 when busted cannot be started.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_share.h"

static int exists(const char *dir, const char *file) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p) return 0;
    return access(p, R_OK) == 0;
}

/* Prepends `first` to the variable `name` (falling back to `fallback`'s
 * value), keeping ";;" so Lua's defaults stay.  Returns -1 on failure. */
static int prepend_path(const char *name, const char *fallback, const char *first) {
    const char *old = getenv(name);
    if (old == NULL) old = getenv(fallback);
    if (old == NULL) old = "";
    size_t n = strlen(first) + strlen(old) + 4;
    char *v = malloc(n);
    if (v == NULL) return -1;
    snprintf(v, n, "%s;%s;;", first, old);
    int rc = setenv(name, v, 1);
    free(v);
    return rc;
}

const sio_cli_command sio_cli_test_cmd = {
    "test", sio_cli_test, "[BUSTED ARGS]", -1, "run the workflow specs (busted, the real "
     "engine)", "Every argument goes to busted (`busted --help` lists its options).", sio_cli_no_flags};

int sio_cli_test(int argc, char **argv, char **envp) {
    (void)envp; /* the environment is extended with setenv and inherited */
    char exe[PATH_MAX], dir[PATH_MAX], moddir[PATH_MAX], share[PATH_MAX], luadir[PATH_MAX];
    if (sio_cli_exe_path(exe, dir, sizeof exe) != 0) return 2;

    int in_build = 0;
    if (snprintf(moddir, sizeof moddir, "%s/../lua", dir) < (int)sizeof moddir &&
        exists(moddir, "sio_core.so")) {
        in_build = 1;
    } else if (snprintf(moddir, sizeof moddir, "%s/../lib/sio-orchestrator", dir) >=
                   (int)sizeof moddir ||
               !exists(moddir, "sio_core.so")) {
        fprintf(stderr, "sio-orchestrator test: the sio_core Lua module was not found next to %s\n"
                        "(looked in %s/../lua and %s/../lib/sio-orchestrator); it is built and "
                        "installed with the binary\n",
                exe, dir, dir);
        return 2;
    }
    if (sio_cli_share_dir("sio-orchestrator test", share, sizeof share) != 0) return 2;
    if (snprintf(luadir, sizeof luadir, "%s/lua", share) >= (int)sizeof luadir) return 2;

    char cpath[PATH_MAX + 16], lpath[2 * PATH_MAX + 32];
    if (snprintf(cpath, sizeof cpath, "%s/?.so", moddir) >= (int)sizeof cpath ||
        snprintf(lpath, sizeof lpath, "%s/?.lua;%s/?/init.lua", luadir, luadir) >=
            (int)sizeof lpath ||
        prepend_path("LUA_CPATH_5_4", "LUA_CPATH", cpath) != 0 ||
        prepend_path("LUA_PATH_5_4", "LUA_PATH", lpath) != 0) {
        fprintf(stderr, "sio-orchestrator test: cannot set the Lua paths\n");
        return 1;
    }
    setenv("SIO_BIN", exe, 0);
    if (in_build) {
        char bdir[PATH_MAX];
        char *real = snprintf(bdir, sizeof bdir, "%s/..", dir) < (int)sizeof bdir
                         ? realpath(bdir, NULL)
                         : NULL;
        if (real) {
            setenv("SIO_BINARY_DIR", real, 0);
            free(real);
        }
    }

    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "sio-orchestrator test: out of memory\n");
        return 1;
    }
    args[0] = "busted";
    args[1] = "--lua=lua5.4";
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    args[argc + 1] = NULL;
    fflush(NULL);
    execvp("busted", args);
    fprintf(stderr, "sio-orchestrator test: cannot run busted: %s (install busted for Lua 5.4)\n",
            strerror(errno));
    free(args);
    return 1;
}
