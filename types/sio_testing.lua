---@meta sio.testing
-- Type definitions for the busted harness, `require "sio.testing"`
-- (lua/sio/testing.lua).  spec/types_spec.lua checks them against it.

---@class sio.testing
local testing = {}

---@class sio.testing.Options
---@field root? string the project folder (default ".")
---@field workflows? string its workflows folder (default "workflows")
---@field lua? string its Lua folder (default "lua")
---@field timeout? string|number a command's limit on the virtual clock (default "10m")
---@field memory? string|integer Lua memory per command ("64m")
---@field instructions? integer Lua instructions per command (100000000)
---@field publish_limit? integer step results + sio.publish calls per command (SIO_PUBLISH_LIMIT)
---@field cpu_deadline? string|number a wall-clock limit per command (default none)
---@field retry_base_ms? number step retry backoff base (RETRY_BACKOFF_BASE)
---@field http_timeout? string|number an http request's limit when it sets none (HTTP_TIMEOUT)
---@field http_allow? string|string[] the spec's SIO_HTTP_ALLOW ("host", "host:port", "*"); default none, as serve's
---@field epoch? number the virtual unix time at clock 0 (1700000000)
---@field intent? string the workflow h:run runs by default
---@field config? table<string, string> the workflows' configuration values (sio.config, ${config.x})
---@field secrets? table<string, string> the workflows' secrets (sio.secret, ${secret.x}), redacted from results and logs

---A harness: the real engine in the real sandbox, with stubbed I/O on a
---virtual clock.
---@param opts? sio.testing.Options
---@return sio.testing.Harness
function testing.new(opts) end

---`testing.new(opts)` and checks that `intent` loads; raises with the load
---errors (file:line) or the closest names otherwise.
---@param intent string
---@param opts? sio.testing.Options
---@return sio.testing.Harness
function testing.load(intent, opts) end

---A stub answer that completes after `ms` of virtual time.
---@param ms string|number "2s", or milliseconds
---@param value any
---@return sio.testing.Answer
function testing.after(ms, value) end

---A stub answer that fails the op: a string is a transient error, or give
---{class = "permanent", message = ...}.
---@param err string|{class?: "transient"|"permanent", message?: string}
---@return sio.testing.Answer
function testing.fail(err) end

---A stub answer that never completes (the step times out).
---@return sio.testing.Answer
function testing.never() end

---@class sio.testing.Answer

---@alias sio.testing.Cap "http"|"kv"|"kafka"|"time"|"config"|"secret"

---@class sio.testing.HttpCall
---@field method string
---@field url string
---@field headers table<string, string> the headers the request carries, names in lower case
---@field body? string the body as sent
---@field timeout_ms? number

---@class sio.testing.Harness
---@field kv table<string, string> the in-memory kv store (keys "wf:<intent>:<key>")
---@field produced {topic: string, key?: string, value?: string}[] what the kafka capability produced
local Harness = {}

---Answers a capability's calls: a function receives the call (http: the
---request, sio.testing.HttpCall; kv: op, key, value, ttl; kafka: topic, key,
---value) and returns the answer; any other value is the answer
---to every call.  An http answer is {status = 200, headers = {...}, body =
---"..." | json = {...}} (a string is a 200 body).  "time" sets the clock:
---unix seconds or {unix = s, now = ms}.  "config" and "secret" take
---{name = value}: the values sio.config / sio.secret and ${config.x} /
---${secret.x} read (replacing those given before); secrets are redacted
---from the result, the error, step results and logs as the daemon does.
---@param cap sio.testing.Cap
---@param answer any
---@return sio.testing.Harness
function Harness:stub(cap, answer) end

---Replaces a tool (built-in, Lua or native) by fn(args) -> payload, or a
---canned payload.
---@param name string
---@param answer any
---@return sio.testing.Harness
function Harness:stub_tool(name, answer) end

---Adds an inline workflow; its format comes from `file`'s suffix.
---@param src string
---@param file? string (default "inline.yaml")
---@return sio.testing.Harness
function Harness:add_workflow(src, file) end

---The virtual clock, in ms since the harness was made.
---@return number
function Harness:now() end

---Moves the virtual clock forward.
---@param ms string|number
---@return sio.testing.Harness
function Harness:advance(ms) end

---Sets the virtual wall clock (what sio.time.unix() reads).
---@param unix number
---@return sio.testing.Harness
function Harness:set_time(unix) end

---The key the kv store holds `key` of workflow `intent` under.
---@param intent string
---@param key string
---@return string
function Harness:kv_key(intent, key) end

---Forgets stubs, tool stubs, kv, produced messages and the clock (config
---and secrets go back to the options').
---@return sio.testing.Harness
function Harness:reset() end

---Frees the sandbox (also done by the garbage collector).
function Harness:close() end

---What loading the project (and the inline workflows) reports, each
---"file:line: message" as `sio-orchestrator validate` prints it; {} when all loads.
---@return string[]
function Harness:load_errors() end

---The intents the project (and the inline workflows) define, sorted.
---@return string[]
function Harness:intents() end

---The workflow as the loader read it (intent, steps with their ids, deps,
---timeout_ms, retries...; functions as "<function>"), or nil.
---@param intent? string the harness's intent when omitted
---@return table?
function Harness:workflow(intent) end

---Runs a workflow (the harness's intent when `intent` is omitted) with the
---attrs, to the end, on the virtual clock.
---@param intent string|table
---@param attrs? table|string
---@return sio.testing.Result
---@overload fun(self: sio.testing.Harness, attrs: table): sio.testing.Result
function Harness:run(intent, attrs) end

---@class sio.testing.StepView
---@field id string
---@field status "ok"|"failed"|"skipped"|"not_run"
---@field args? table rendered args
---@field payload? string
---@field json any
---@field attempts? integer
---@field error? sio.Error
---@field guard? boolean the guard's last value
---@field kind? "tool"|"run"
---@field tool? string

---@class sio.testing.Call
---@field kind "http"|"kv"|"produce"|"tool"
---@field at number virtual ms when it started
---@field args? table http: the request (sio.testing.HttpCall); tool: the rendered args
---@field name? string tool name
---@field op? string kv op
---@field key? string
---@field value? string
---@field topic? string
---@field delay_ms? number when the stub's answer came, after `at`
---@field cancelled_at? number virtual ms when the engine abandoned it (a step timeout, fail_fast)

---@class sio.testing.Timer
---@field ms number
---@field at number virtual ms when it started
---@field cancelled_at? number virtual ms when it was stopped before it fired

---What a run did.
---@class sio.testing.Result
---@field ok boolean
---@field result? table the workflow's result (ok)
---@field error? sio.Error the error (not ok)
---@field text string the result or error as JSON
---@field lines string[] the JSON lines `sio-orchestrator run` prints
---@field published {step_id: string, payload: string, query?: string}[] step results, in order
---@field steps table<string, sio.testing.StepView>
---@field order string[] step ids in file order
---@field ran string[] ids of the steps that ran ok
---@field skipped string[]
---@field failed string[]
---@field not_run string[]
---@field calls sio.testing.Call[] every op, in order
---@field timers sio.testing.Timer[] step timeouts, retry backoffs and sio.sleep, in order
---@field retries table<string, integer> step id -> retries it needed
---@field elapsed_ms number virtual time the run took
---@field logs table[] the log lines, decoded
---@field killed? string the limit that stopped it
---@field instructions integer Lua instructions the command used
---@field mem_peak integer the command's peak Lua memory, bytes
---@field file? string the workflow's file
---@field intent string
---@field attrs? table the attrs after normalisation
local Result = {}

---Fails the spec (at the caller's line) unless the run succeeded.
---@return sio.testing.Result
function Result:expect_ok() end

---Fails the spec unless the run failed with `class`, a message matching the
---Lua pattern `pattern`, in step `step` (each optional).
---@param class? "transient"|"permanent"
---@param pattern? string
---@param step? string
---@return sio.testing.Result
function Result:expect_error(class, pattern, step) end

---Fails the spec unless each step ran ok.
---@param ... string
---@return sio.testing.Result
function Result:expect_ran(...) end

---@param ... string
---@return sio.testing.Result
function Result:expect_skipped(...) end

---@param ... string
---@return sio.testing.Result
function Result:expect_failed(...) end

---The step's view; raises for an unknown id.
---@param id string
---@return sio.testing.StepView
function Result:step(id) end

---The step's rendered args.
---@param id string
---@return table?
function Result:args(id) end

---The step's payload (it must have run ok).
---@param id string
---@return string
function Result:output(id) end

---The step's payload decoded as JSON.
---@param id string
---@return any
function Result:json(id) end

---The calls of one kind ("http", "tool", "kv", "produce"),
---optionally of one tool, in order.
---@param kind string
---@param name? string
---@return sio.testing.Call[]
function Result:calls_of(kind, name) end

---"file:line: step id" of a step, as failure messages start.
---@param step? string
---@return string
function Result:where(step) end

---Every step's status and every call, one per line.
---@return string
function Result:describe() end

return testing
