/*
 * sio/tool.h - native tools written in C.
 *
 * A native tool is a C function a workflow step calls by name, like a
 * built-in or Lua tool:
 *
 *     steps:
 *       - id: s1
 *         tool: {name: reverse, args: {text: "${A.query}"}}
 *
 * Register tools before the orchestrator starts, then hand over to
 * sio_main() from your own main():
 *
 *     static void reverse(sio_tool_call *call, const char *args, size_t len, void *ud) {
 *         ...compute a payload from the args JSON...
 *         sio_tool_done(call, payload, payload_len);
 *     }
 *     int main(int argc, char **argv, char **envp) {
 *         sio_tool_register("reverse", reverse, NULL);
 *         return sio_main(argc, argv, envp);
 *     }
 *
 * and link with the sio_core library.  The step's rendered args arrive as a
 * JSON object; the payload you give back becomes the step's output
 * (A.s1.payload, and A.s1.json when it is JSON).
 *
 * Threading: the tool function runs on a worker thread, once per call, and
 * must not block: a tool that waits on I/O keeps `call` and finishes later,
 * from any thread, with exactly one of sio_tool_done / sio_tool_fail.  The
 * call is answered on the worker's loop, never inside the tool function.
 */
#ifndef SIO_TOOL_H
#define SIO_TOOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sio_tool_call sio_tool_call;

/* args: the rendered args as JSON (NUL-terminated, len bytes), valid only
 * during the call.  ud: as registered. */
typedef void (*sio_tool_fn)(sio_tool_call *call, const char *args, size_t len, void *ud);

/* Registers a tool under name (copied).  Call before sio_main / before any
 * worker exists; not thread-safe.  Returns 0, or -1 when another native
 * tool has the name, the name is empty, or memory is short.  A built-in
 * tool's name (echo, noop, http, kafka, kv) is refused when the workflows
 * load: serve, run and validate then stop with exit 2, naming the tool. */
int sio_tool_register(const char *name, sio_tool_fn fn, void *ud);

/* Finishes call with a payload (copied).  Thread-safe.  call is freed. */
void sio_tool_done(sio_tool_call *call, const char *payload, size_t len);

/* Finishes call with an error: transient (retried by the step's retries
 * and the service) when transient is non-zero, else permanent.  message is
 * copied.  Thread-safe.  call is freed. */
void sio_tool_fail(sio_tool_call *call, int transient, const char *message);

/* The orchestrator's command line (the shipped binary's main).  Returns
 * the exit code. */
int sio_main(int argc, char **argv, char **envp);

#ifdef __cplusplus
}
#endif

#endif
