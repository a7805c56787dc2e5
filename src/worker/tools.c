/* tools.c - native tool registry and call handles; see sio/tool.h. */
#include "tools.h"

#include <stdlib.h>
#include <string.h>


struct sio_tool_call {
    sio_tool_answer_fn answer;
    void *data;
    uint64_t op_id;
};

static sio_tool_entry *tools;
static size_t ntools;

int sio_tool_register(const char *name, sio_tool_fn fn, void *ud) {
    /* A built-in's name is refused when workflows load (the engine knows
     * its built-in tools: lua/sio/api.lua), so the names exist once. */
    if (name == NULL || *name == '\0' || fn == NULL || sio_tools_find(name)) return -1;
    sio_tool_entry *t = realloc(tools, (ntools + 1) * sizeof *t);
    if (t == NULL) return -1;
    tools = t;
    tools[ntools].name = strdup(name);
    if (tools[ntools].name == NULL) return -1;
    tools[ntools].fn = fn;
    tools[ntools].ud = ud;
    ntools++;
    return 0;
}

const sio_tool_entry *sio_tools_find(const char *name) {
    for (size_t i = 0; i < ntools; i++)
        if (strcmp(tools[i].name, name) == 0) return &tools[i];
    return NULL;
}

const sio_tool_entry *sio_tools_at(size_t i) {
    return i < ntools ? &tools[i] : NULL;
}

sio_tool_call *sio_tool_call_new(sio_tool_answer_fn answer, void *data, uint64_t op_id) {
    sio_tool_call *c = malloc(sizeof *c);
    if (c) c->answer = answer, c->data = data, c->op_id = op_id;
    return c;
}

void sio_tool_done(sio_tool_call *call, const char *payload, size_t len) {
    call->answer(call->data, call->op_id, NULL, payload ? payload : "", payload ? len : 0);
    free(call);
}

void sio_tool_fail(sio_tool_call *call, int transient, const char *message) {
    sio_err err;
    sio_err_set(&err, transient ? SIO_E_TRANSIENT : SIO_E_SCRIPT, "%s",
                message ? message : "native tool failed");
    call->answer(call->data, call->op_id, &err, NULL, 0);
    free(call);
}
