/*
 * worker_text.c - a run's text, written once for `sio-orchestrator run`
 * and the busted harness alike: the attrs given on the command line (or to
 * h:run) and the JSON lines run prints (the harness's r.lines and r.text).
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "worker.h"

json_t *sio_run_attrs(const char *text, size_t len, sio_err *err) {
    sio_err why;
    json_t *v = text ? sio_json_parse(text, len, &why) : json_object();
    if (v == NULL && text) {
        sio_err_set(err, SIO_E_PARSE, "attrs are not valid JSON: %s", why.msg);
    } else if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
        sio_err_set(err, SIO_E_INVAL, "attrs must be a JSON object");
    } else if (v == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory");
    }
    return v;
}

json_t *sio_run_error_json(const char *cls, const char *message, const char *step) {
    json_t *e = json_pack("{s:s,s:o}", "class", cls, "message",
                          sio_json_text(message, strlen(message)));
    if (e && step) json_object_set_new(e, "step", sio_json_text(step, strlen(step)));
    return e;
}

/* {"status": status, key: value} as text; steals value. */
static char *line(const char *status, const char *key, json_t *value) {
    json_t *l = json_pack("{s:s,s:o}", "status", status, key, value);
    char *text = l ? sio_json_dump(l, NULL) : NULL;
    json_decref(l);
    return text;
}

char *sio_run_step_line(const char *step_id, const char *payload, size_t len,
                        const json_t *query) {
    return line("step_result", "result",
                json_pack("{s:o,s:o,s:O}", "step_id", sio_json_text(step_id, strlen(step_id)),
                          "payload", sio_json_text(payload, len), "query",
                          query ? query : json_null()));
}

char *sio_run_done_line(const json_t *result, const char *cls, const char *message,
                        const char *step) {
    if (result) return line("success", "result", json_incref((json_t *)result));
    return line("error", "error", sio_run_error_json(cls, message, step));
}
