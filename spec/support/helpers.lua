-- spec/support/helpers.lua: shared helpers for the engine specs.
local fakehost = require "support.fakehost"
local workflow = require "sio.workflow"
local engine = require "sio.engine"

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

function M.host(opts) return fakehost.new(opts) end

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

-- load(src, file, host, reg) -> wf (asserts it loads)
function M.load(src, file, h, reg)
  h = h or fakehost.new()
  local wf, errs = workflow.load_source(h, src, file or "wf.yaml", reg)
  if not wf then error("workflow did not load:\n" .. table.concat(errs, "\n"), 2) end
  return wf, h
end

-- load_errors(src, file, reg) -> errs (asserts it does NOT load)
function M.load_errors(src, file, reg, h)
  h = h or fakehost.new()
  local wf, errs = workflow.load_source(h, src, file or "wf.yaml", reg)
  assert(wf == nil, "workflow unexpectedly loaded")
  return errs, table.concat(errs, "\n")
end

-- run(h, wf, attrs, opts) -> result, err, published {{id, payload, query}, ...}
function M.run(h, wf, attrs, opts)
  local pubs = {}
  opts = opts or {}
  opts.on_step_result = function(id, payload, query) pubs[#pubs + 1] = { id = id, payload = payload, query = query } end
  local res, err = h:run(engine.execute, h, wf, attrs or {}, opts)
  return res, err, pubs
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
