---@meta sio
-- Type definitions for workflow code: the `sio` module, `A`, `ctx`, step
-- modules (`run`), Lua tools and Lua workflow files.  Annotations in the
-- LuaLS / EmmyLua format; point your editor's Lua language server at this
-- folder (`.luarc.json`: "workspace.library": ["types"]).  Nothing here
-- runs: the real module is lua/sio/api.lua, and spec/types_spec.lua checks
-- that every function and field declared here exists there, with the same
-- parameters, and the other way round.
--
-- Waiting calls (http, kv, kafka, sleep) yield: they block neither other
-- steps of the command nor other commands.

---The host API available to step code, Lua tools, filters and Lua workflow
---files: the global `sio`, also `require "sio"`.
---@class sio
sio = {}

---@alias sio.LogLevel "debug"|"info"|"warn"|"error"

---Writes a structured log line (JSON on stderr) carrying the workflow's
---intent and the running step's id, plus `fields`.
---@param level sio.LogLevel
---@param msg string
---@param fields? table<string, any>
function sio.log(level, msg, fields) end

---JSON encoding and decoding.
---@class sio.json
sio.json = {}

---Encodes a value as compact JSON text: integers exact, floats in 17
---digits, bytes that are not UTF-8 as U+FFFD.  Raises on a value JSON
---cannot hold (a function, NaN, a cycle), naming its path.
---@param value any
---@return string
function sio.json.encode(value) end

---Decodes JSON text, strictly (trailing bytes, invalid UTF-8, NaN are
---errors).  JSON integers become integers; JSON null becomes
---`sio.json.null`.
---@param text string
---@return any
function sio.json.decode(text) end

---The value JSON null decodes to (compare with `==`).
---@type lightuserdata
sio.json.null = nil

---Publishes an extra step_result message for the running step, with
---`payload` (a table is sent as JSON), before the step finishes.  Counted
---against SIO_PUBLISH_LIMIT with the step results of the command.
---@param payload string|table
function sio.publish(payload) end

---Raising classified errors.  Any other error a script raises is permanent.
---@class sio.error
sio.error = {}

---Fails the step with a transient error: retried (the step's `retries`,
---then the command's RETRY_ATTEMPTS) before it is dead-lettered.
---@param msg string
---@return nil
function sio.error.transient(msg) end

---Fails the step with a permanent error: dead-lettered at once.
---@param msg string
---@return nil
function sio.error.permanent(msg) end

---HTTP requests to the hosts on SIO_HTTP_ALLOW (TLS verified, no redirects).
---@class sio.http
sio.http = {}

---@class sio.HttpRequest
---@field url string http:// or https://; its host must be on SIO_HTTP_ALLOW
---@field method? string GET (default), POST, PUT, PATCH, DELETE, HEAD, ...
---@field headers? table<string, string> request headers, {Name = value}
---@field body? string|table a table is sent as JSON, with Content-Type: application/json unless headers set one
---@field timeout? string|number "2s", "500ms" or milliseconds (default HTTP_TIMEOUT)

---@class sio.HttpResponse
---@field status integer the HTTP status
---@field headers table<string, string> every response header, names in lower case; repeated headers joined with ", "
---@field body string the response body
---@field json any the body decoded when it is JSON, else nil

---Sends a request and waits for the response.  Any status is returned (a
---404 is a response, not an error); a network failure or timeout raises a
---transient error, a host off the allow-list a permanent one.
---@param req sio.HttpRequest
---@return sio.HttpResponse
function sio.http.request(req) end

---A small key/value store (Redis), namespaced per workflow: keys of one
---workflow never meet another's.
---@class sio.kv
sio.kv = {}

---The value of `key`, nil when there is none.
---@param key string
---@return string?
function sio.kv.get(key) end

---Sets `key` to `value` (stored as text).
---@param key string
---@param value string|number
---@param ttl? number seconds until the key expires (default: never)
---@return true
function sio.kv.set(key, value, ttl) end

---Deletes `key`.
---@param key string
---@return true
function sio.kv.del(key) end

---Adds 1 to an integer value (0 when absent) and returns the new value.
---@param key string
---@return integer
function sio.kv.incr(key) end

---Producing to other Kafka topics.
---@class sio.kafka
sio.kafka = {}

---Produces one message and waits for the broker's acknowledgement (with PROCESSING_GUARANTEE=exactly_once: holds it for the command's transaction and returns at once; a topic that refuses it dead-letters the command).
---@param topic string
---@param key? string|number
---@param value? string|table a table is sent as JSON
---@return true
function sio.kafka.produce(topic, key, value) end

---Time.
---@class sio.time
sio.time = {}

---A monotonic clock in milliseconds (for measuring durations).
---@return number
function sio.time.now() end

---The wall clock: seconds since 1970-01-01 UTC, with a fraction.
---@return number
function sio.time.unix() end

---A new random UUID (version 4), as text.
---@return string
function sio.id() end

---Waits `ms` milliseconds without blocking other steps or commands.
---@param ms number
function sio.sleep(ms) end

---A configuration value of the workflow (WORKFLOW_CONFIG or
---SIO_CONFIG_<NAME>; reloaded with the workflows).  The workflow must list
---`name` under `config:`; another name, or one that is not set, fails the
---step permanently.  In templates: `${config.name}`.
---@param name string
---@return string
function sio.config(name) end

---A secret of the workflow (WORKFLOW_SECRETS or SIO_SECRET_<NAME>), for
---an http header or body.  The workflow must list `name` under `secrets:`;
---another name, or one that is not set, fails the step permanently.  Its
---value never appears in a log line, step result, response, DLQ entry or
---`run` output: it is written as `[redacted:name]` there.  In templates:
---`${secret.name}`.
---@param name string
---@return string
function sio.secret(name) end

---------------------------------------------------------------------------
-- What step code receives

---A classified error: what a failed step records and what r.error holds in
---specs.
---@class sio.Error
---@field class "transient"|"permanent"
---@field message string
---@field step? string the step it happened in

---What a finished step leaves in `A[step_id]`.
---@class sio.StepRecord
---@field ok boolean false when it failed and has `continue_on_error`
---@field payload string the step's output as text (what publish_result sends)
---@field json any payload decoded when it is a JSON object or array, else nil
---@field args? table the rendered args it ran with
---@field attempts integer how many attempts it took
---@field error? sio.Error why it failed (ok == false)
---@field status? integer http steps: the response status
---@field headers? table<string, string> http steps: the response headers (lower-case names)
---@field body? string http steps: the response body

---The command's attrs, normalised (`utter` is attrs.utter, else echo, else
---query; `query` = `utter`), plus the record of every finished step under
---its id: `A.lookup.json.name`, `A.lookup.status`.
---@class sio.A
---@field query? string the user's words
---@field utter? string the same as query
---@field [string] any attrs and step records (sio.StepRecord)

---The third argument of a step function, the second of a tool function.
---@class sio.Ctx
---@field step string the running step's id
---@field attempt integer 1 on the first attempt, 2 on the first retry, ...
---@field intent string the workflow's intent
---@field A sio.A the same table as the step's first argument
---@field args? table the step's rendered args
---@field sio sio the sio module

---A step module (`run: name` loads lua/name.lua) returns a step function;
---inline `run` code is the body of one.  Its return value is the step's
---payload: a string as is, a table as JSON, nil as "".  Raise with
---error(...) (permanent), sio.error.transient(...) or sio.error.permanent(...).
---@alias sio.StepFn fun(A: sio.A, args: table?, ctx: sio.Ctx): any

---A Lua tool (lua/tools/<name>.lua) returns a tool function: the payload
---for the rendered args.
---@alias sio.ToolFn fun(args: table?, ctx: sio.Ctx): any

---lua/filters.lua returns a table of template filters: `${A.x | name(1)}`
---calls filters.name(value, 1).
---@alias sio.Filters table<string, fun(value: any, ...: any): any>

---------------------------------------------------------------------------
-- Lua workflow files (workflows/*.lua return one)

---@class sio.Workflow
---@field intent string the name a command's `workflow` field selects
---@field description? string
---@field keywords? string[]
---@field steps sio.Step[]
---@field max_concurrency? integer parallel DAG steps (default 4)
---@field fail_fast? boolean stop at the first failed step (default true)
---@field strict_templates? boolean a missing ${A.key} fails the step (default false)
---@field output? any|fun(A: sio.A): any the result's declared fields: templates, or a function of A

---@class sio.Step
---@field id string unique in the workflow; the output lands in A[id]
---@field text? string
---@field guard? string|fun(A: sio.A): boolean the step runs only when true
---@field tool? string|sio.ToolCall
---@field run? string|sio.StepFn Lua code, a module name under lua/, or a function
---@field args? table|fun(A: sio.A): table args of a run step (templates, or a function of A)
---@field publish_result? boolean
---@field depends_on? string|string[]
---@field continue_on_error? boolean
---@field strict_templates? boolean
---@field timeout? string|number "30s", or milliseconds
---@field retries? integer

---@class sio.ToolCall
---@field name string echo, noop, http, kafka, kv, or a Lua or native tool
---@field args? table|fun(A: sio.A): table

return sio
