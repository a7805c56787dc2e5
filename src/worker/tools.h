/* tools.h - the registry of native tools (sio/tool.h), read by workers. */
#ifndef SIO_TOOLS_H
#define SIO_TOOLS_H

#include <stdint.h>

#include "sio/tool.h"
#include "sio_err.h"

struct sio_worker;

typedef struct sio_tool_entry {
    char *name;
    sio_tool_fn fn;
    void *ud;
} sio_tool_entry;

/* The tool registered under name, or NULL.  Owned by the registry. */
const sio_tool_entry *sio_tools_find(const char *name);

/* The i-th registered tool, or NULL past the end. */
const sio_tool_entry *sio_tools_at(size_t i);

/* A call handle for op_id of worker w; NULL when memory is short.  The
 * handle is freed by sio_tool_done / sio_tool_fail. */
sio_tool_call *sio_tool_call_new(struct sio_worker *w, uint64_t op_id);

#endif
