/*
 * fuzzlib.h - what the libFuzzer targets under fuzz/ share.
 *
 * Each target (fuzz/<target>.c) defines fz_target, run on one input.  Built
 * with clang and -fsanitize=fuzzer (cmake -DSIO_FUZZ=ON, driven by fuzz/run)
 * it is a fuzzer: fuzzlib.c's LLVMFuzzerTestOneInput runs fz_target under
 * a CPU-time limit (FZ_CPU_SECONDS); built by the normal build with
 * fuzz/replay.c it is a test that replays fuzz/corpus/<target>/ (regression
 * inputs included), so every input that once crashed runs in
 * `scripts/test` (with no CPU limit there: a test does not depend on the
 * machine's speed, and ctest's TIMEOUT stops a hang).
 *
 * A finding is an abort() with a message on stderr (FZ_CHECK): libFuzzer
 * then keeps the input, the replay test fails.
 *
 * The Lua targets drive the real sandbox and the embedded engine as a
 * worker sets them up (src/worker/worker.c init_state): sio_sandbox_create,
 * sio_embedded_install, runner.init(host, settings) with the daemon's
 * defaults; the host ops that would reach the network (timer, http, kv,
 * redis, produce, tool, cancel) are stubs that complete in order when the
 * run waits.  Every input runs as a command does: in a fresh coroutine
 * bound to a fresh sio_exec with FZ_INSTR_LIMIT instructions and
 * FZ_MEM_LIMIT bytes, so a slow or greedy input ends with a limit error;
 * one that still takes long is a libFuzzer timeout, i.e. a finding.
 * Log lines (print, sio.log, the engine's) must be strict JSON and are
 * then dropped.
 */
#ifndef SIO_FUZZLIB_H
#define SIO_FUZZLIB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define FZ_INSTR_LIMIT ((uint64_t)2000000) /* Lua instructions per input */
#define FZ_MEM_LIMIT ((size_t)32 << 20)     /* bytes per input */
#define FZ_MAX_ROUNDS 2000                  /* op completions per input */

/* The CPU time one input may take in the fuzzer before it is a finding (a
 * hang in C, where the sandbox's instruction limit does not reach).  CPU
 * time, not wall-clock time (libFuzzer's -timeout), so a fuzzer at nice 19
 * on a loaded machine does not turn a slow but bounded input into a
 * finding: the slowest bounded input seen (pattern's
 * regress-slow-lazy-captures, 2M matcher steps under libFuzzer's comparison
 * tracing) takes 0.5 s of CPU, and once took 62 s of wall-clock time. */
#ifndef FZ_CPU_SECONDS /* (-DFZ_CPU_SECONDS=1 to see it work) */
#define FZ_CPU_SECONDS 30
#endif

/* The target: checks one input, aborting through FZ_CHECK on a finding.
 * Defined by each fuzz/<target>.c; data is libFuzzer's (borrowed). */
void fz_target(const uint8_t *data, size_t size);

/* Aborts with "fuzz: <what>: <fmt...>" when cond is false. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) fz_fail(__FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)

void fz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* The property every text we write has: sio_json_parse (strict: valid
 * UTF-8, one value, no duplicate keys, no NaN) accepts text[0..len).
 * Aborts naming `what` otherwise. */
void fz_check_json_text(const char *what, const char *text, size_t len);

/* sio_json_dump(v), then fz_check_json_text.  v is borrowed. */
void fz_check_json(const char *what, const json_t *v);

/* --- the Lua engine harness ------------------------------------------------*/

typedef struct fz_lua fz_lua;

/* Creates the sandbox and engine once per process, then runs `driver` (Lua
 * source, trusted: it sees the real _G and may require the engine's
 * modules) which must return function(data) -> value.  name is the chunk
 * name for messages.  Aborts on failure.  The result lives until exit. */
fz_lua *fz_lua_open(const char *name, const char *driver);

/* Runs driver(data) as a command: a fresh exec, a fresh coroutine, the
 * host's ops completed in order.  When the driver returns, its value goes
 * through sio_lua_to_json (as a workflow result does in the worker) and
 * the text must be strict JSON.  An error escaping the driver is a finding
 * unless the exec was killed by a limit (memory, instructions): the
 * driver is trusted code, so only a limit may stop it. */
void fz_lua_run(fz_lua *f, const uint8_t *data, size_t size);

/* Defines fz_target for a Lua target: fz_lua_open(name, driver) on the
 * first input, fz_lua_run on each. */
#define FZ_LUA_TARGET(name, driver)                                                                \
    void fz_target(const uint8_t *data, size_t size) {                                             \
        static fz_lua *f;                                                                          \
        if (f == NULL) f = fz_lua_open(name, driver);                                              \
        fz_lua_run(f, data, size);                                                                 \
    }

#endif
