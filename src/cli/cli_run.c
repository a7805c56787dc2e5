/*
 * cli_run.c - `run WORKFLOW --attrs JSON` and `validate [PATH...]`.
 *
 * Both use one worker on the calling thread, with no Kafka; Redis only when
 * DEDUPE_REDIS_ADDR / --redis is given explicitly (the kv capability).  run
 * prints each published step result and the final outcome as JSON lines in
 * the shape of the response envelopes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "worker.h"

typedef struct run_state {
    int ok;
    int finished;
} run_state;

static void print_line(const char *status, const char *key, const char *data, size_t len) {
    printf("{\"status\":\"%s\",\"%s\":%.*s}\n", status, key, (int)len, data);
    fflush(stdout);
}

static void on_emit(sio_job *job, const char *kind, const char *data, size_t len) {
    (void)job;
    print_line(kind, "result", data, len);
}

static void on_done(sio_job *job, int ok, const char *result, size_t len) {
    run_state *st = job->data;
    st->ok = ok;
    st->finished = 1;
    print_line(ok ? "success" : "error", ok ? "result" : "error", result, len);
}

/* Was the Redis address given explicitly (env or flag), not defaulted? */
static int redis_given(int argc, char **argv, char **envp) {
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--redis", 7) == 0) return 1;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "DEDUPE_REDIS_ADDR=", 18) == 0) return 1;
    return 0;
}

/* A worker for the CLI from cfg; NULL with the error printed. */
static sio_worker *cli_worker(const sio_config *cfg, int with_redis, const char *workflows_dir) {
    sio_worker_cfg wc = {
        .id = 0,
        .workflows_dir = workflows_dir,
        .lua_dir = cfg->lua_dir,
        .limits = {.mem_limit_bytes = cfg->mem_limit,
                   .instr_limit = (uint64_t)cfg->instr_limit,
                   .deadline_ms = (uint64_t)cfg->workflow_timeout_ms},
        .http_allow = cfg->http_allow,
        .http_timeout_ms = (long)cfg->http_timeout_ms,
        .redis_host = with_redis ? cfg->redis_host : NULL,
        .redis_port = cfg->redis_port,
        .redis_user = cfg->redis_username,
        .redis_password = cfg->redis_password,
        .redis_timeout_ms = cfg->redis_timeout_ms,
    };
    sio_err err;
    sio_worker *w = sio_worker_create(&wc, &err);
    if (w == NULL) fprintf(stderr, "sio-orchestrator: %s\n", err.msg);
    return w;
}

int sio_cli_run(int argc, char **argv, char **envp) {
    static const char *const flags[] = {"--attrs=", NULL};
    sio_config_opts opts = {.extra_flags = flags, .max_positional = 1};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sio-orchestrator run: %s\n", err.msg);
        return 2;
    }
    if (cfg->nargs != 1) {
        fprintf(stderr, "usage: sio-orchestrator run WORKFLOW [--attrs JSON] [--workflows DIR] "
                        "[--lua DIR]\n");
        sio_config_destroy(cfg);
        return 2;
    }
    sio_worker *w = cli_worker(cfg, redis_given(argc, argv, envp), cfg->workflows_dir);
    if (w == NULL) {
        sio_config_destroy(cfg);
        return 1;
    }
    const char *load_errors = sio_worker_load_errors(w);
    if (load_errors) fprintf(stderr, "%s\n", load_errors);
    const char *attrs = sio_config_extra(cfg, "--attrs");
    if (attrs == NULL) attrs = "{}";
    run_state st = {0, 0};
    sio_job job = {.entry = "run", .payload = attrs, .payload_len = strlen(attrs),
                   .meta = cfg->args[0], .emit = on_emit, .done = on_done, .data = &st};
    sio_worker_submit(w, &job);
    sio_worker_run_until_idle(w);
    if (!st.finished) fprintf(stderr, "sio-orchestrator run: the workflow did not finish\n");
    int rc = st.finished && st.ok ? 0 : 1;
    sio_worker_destroy(w);
    sio_config_destroy(cfg);
    return rc;
}

/* validate: prints each error (file:line: message) on stderr and the valid
 * workflows on stdout; exit 1 when any error. */
static void on_validated(sio_job *job, int ok, const char *result, size_t len) {
    run_state *st = job->data;
    st->ok = ok;
    st->finished = 1;
    fprintf(ok ? stdout : stderr, "%.*s\n", (int)len, result);
}

int sio_cli_validate(int argc, char **argv, char **envp) {
    sio_config_opts opts = {.extra_flags = NULL, .max_positional = -1};
    sio_err err;
    const sio_config *cfg = sio_config_load(argc, argv, envp, &opts, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sio-orchestrator validate: %s\n", err.msg);
        return 2;
    }
    size_t cap = 2;
    for (size_t i = 0; i < cfg->nargs; i++) cap += strlen(cfg->args[i]) + 1;
    cap += strlen(cfg->workflows_dir);
    char *paths = calloc(1, cap);
    int rc = 1;
    /* An empty folder keeps the worker's own load cheap; validate loads the
     * paths itself and reports every error. */
    sio_worker *w = paths ? cli_worker(cfg, 0, "/nonexistent/sio-validate") : NULL;
    if (w != NULL) {
        if (cfg->nargs == 0) strcat(paths, cfg->workflows_dir);
        for (size_t i = 0; i < cfg->nargs; i++) {
            strcat(paths, cfg->args[i]);
            strcat(paths, "\n");
        }
        run_state st = {0, 0};
        sio_job job = {.entry = "validate", .payload = paths, .payload_len = strlen(paths),
                       .done = on_validated, .data = &st};
        sio_worker_submit(w, &job);
        sio_worker_run_until_idle(w);
        rc = st.finished && st.ok ? 0 : 1;
    }
    free(paths);
    sio_worker_destroy(w);
    sio_config_destroy(cfg);
    return rc;
}
