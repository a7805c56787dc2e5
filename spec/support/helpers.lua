-- spec/support/helpers.lua: shared helpers for the engine specs.
--
-- The engine runs where it runs in the daemon: inside the C sandbox, with
-- the host contract of src/sandbox/luahost.c, driven by sio.testing (its
-- recording backend and virtual clock).  There is no Lua stand-in for the
-- host: what these specs see is what a worker's engine does.
local testing = require "sio.testing"
local json = require "sio.json"

local M = {}

local tmp_n = 0
-- mkproject{["lua/tools/x.lua"] = "...", ...} -> dir (a fresh temp dir)
function M.mkproject(files)
  tmp_n = tmp_n + 1
  local dir = os.tmpname()
  os.remove(dir)
  dir = dir .. "_sio" .. tmp_n
  assert(os.execute("mkdir -p '" .. dir .. "/lua/tools' '" .. dir .. "/workflows'"))
  for path, src in pairs(files or {}) do
    local sub = path:match("^(.*)/[^/]+$")
    if sub then assert(os.execute("mkdir -p '" .. dir .. "/" .. sub .. "'")) end
    local f = assert(io.open(dir .. "/" .. path, "wb"))
    f:write(src)
    f:close()
  end
  return dir
end

-- binary() -> path of the sio-orchestrator binary under test
function M.binary()
  local cands = {}
  if os.getenv("SIO_BIN") then cands[#cands + 1] = os.getenv("SIO_BIN") end
  if os.getenv("SIO_BINARY_DIR") then cands[#cands + 1] = os.getenv("SIO_BINARY_DIR") .. "/src/sio-orchestrator" end
  cands[#cands + 1] = "build-harness/src/sio-orchestrator"
  cands[#cands + 1] = "build/src/sio-orchestrator"
  for _, p in ipairs(cands) do
    local f = io.open(p, "rb")
    if f then f:close() return p end
  end
  error("sio-orchestrator binary not found (tried " .. table.concat(cands, ", ") .. "); build it or set SIO_BIN", 0)
end

-- sh(s) -> s quoted for the shell
function M.sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- cli(args, env) -> stdout, stderr, exit code of `sio-orchestrator <args>`
-- (args already quoted; env a string of VAR=value words, may be nil)
function M.cli(args, env)
  local err = os.tmpname()
  local p = assert(io.popen(("ASAN_OPTIONS=detect_leaks=0 %s %s %s 2>%s"):format(
    env or "", M.sh(M.binary()), args, M.sh(err)), "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local f = assert(io.open(err, "rb"))
  local errout = f:read("a")
  f:close()
  os.remove(err)
  return out, errout, code
end

-- harness(opts) -> h: sio.testing.new(opts) on opts.root, or on a fresh
-- empty project (with opts.files in it, as mkproject takes them).
function M.harness(opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do if k ~= "files" and k ~= "tools" then o[k] = v end end
  o.root = o.root or M.mkproject(opts.files)
  local h = testing.new(o)
  for name, fn in pairs(opts.tools or {}) do h:stub_tool(name, fn) end
  return h
end

-- load(src, file, opts) -> wf, h: a harness (opts as harness takes them)
-- with src as an inline workflow (file's suffix picks the format; default
-- wf.yaml), and the workflow as the loader read it (h:workflow).  Asserts
-- it loads.
function M.load(src, file, opts)
  local h = M.harness(opts)
  local before = {}
  for _, i in ipairs(h:intents()) do before[i] = true end
  h:add_workflow(src, file or "wf.yaml")
  local errs = h:load_errors()
  if #errs > 0 then error("workflow did not load:\n" .. table.concat(errs, "\n"), 2) end
  for _, i in ipairs(h:intents()) do if not before[i] then h.intent = i end end
  return h:workflow(h.intent), h
end

-- load_errors(src, file, opts) -> errs, all: what loading src reports
-- (asserts it does NOT load).
function M.load_errors(src, file, opts)
  local h = M.harness(opts)
  h:add_workflow(src, file or "wf.yaml")
  local errs = h:load_errors()
  assert(#errs > 0, "workflow unexpectedly loaded")
  return errs, table.concat(errs, "\n")
end

-- run(h, wf, attrs, opts) -> result, err, published {{id, payload, query},
-- ...}, r: h:run on wf's intent.  err is r.error plus the failed step's
-- attempts (and killed = true for a limit).  opts.retry_base_ms sets the
-- backoff base.
function M.run(h, wf, attrs, opts)
  h.retry_base_ms = opts and opts.retry_base_ms or h.retry_base_ms
  local r = h:run(wf.intent, attrs or {})
  local pubs = {}
  for i, p in ipairs(r.published) do pubs[i] = { id = p.step_id, payload = p.payload, query = p.query } end
  if r.ok then return r.result, nil, pubs, r end
  local err = {}
  for k, v in pairs(r.error) do err[k] = v end
  local s = err.step and r.steps[err.step]
  if r.killed then err.killed = true elseif s then err.attempts = s.attempts end
  return nil, err, pubs, r
end

-- guard(expr, A) -> whether the guard `expr` lets a step run for attrs A.
function M.guard(expr, A)
  local h = M.harness()
  h:add_workflow(json.encode({ intent = "g", steps = { { id = "g", guard = expr, tool = { name = "echo" } } } }),
    "g.json")
  local r = h:run("g", A or {})
  r:expect_ok()
  return r.steps.g.status == "ok"
end

-- max_in_flight(r) -> the most ops (calls, not timers) open at once, on
-- the virtual clock: each from its start to its answer or cancellation.
function M.max_in_flight(r)
  local ev = {}
  for _, c in ipairs(r.calls) do
    local done = c.cancelled_at or (c.delay_ms and c.at + c.delay_ms) or math.huge
    ev[#ev + 1] = { c.at, 1 }
    ev[#ev + 1] = { done, -1 }
  end
  table.sort(ev, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local n, max = 0, 0
  for _, e in ipairs(ev) do n = n + e[2]; if n > max then max = n end end
  return max
end

-- cancelled(r) -> how many calls the engine abandoned
function M.cancelled(r)
  local n = 0
  for _, c in ipairs(r.calls) do if c.cancelled_at then n = n + 1 end end
  return n
end

-- `sio-orchestrator run intent --attrs attrs_json` -> its stdout lines (as
-- text) and exit code
function M.run_binary(intent, attrs_json, workflows, lua_dir)
  local out, _, code = M.cli(("run %s --attrs %s --workflows %s --lua %s"):format(
    M.sh(intent), M.sh(attrs_json), M.sh(workflows), M.sh(lua_dir)))
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, code
end

function M.ids(pubs)
  local t = {}
  for i, p in ipairs(pubs) do t[i] = p.id end
  return t
end

return M
