-- sio.service: one Kafka command from raw bytes to a durable outcome.
--
-- Runner entries (see runner.lua), run in a command coroutine:
--   "command"  payload = the Kafka message value, meta = JSON
--              {topic, partition, offset, timestamp, key}
--   "dlq"      the same, plus meta.error = {class, message, attempts}: the
--              command's coroutine died (a sandbox limit), so a fresh one
--              dead-letters it
-- Both return true only once the final message (success or DLQ) is in
-- Kafka (its delivery report succeeded): the host then lets the offset be
-- committed.  A final message that cannot be delivered is retried for as
-- long as the command lives; it is never given up on.
--
-- Order of a successful command: claim the correlation id in Redis
-- (SET NX PX lease, renewed while it runs) -> run the workflow, publishing
-- step results as steps complete -> store the success envelope in Redis
-- (TTL) -> publish it.  Storing before publishing means a crash in between
-- is answered from the store when Kafka redelivers the command.
--
-- Errors are classified tables {class, message}; transient ones are retried
-- (settings.retry_attempts in all, exponential backoff with jitter), then
-- dead-lettered; permanent ones are dead-lettered at once.
local json = require "sio.json"
local engine = require "sio.engine"
local errors = require "sio.errors"

local M = {}

local encode, decode, null = json.encode, json.decode, json.null
local type, pcall, error, tostring, pairs = type, pcall, error, tostring, pairs
local co_yield, co_resume, co_status = coroutine.yield, coroutine.resume, coroutine.status
local sformat, mmin, mrandom, floor = string.format, math.min, math.random, math.floor

local host, S, runner

-- settings (runner.init's cfg JSON, all optional)
local DEFAULTS = {
  responses_topic = "dev.sio.orchestrator.responses",
  dedupe_prefix = "sio:dedupe:", dedupe_ttl_ms = 600000, lease_ms = 30000,
  retry_attempts = 3, backoff_base_ms = 200, backoff_max_ms = 10000,
  workflow_timeout_ms = 600000, log_payloads = false, dedupe = true,
}

function M.init(h, settings, r)
  host, runner = h, r
  S = {}
  for k, v in pairs(DEFAULTS) do S[k] = v end
  for k, v in pairs(settings or {}) do S[k] = v end
  -- JSON numbers arrive as floats; Redis wants integers ("30000", not "30000.0")
  for k, v in pairs(S) do
    if type(v) == "number" then S[k] = math.tointeger(floor(v)) or v end
  end
  S.owner = S.owner or host.uuid()
end

local function transient(msg) error({ class = "transient", message = msg }, 0) end
local function permanent(msg) error({ class = "permanent", message = msg }, 0) end

---------------------------------------------------------------------------
-- waiting on our own ops (outside the engine)

-- ctx.mine[op] = handler(ok, value) for ops this module started while the
-- engine runs; anything else goes to the engine.
local function await(ctx, op)
  while true do
    local id, ok, v = co_yield("wait")
    if id == op then return ok, v end
    local h = ctx.mine[id]
    if h then ctx.mine[id] = nil; h(ok, v) end
  end
end

local function start(what, op, err)
  if not op then
    if type(err) == "table" then error({ class = err.class or "transient", message = what .. ": " .. tostring(err.message) }, 0) end
    transient(what .. ": " .. tostring(err))
  end
  return op
end

local function sleep(ctx, ms)
  await(ctx, start("timer", host.timer(ms)))
end

local function redis(ctx, ...)
  local ok, v = await(ctx, start("redis", host.redis(...)))
  if not ok then
    error({ class = v.class or "transient", message = "redis: " .. tostring(v.message) }, 0)
  end
  return v
end

-- Produces and waits for the delivery report.
local function deliver(ctx, topic, key, value)
  local ok, v = await(ctx, start("kafka produce " .. topic, host.produce(topic, key, value)))
  if not ok then transient("kafka produce " .. topic .. ": " .. tostring(v.message)) end
  return v
end

local function backoff_ms(attempt)
  local d = mmin(S.backoff_max_ms, S.backoff_base_ms * 2 ^ (attempt - 1))
  return floor(d / 2 + mrandom() * d / 2)
end

---------------------------------------------------------------------------
-- envelopes

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = floor(v / 262144) % 64 + 1, floor(v / 4096) % 64 + 1
    local c3, c4 = floor(v / 64) % 64 + 1, v % 64 + 1
    out[#out + 1] = B64:sub(c1, c1) .. B64:sub(c2, c2)
      .. (b and B64:sub(c3, c3) or "=") .. (c and B64:sub(c4, c4) or "=")
  end
  return table.concat(out)
end
M.base64 = base64

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", floor(t)) .. sformat(".%03dZ", floor((t % 1) * 1000))
end

local function dlq_topic(reply)
  if reply:sub(-4) == ".dlq" then return reply end
  return reply .. ".dlq"
end

-- The DLQ envelope: the seed's fields plus what an operator needs to replay.
local function dlq_envelope(ctx, err, attempts)
  local env = {
    correlation_id = ctx.cid or null,
    status = "error",
    error = tostring(err.message),
    error_class = err.class or "permanent",
    attempts = attempts,
    workflow = ctx.wfname or null,
    step = err.step,
    source = { topic = ctx.meta.topic, partition = ctx.meta.partition, offset = ctx.meta.offset,
               timestamp = ctx.meta.timestamp },
    received_at = iso(ctx.received),
    failed_at = iso(host.time()),
  }
  if ctx.cmd then env.command = ctx.cmd else env.command_base64 = base64(ctx.raw) end
  return encode(env)
end

local function log(ctx, level, msg, extra)
  local f = { correlation_id = ctx.cid, topic = ctx.meta.topic, partition = ctx.meta.partition,
              offset = ctx.meta.offset, workflow = ctx.wfname }
  if extra then for k, v in pairs(extra) do f[k] = v end end
  host.log(level, msg, f)
end

---------------------------------------------------------------------------
-- dedupe

-- Claims the correlation id.  Returns "claimed", or the stored response
-- text of a finished command.  A claim held by another live owner is waited
-- on (non-blocking) until it finishes or its lease expires.
local function claim(ctx)
  local waited = 0
  while true do
    local r = redis(ctx, "SET", ctx.key, ctx.token, "NX", "PX", S.lease_ms)
    if r == "OK" then return "claimed" end
    local v = redis(ctx, "GET", ctx.key)
    if type(v) == "string" then
      if v:sub(1, 5) == "done:" then return v:sub(6) end
      if v == ctx.token then return "claimed" end -- ours, from an earlier attempt
      if waited == 0 then log(ctx, "info", "duplicate of a command in flight: waiting for it") end
      if waited > S.workflow_timeout_ms + 2 * S.lease_ms then
        transient("correlation id still claimed by another owner after " .. waited .. " ms")
      end
      local pause = mmin(250, S.lease_ms // 4 + 1)
      sleep(ctx, pause)
      waited = waited + pause
    end
  end
end

-- Renews the lease every lease/3 while the workflow runs (a crashed owner's
-- command is then taken over within one lease).
local function renew_lease(ctx)
  if not ctx.claimed or ctx.done then return end
  local op = host.timer(S.lease_ms // 3)
  if not op then return end
  ctx.lease_timer = op
  ctx.mine[op] = function()
    if ctx.done then return end
    local rop = host.redis("PEXPIRE", ctx.key, S.lease_ms)
    if rop then ctx.mine[rop] = function() end end
    renew_lease(ctx)
  end
end

local function stop_lease(ctx)
  if ctx.lease_timer then host.cancel(ctx.lease_timer); ctx.lease_timer = nil end
end

local function release(ctx)
  if not ctx.claimed then return end
  local ok, v = pcall(redis, ctx, "GET", ctx.key)
  if ok and v == ctx.token then pcall(redis, ctx, "DEL", ctx.key) end
end

---------------------------------------------------------------------------
-- the workflow, in a nested coroutine so our own ops (lease renewals,
-- step-result deliveries) are handled while the engine waits

local function run_workflow(ctx, wf, attrs)
  local pending = ctx.step_pending -- step-result deliveries not yet reported
  local failed
  local reply, cid = ctx.reply, ctx.cid
  local opts = {
    on_step_result = function(step_id, payload, query)
      local env = encode({ correlation_id = cid, status = "step_result",
        result = { step_id = step_id, payload = payload, query = query } })
      local op, err = host.produce(reply, cid, env)
      if not op then failed = failed or tostring(err and err.message or err); return end
      pending[op] = true
      ctx.mine[op] = function(ok, v)
        pending[op] = nil
        if not ok then
          local f = ctx.step_failed
          f[#f + 1] = env
          ctx.step_error = tostring(v.message)
        end
      end
    end,
    retry_base_ms = S.backoff_base_ms,
  }
  local co = host.coroutine_create(function() return engine.execute(host, wf, attrs, opts) end)
  local ok, res, err = co_resume(co)
  while co_status(co) == "suspended" do
    local id, okk, v = co_yield("wait")
    local h = ctx.mine[id]
    if h then ctx.mine[id] = nil; h(okk, v)
    else ok, res, err = co_resume(co, id, okk, v) end
  end
  local killed = host.exec_killed()
  if killed then error(killed, 0) end
  if not ok then error(errors.classify(res), 0) end
  -- Step results are produced before the final message, keyed alike, so
  -- they precede it in their partition (the idempotent producer keeps the
  -- order); their delivery reports are collected after the final one is
  -- out, so the two waits overlap instead of adding up.
  if failed then transient("publishing a step result: " .. failed) end
  if not res then error(err, 0) end
  return res
end


---------------------------------------------------------------------------

local function parse(ctx)
  local ok, cmd = pcall(decode, ctx.raw)
  if not ok or type(cmd) ~= "table" then
    permanent(ok and "command is not a JSON object" or tostring(cmd))
  end
  ctx.cmd = cmd
  local rt = cmd.reply_topic
  if rt ~= nil and rt ~= null then
    if type(rt) ~= "string" or rt == "" then permanent("reply_topic must be a non-empty string") end
    ctx.reply = rt
  end
  local cid = cmd.correlation_id
  if cid == nil or cid == null or cid == "" then permanent("missing correlation_id") end
  if type(cid) ~= "string" then permanent("correlation_id must be a string") end
  ctx.cid = cid
  local name = cmd.workflow
  if name == nil or name == null or name == "" then permanent("missing workflow") end
  if type(name) ~= "string" then permanent("workflow must be a string") end
  ctx.wfname = name
  local attrs = cmd.attrs
  if attrs == nil or attrs == null then attrs = {} end
  if type(attrs) ~= "table" then permanent("attrs must be a JSON object") end
  return attrs
end

-- Publishes text to topic until its delivery report succeeds.
local function deliver_until_done(ctx, topic, text)
  local n = 0
  while true do
    local ok, err = pcall(deliver, ctx, topic, ctx.cid, text)
    if ok then return end
    n = n + 1
    log(ctx, "warn", "final message not delivered; retrying", { error = tostring(err.message or err), topic = topic })
    sleep(ctx, backoff_ms(mmin(n, 16)))
  end
end

-- After the final message: the step results' delivery reports.  A step
-- result that failed is published again, and the final message after it,
-- so the last final message still follows every step result.
local function collect_step_results(ctx)
  local pending = ctx.step_pending
  while next(pending) do
    local id, ok, v = co_yield("wait")
    local h = ctx.mine[id]
    if h then ctx.mine[id] = nil; h(ok, v) end
  end
  local failed = ctx.step_failed
  if #failed == 0 then return end
  log(ctx, "warn", "step results not delivered: publishing them and the final message again",
    { error = ctx.step_error, count = #failed })
  ctx.step_failed = {}
  for i = 1, #failed do deliver_until_done(ctx, ctx.reply, failed[i]) end
  deliver_until_done(ctx, ctx.reply, ctx.response)
end

local function dead_letter(ctx, err, attempts)
  log(ctx, "error", "dead-lettered", { error = tostring(err.message), class = err.class, attempts = attempts })
  deliver_until_done(ctx, dlq_topic(ctx.reply), dlq_envelope(ctx, err, attempts))
  if S.dedupe then release(ctx) end
  return true, "dlq"
end

-- One attempt: each phase remembers its outcome in ctx, so a retry resumes
-- where the last attempt failed (a workflow that ran is not run again
-- because storing its response failed).
local function attempt(ctx, attrs)
  if ctx.response == nil and S.dedupe and not ctx.claimed then
    local c = claim(ctx)
    if c ~= "claimed" then
      ctx.response, ctx.stored, ctx.duplicate = c, true, true
      return
    end
    ctx.claimed = true
  end
  if ctx.response == nil then
    local wf = runner.current().workflows[ctx.wfname]
    if not wf then permanent("unknown workflow '" .. ctx.wfname .. "'") end
    ctx.mine, ctx.step_pending, ctx.step_failed = {}, {}, {}
    ctx.done = false
    renew_lease(ctx)
    -- the engine takes attrs over: give each attempt its own copy
    local res = run_workflow(ctx, wf, ctx.attempts > 1 and decode(encode(attrs)) or attrs)
    ctx.done = true
    stop_lease(ctx)
    ctx.response = encode({ correlation_id = ctx.cid, status = "success", result = res })
  end
  if S.dedupe and not ctx.stored then
    redis(ctx, "SET", ctx.key, "done:" .. ctx.response, "PX", S.dedupe_ttl_ms)
    ctx.stored = true
  end
end

local function new_ctx(payload, meta_json)
  local meta = decode(meta_json)
  local ctx = { raw = payload, meta = meta, received = host.time(), reply = S.responses_topic,
                mine = {}, attempts = 0, step_pending = {}, step_failed = {} }
  return ctx
end

local function command(payload, meta_json)
  local ctx = new_ctx(payload, meta_json)
  local ok, attrs = pcall(parse, ctx)
  if not ok then return dead_letter(ctx, errors.classify(attrs), 1) end
  if not runner.current().workflows[ctx.wfname] then
    return dead_letter(ctx, { class = "permanent", message = "unknown workflow '" .. ctx.wfname .. "'" }, 1)
  end
  ctx.key = S.dedupe_prefix .. ctx.cid
  ctx.token = "lease:" .. S.owner .. ":" .. host.uuid()
  if S.log_payloads then log(ctx, "info", "command received", { payload = payload }) end
  while true do
    ctx.attempts = ctx.attempts + 1
    local aok, err = pcall(attempt, ctx, attrs)
    local killed = host.exec_killed()
    if killed then error(killed, 0) end -- the host dead-letters from a fresh coroutine
    if aok then break end
    ctx.done = true -- stops lease renewals until the next run
    stop_lease(ctx)
    err = errors.classify(err)
    if err.class ~= "transient" or ctx.attempts >= S.retry_attempts then
      return dead_letter(ctx, err, ctx.attempts)
    end
    local d = backoff_ms(ctx.attempts)
    log(ctx, "warn", "transient failure; retrying", { error = err.message, attempt = ctx.attempts, backoff_ms = d })
    sleep(ctx, d)
  end
  if ctx.duplicate then log(ctx, "info", "duplicate: re-publishing the stored response") end
  deliver_until_done(ctx, ctx.reply, ctx.response)
  collect_step_results(ctx)
  if S.log_payloads then log(ctx, "info", "response published", { payload = ctx.response }) end
  return true, ctx.duplicate and "duplicate" or "success"
end

-- entry "dlq": meta.error = {class, message, attempts}
local function dlq(payload, meta_json)
  local ctx = new_ctx(payload, meta_json)
  pcall(parse, ctx) -- for correlation id and reply topic, when it has them
  local e = ctx.meta.error or {}
  ctx.key = ctx.cid and (S.dedupe_prefix .. ctx.cid)
  return dead_letter(ctx, { class = e.class or "permanent", message = e.message or "failed" }, e.attempts or 1)
end

M.entries = { command = command, dlq = dlq }
return M
