/* outcome.h - a Lua run's outcome as text, for assertions: the result's
 * compact JSON, or {"class":..,"message":..[,"step":..]} for an error. */
#ifndef SIO_TEST_OUTCOME_H
#define SIO_TEST_OUTCOME_H

#include <stdio.h>
#include <stdlib.h>

#include "json.h"
#include "worker.h"

static inline void outcome_text(const json_t *result, const sio_run_error *e, char *buf,
                                size_t n) {
    json_t *v = result ? json_incref((json_t *)result)
                       : json_pack("{s:s,s:s}", "class", sio_class_name(e->cls), "message",
                                   e->message);
    if (!result && v && e->step) json_object_set_new(v, "step", json_string(e->step));
    char *t = v ? sio_json_dump(v, NULL) : NULL;
    snprintf(buf, n, "%s", t ? t : "(out of memory)");
    free(t);
    json_decref(v);
}

#endif
