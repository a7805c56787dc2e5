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
#include "json.h"
#include "worker.h"

typedef struct run_state {
    int ok;
    int finished;
} run_state;

/* Prints one line of text (malloc'd; freed here). */
static void print_line(char *text) {
    if (text) printf("%s\n", text);
    else fprintf(stderr, "sio-orchestrator run: out of memory\n");
    fflush(stdout);
    free(text);
}

static void on_step_result(void *ud, const char *step_id, const char *payload, size_t len,
                           const json_t *query) {
    (void)ud;
    print_line(sio_run_step_line(step_id, payload, len, query));
}

static void on_done(void *ud, json_t *result, const sio_run_error *e) {
    run_state *st = ud;
    st->finished = 1;
    st->ok = result != NULL;
    print_line(result ? sio_run_done_line(result, NULL, NULL, NULL)
                      : sio_run_done_line(NULL, sio_class_name(e->cls), e->message, e->step));
    json_decref(result);
}

/* Was the Redis address given explicitly (env or flag), not defaulted? */
static int redis_given(int argc, char **argv, char **envp) {
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--redis", 7) == 0) return 1;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "DEDUPE_REDIS_ADDR=", 18) == 0) return 1;
    return 0;
}

/* A worker for the CLI from cfg, loading workflows_dir (NULL: nothing);
 * NULL with the error printed and its exit code in *rc (2: invalid
 * workflows, 1: anything else). */
static sio_worker *cli_worker(const sio_config *cfg, int with_redis, const char *workflows_dir,
                              int *rc) {
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
        .config = cfg,
        .no_load = workflows_dir == NULL,
    };
    sio_err err;
    sio_worker *w = sio_worker_create(&wc, &err);
    if (w == NULL) fprintf(stderr, "sio-orchestrator: %s\n", err.msg);
    *rc = w == NULL && err.code == SIO_E_CONFIG ? 2 : 1;
    return w;
}

static const sio_cli_flag run_flags[] = {
    {"--attrs", NULL, "JSON", "the command's attrs, a JSON object (default {})"},
    {NULL, NULL, NULL, NULL}};

const sio_cli_command sio_cli_run_cmd = {
    "run", sio_cli_run, "WORKFLOW", 1, "execute a workflow locally, no Kafka",
     "Prints step results and the outcome as JSON lines; exit 1 on error.", run_flags};

int sio_cli_run(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_run_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    if (cfg->nargs != 1) {
        fprintf(stderr, "usage: sio-orchestrator run WORKFLOW [--attrs JSON] [--workflows DIR] "
                        "[--lua DIR]\n");
        sio_config_destroy(cfg);
        return 2;
    }
    int rc;
    sio_worker *w = cli_worker(cfg, redis_given(argc, argv, envp), cfg->workflows_dir, &rc);
    if (w == NULL) {
        sio_config_destroy(cfg);
        return rc;
    }
    const char *text = sio_config_extra(cfg, "--attrs");
    run_state st = {0, 0};
    sio_err err;
    json_t *attrs = sio_run_attrs(text, text ? strlen(text) : 0, &err);
    if (attrs == NULL) {
        print_line(sio_run_done_line(NULL, "permanent", err.msg, NULL));
        st.finished = 1;
    } else {
        sio_run_cbs cbs = {.step_result = on_step_result, .done = on_done};
        if (sio_worker_run(w, cfg->args[0], attrs, &cbs, &st, &err) == NULL) {
            print_line(sio_run_done_line(NULL, sio_class_name(sio_code_class(err.code)), err.msg,
                                         NULL));
            st.finished = 1;
        }
        sio_worker_run_until_idle(w);
    }
    json_decref(attrs);
    if (!st.finished) fprintf(stderr, "sio-orchestrator run: the workflow did not finish\n");
    rc = st.finished && st.ok ? 0 : 1;
    sio_worker_destroy(w);
    sio_config_destroy(cfg);
    return rc;
}

/* validate [PATH...]: loads the files and folders given (default
 * WORKFLOWS_DIR) as serve would, each file with a budget of its own, and
 * prints "ok: intent (file)" per valid workflow on stdout or, when any is
 * invalid, everything on stderr with one "file:line: message" per error;
 * exit 1 when any error. */
const sio_cli_command sio_cli_validate_cmd = {
    "validate", sio_cli_validate, "[PATH...]", -1, "check workflows; file:line errors",
     "Loads the files or folders given (default WORKFLOWS_DIR); exit 1 on any error.",
     sio_cli_no_flags};

int sio_cli_validate(int argc, char **argv, char **envp) {
    const sio_config *cfg = sio_cli_config(&sio_cli_validate_cmd, argc, argv, envp);
    if (cfg == NULL) return 2;
    sio_err err;
    /* The worker loads nothing itself: validate loads the paths and
     * reports every error. */
    int rc;
    sio_worker *w = cli_worker(cfg, 0, NULL, &rc);
    if (w != NULL) {
        const char *const *paths = cfg->nargs ? cfg->args : (const char *const *)&cfg->workflows_dir;
        char *text = NULL;
        int ok = sio_worker_validate(w, paths, cfg->nargs ? cfg->nargs : 1, &text, &err);
        if (ok < 0) fprintf(stderr, "sio-orchestrator validate: %s\n", err.msg);
        else if (text) fprintf(ok ? stdout : stderr, "%s\n", text);
        rc = ok == 1 ? 0 : 1;
        free(text);
    }
    sio_worker_destroy(w);
    sio_config_destroy(cfg);
    return rc;
}
