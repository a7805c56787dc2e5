/* tools.h - the registry of native tools (sio/tool.h), read by workers.
 * It knows nothing of workers: a call handle carries the function that
 * hands its answer back (the worker's, which carries it to its loop). */
#ifndef SIO_TOOLS_H
#define SIO_TOOLS_H

#include <stdint.h>

#include "sio/tool.h"
#include "sio_err.h"

/* Hands a tool's answer (payload, or err) for op_id back to whoever
 * started the call; any thread.  payload/err are copied by the callee. */
typedef void (*sio_tool_answer_fn)(void *data, uint64_t op_id, const sio_err *err,
                                   const char *payload, size_t len);

typedef struct sio_tool_entry {
    char *name;
    sio_tool_fn fn;
    void *ud;
} sio_tool_entry;

/* The tool registered under name, or NULL.  Owned by the registry. */
const sio_tool_entry *sio_tools_find(const char *name);

/* The i-th registered tool, or NULL past the end. */
const sio_tool_entry *sio_tools_at(size_t i);

/* A call handle for op_id, answered through answer(data, ...); NULL when
 * memory is short.  The handle is freed by sio_tool_done / sio_tool_fail. */
sio_tool_call *sio_tool_call_new(sio_tool_answer_fn answer, void *data, uint64_t op_id);

#endif
