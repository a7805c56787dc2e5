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

function M.ids(pubs)
  local t = {}
  for i, p in ipairs(pubs) do t[i] = p.id end
  return t
end

return M
