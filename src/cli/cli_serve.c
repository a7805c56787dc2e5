/*
 * cli_serve.c - `serve [--embedded]`: the daemon.
 *
 * SIGTERM / SIGINT stop it gracefully (drain, flush, commit, close; exit 0,
 * or 1 when commands were abandoned at DRAIN_TIMEOUT or a worker did not
 * stop - the process exits anyway); SIGHUP reloads the workflows.  Invalid configuration exits 2 at once;
 * brokers or Redis that do not answer at start exit 1 with a message naming
 * them.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "service.h"
#include "watch.h"

static sio_service *running;
static const sio_config *left_cfg; /* in use by a worker that did not stop */

static void on_stop_signal(int sig) {
    (void)sig;
    if (running) sio_service_stop(running);
}

static void on_hup(int sig) {
    (void)sig;
    if (running) sio_service_reload(running);
}

static void on_files_changed(void *ud) {
    sio_service_reload(ud);
}

int sio_cli_serve(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(argc, argv, envp);
    if (cfg == NULL) return 2;
    sio_err err;
    sio_service_opts so = {.embedded = sio_config_extra(cfg, "--embedded") != NULL};
    sio_service *s = sio_service_create(cfg, &so, &err);
    if (s == NULL) {
        fprintf(stderr, "sio-orchestrator serve: %s\n", err.msg);
        sio_config_destroy(cfg);
        return err.code == SIO_E_CONFIG ? 2 : 1;
    }
    if (so.embedded) {
        printf("embedded broker: %s\n", sio_service_brokers(s));
        printf("try: sio-orchestrator send noop --attrs '{\"query\":\"hello\"}' --brokers %s\n",
               sio_service_brokers(s));
        fflush(stdout);
    }
    struct stat st;
    int have_lua = stat(cfg->lua_dir, &st) == 0;
    if (!have_lua)
        fprintf(stderr, "sio-orchestrator serve: LUA_DIR '%s' does not exist: no Lua modules or "
                        "tools from it\n", cfg->lua_dir);
    /* Workflow config and secrets reload with the workflows: their folder,
     * or the folder of their file. */
    char values_dirs[2][4096];
    const char *dirs[5] = {cfg->workflows_dir}, *values[2] = {cfg->workflow_config, cfg->workflow_secrets};
    size_t nd = 1;
    if (have_lua) dirs[nd++] = cfg->lua_dir;
    for (int i = 0; i < 2; i++) {
        if (*values[i] == '\0') continue;
        snprintf(values_dirs[i], sizeof values_dirs[i], "%s", values[i]);
        if (stat(values[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
            char *slash = strrchr(values_dirs[i], '/');
            if (slash == values_dirs[i]) slash[1] = '\0';
            else if (slash) *slash = '\0';
            else snprintf(values_dirs[i], sizeof values_dirs[i], ".");
        }
        int seen = 0; /* both files in one folder, or in WORKFLOWS_DIR: one watch */
        for (size_t k = 0; k < nd; k++) seen |= strcmp(dirs[k], values_dirs[i]) == 0;
        if (!seen) dirs[nd++] = values_dirs[i];
    }
    dirs[nd] = NULL;
    sio_watch *watch = sio_watch_create(dirs, on_files_changed, s, &err);
    if (watch == NULL)
        fprintf(stderr, "sio-orchestrator serve: not watching for changes (%s); SIGHUP reloads\n",
                err.msg);
    running = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = sio_service_run(s, &err);
    if (rc != 0) fprintf(stderr, "sio-orchestrator serve: %s\n", err.msg);
    sio_watch_destroy(watch);
    running = NULL;
    if (sio_service_left_running(s)) {
        /* A worker is still busy with s and cfg: both stay until exit. */
        left_cfg = cfg;
        sio_service_destroy(s);
        return 1;
    }
    sio_service_destroy(s);
    sio_config_destroy(cfg);
    return rc == 0 ? 0 : 1;
}
