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
#include "json.h"
#include "log.h"
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

static void on_files_changed(void *ud, const char *const *paths, size_t npaths, size_t more) {
    sio_service_reload_files(ud, paths, npaths, more);
}

static const sio_cli_flag serve_flags[] = {
    {"--embedded", NULL, NULL, "use an in-process broker (librdkafka's mock cluster) and an "
                               "in-memory dedupe store"},
    {NULL, NULL, NULL, NULL}};

const sio_cli_command sio_cli_serve_cmd = {
    "serve", sio_cli_serve, "", 0, "the daemon: consume commands, run workflows, publish "
     "responses", "SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the workflows.", serve_flags};

int sio_cli_serve(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_serve_cmd, argc, argv, envp);
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
        sio_log_json(SIO_LOG_WARN, "LUA_DIR does not exist: no Lua modules or tools from it",
                     json_pack("{s:o}", "lua_dir", sio_json_text(cfg->lua_dir, strlen(cfg->lua_dir))));
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
        sio_log_json(SIO_LOG_WARN, "not watching for changes; SIGHUP reloads",
                     json_pack("{s:o}", "error", sio_json_text(err.msg, strlen(err.msg))));
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
