-- sio.workflow: load and validate WARPP workflows (YAML, JSON, Lua).
--
--   reg, errs = workflow.registry(host, {lua_dir = "lua", native_tools = {...}})
--   wf, errs  = workflow.load_file(host, path, reg)
--   wf, errs  = workflow.load_source(host, src, path, reg)   -- format by extension
--   res       = workflow.load_dir(host, dir, {registry = reg} or registry opts)
--               -> {workflows = {intent -> wf}, errors = {"file:line: msg", ...}, registry = reg}
--
-- Everything the per-command path needs is prepared here: guards, templates,
-- inline `run` code and Lua modules are compiled once (as factories taking
-- the command's environment), durations parsed, the DAG and its in-degrees
-- precomputed. An invalid workflow is not returned; every error names the
-- file, the line when it can be found, and the step.
--
-- Step order: when no step declares `depends_on`, steps run in file order
-- (each depends on the previous one, as in the seed system). When any step
-- declares `depends_on`, the workflow is a DAG: a step without `depends_on`
-- has no dependencies.
local json = require "sio.json"
local guard = require "sio.guard"
local template = require "sio.template"
local api = require "sio.api"

local M = {}

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall
local sformat = string.format

---------------------------------------------------------------------------
-- files

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- List the entries of a directory: host.list_dir if the host has one, else
-- LuaFileSystem, else `ls`.
local function list_dir(host, dir)
  if host and host.list_dir then return host.list_dir(dir) or {} end
  local ok, lfs = pcall(require, "lfs")
  local out = {}
  if ok and type(lfs) == "table" then
    if lfs.attributes(dir, "mode") ~= "directory" then return out end
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." then out[#out + 1] = name end
    end
  else
    local p = io.popen("ls -1 '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
    if p then
      for name in p:lines() do out[#out + 1] = name end
      p:close()
    end
  end
  table.sort(out)
  return out
end
M.list_dir = list_dir

---------------------------------------------------------------------------
-- line finding (good enough: scan the source text)

local function lines_of(src)
  local lines = {}
  for l in (src .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return lines
end

local function escape(s) return (tostring(s):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

local function is_id_line(line, id)
  local s, e = line:find("[\"']?id[\"']?%s*[:=]%s*[\"']?" .. escape(id))
  if not s then return false end
  local before = s > 1 and line:sub(s - 1, s - 1) or " "
  local after = line:sub(e + 1, e + 1)
  return not before:match("[%w_]") and not after:match("[%w_%-]")
end

local function any_id_line(line)
  return line:find("^%s*%-?%s*[{]?%s*[\"']?id[\"']?%s*[:=]") ~= nil
end

-- find_line(ctx, id, key) -> line number or nil
local function find_line(ctx, id, key)
  local lines = ctx.lines
  if not lines then lines = lines_of(ctx.src or ""); ctx.lines = lines end
  local idl
  if id then
    for n, l in ipairs(lines) do
      if is_id_line(l, id) then idl = n; break end
    end
  end
  if not key then return idl end
  local kp = "[\"']?" .. escape(key) .. "[\"']?%s*[:=]"
  local from = idl or 1
  for n = from, #lines do
    local l = lines[n]
    if n > from and idl and any_id_line(l) then break end
    local s = l:find(kp)
    if s and (s == 1 or not l:sub(s - 1, s - 1):match("[%w_]")) then return n end
  end
  -- the key may come before the id inside the same step (YAML "- tool:")
  if idl then
    for n = idl - 1, math.max(1, idl - 15), -1 do
      local l = lines[n]
      if l:find(kp) then return n end
      if l:find("^%s*%-") then break end
    end
  end
  return idl
end

local function add_error(ctx, step_id, key, msg)
  local line = find_line(ctx, step_id, key)
  local where = ctx.file .. (line and (":" .. line) or "")
  if step_id then
    ctx.errs[#ctx.errs + 1] = sformat("%s: step %s: %s", where, tostring(step_id), msg)
  else
    ctx.errs[#ctx.errs + 1] = sformat("%s: %s", where, msg)
  end
end

---------------------------------------------------------------------------
-- user code compiled as factories: local _ENV = ...; <source>

local function compile_module(host, path, chunkname)
  local src, err = read_file(path)
  if not src then return nil, err end
  src = src:gsub("^#![^\n]*", "")
  local fn, cerr = host.compile("local _ENV = ...; " .. src, chunkname or ("@" .. path))
  if not fn then return nil, cerr end
  return fn
end
M.compile_module = compile_module

---------------------------------------------------------------------------
-- registry: tools (built-in, lua/tools/*.lua, native) and user filters

function M.registry(host, opts)
  opts = opts or {}
  local lua_dir = opts.lua_dir or "lua"
  local reg = { host = host, lua_dir = lua_dir, tools = {}, filters = {}, errors = {} }
  for name, t in pairs(api.builtin_tools) do
    reg.tools[name] = { kind = "builtin", name = name, fn = t.fn, sync = t.sync }
  end
  for k, v in pairs(opts.native_tools or {}) do
    local name = type(k) == "string" and k or v
    reg.tools[name] = { kind = "native", name = name }
  end
  local tdir = lua_dir .. "/tools"
  for _, fname in ipairs(list_dir(host, tdir)) do
    local name = fname:match("^([%w_%-]+)%.lua$")
    if name then
      local path = tdir .. "/" .. fname
      local factory, err = compile_module(host, path)
      if factory then
        reg.tools[name] = { kind = "lua", name = name, factory = factory, path = path }
      else
        reg.errors[#reg.errors + 1] = tostring(err)
      end
    end
  end
  -- user filters: lua/filters.lua returns name -> function(value, ...)
  local fpath = lua_dir .. "/filters.lua"
  if file_exists(fpath) then
    local factory, err = compile_module(host, fpath)
    if not factory then
      reg.errors[#reg.errors + 1] = tostring(err)
    else
      local ok, t = pcall(factory, host.safe_env())
      if not ok then
        reg.errors[#reg.errors + 1] = fpath .. ": " .. tostring(t)
      elseif type(t) ~= "table" then
        reg.errors[#reg.errors + 1] = fpath .. ": must return a table of name -> function"
      else
        for name, f in pairs(t) do
          if type(name) == "string" and type(f) == "function" then reg.filters[name] = true end
        end
        reg.filters_factory = factory
        reg.filters_path = fpath
      end
    end
  end
  return reg, reg.errors
end

---------------------------------------------------------------------------
-- parsing

local function denull(v, null1, null2)
  if v == null1 or v == null2 then return nil end
  if type(v) == "table" then
    for k, sub in pairs(v) do
      if sub == null1 or sub == null2 then v[k] = nil
      elseif type(sub) == "table" then denull(sub, null1, null2) end
    end
  end
  return v
end

local function parse(host, src, file)
  local ext = file:match("%.([%w]+)$")
  ext = ext and ext:lower()
  if ext == "yaml" or ext == "yml" then
    local lyaml = require "lyaml"
    local ok, t = pcall(lyaml.load, src)
    if not ok then
      local msg = tostring(t)
      local line, rest = msg:match("^(%d+):%d+: (.*)$")
      if line then return nil, sformat("%s:%s: YAML: %s", file, line, rest) end
      return nil, file .. ": YAML: " .. msg
    end
    return denull(t, lyaml.null, json.null), "yaml"
  elseif ext == "json" then
    local ok, t = pcall(json.decode, src)
    if not ok then
      local msg = tostring(t)
      local why, line, col = msg:match("^malformed JSON: (.*) at line (%d+), column (%d+)$")
      if why then return nil, sformat("%s:%s: JSON: %s (column %s)", file, line, why, col) end
      return nil, file .. ": JSON: " .. msg
    end
    return denull(t, json.null), "json"
  elseif ext == "lua" then
    local factory, err = host.compile("local _ENV = ...; " .. src:gsub("^#![^\n]*", ""), "@" .. file)
    if not factory then return nil, tostring(err) end
    local ok, t = pcall(factory, host.safe_env())
    if not ok then return nil, file .. ": " .. tostring(type(t) == "table" and t.message or t) end
    if type(t) ~= "table" then return nil, file .. ": a Lua workflow must return a table" end
    return t, "lua", factory
  end
  return nil, file .. ": unknown workflow file type (want .yaml, .yml, .json or .lua)"
end

---------------------------------------------------------------------------
-- building a workflow

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local function opt_bool(ctx, id, key, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then add_error(ctx, id, key, key .. " must be true or false"); return default end
  return v
end

local function resolve_run_path(lua_dir, s)
  local p = s:gsub("%.lua$", "")
  if not p:find("/", 1, true) then p = p:gsub("%.", "/") end
  return lua_dir .. "/" .. p .. ".lua"
end

local function build_step(ctx, wf, raw, i)
  local host, reg = ctx.host, ctx.reg
  local id = raw.id
  local step = { id = id, index = i, text = raw.text }
  local where = "step " .. id
  step.publish = opt_bool(ctx, id, "publish_result", raw.publish_result, false)
  step.continue_on_error = opt_bool(ctx, id, "continue_on_error", raw.continue_on_error, false)
  step.strict = opt_bool(ctx, id, "strict_templates", raw.strict_templates, wf.strict)

  -- retries
  local r = raw.retries
  if r == nil then step.retries = 0
  elseif type(r) ~= "number" or r < 0 or r % 1 ~= 0 then
    add_error(ctx, id, "retries", "retries must be an integer >= 0, got " .. tostring(r))
    step.retries = 0
  else step.retries = math.tointeger(r) end

  -- timeout
  if raw.timeout ~= nil then
    local ms, err = api.parse_duration(raw.timeout)
    if not ms then add_error(ctx, id, "timeout", "timeout: " .. err)
    elseif ms <= 0 then add_error(ctx, id, "timeout", "timeout must be > 0")
    else step.timeout_ms = ms; step.timeout_text = tostring(raw.timeout) end
  end

  -- guard
  local g = raw.guard
  if g ~= nil then
    if type(g) == "function" and ctx.fmt == "lua" then
      step.guard_lua = true; step.has_guard = true
    elseif type(g) == "string" then
      local line = find_line(ctx, id, "guard")
      local chunk = ctx.fmt == "lua" and ("=" .. ctx.file .. ":" .. id .. ".guard") or ("@" .. ctx.file)
      local f, err = guard.compile(host, g, chunk, ctx.fmt ~= "lua" and line or 1)
      if not f then add_error(ctx, id, "guard", err)
      else step.guard = f; step.has_guard = true end
    else
      add_error(ctx, id, "guard", "guard must be a string expression")
    end
  end

  local user = false
  local fn_opts = { filters = reg.filters, strict = step.strict }
  if ctx.fmt == "lua" then
    fn_opts.fn = function(path)
      ctx.has_functions = true
      return function(A, cx)
        local f = cx:wf_instance().steps[i]
        f = f.tool and f.tool.args or f.args
        for k = 1, #path do f = f[path[k]] end
        return f(A)
      end
    end
  end

  -- tool or run
  local tool, run = raw.tool, raw.run
  if tool ~= nil and run ~= nil then add_error(ctx, id, "run", "a step has either tool or run, not both") end
  local args_src = raw.args
  if tool ~= nil then
    if type(tool) == "string" then tool = { name = tool } end
    if type(tool) ~= "table" or type(tool.name) ~= "string" then
      add_error(ctx, id, "tool", "tool must be {name = ..., args = ...}")
    else
      local entry = reg.tools[tool.name]
      if not entry then
        add_error(ctx, id, "tool", "unknown tool '" .. tool.name .. "'")
      else
        step.kind = "tool"; step.tool = entry; step.tool_name = tool.name
        if entry.kind ~= "builtin" then user = true end
      end
      if tool.args ~= nil then args_src = tool.args end
    end
  elseif run ~= nil then
    step.kind = "run"; user = true
    if type(run) == "function" and ctx.fmt == "lua" then
      step.run_lua = true; ctx.has_functions = true
    elseif type(run) ~= "string" then
      add_error(ctx, id, "run", "run must be Lua code or a module path under lua/")
    elseif run:find("^[%w_%-%./]+$") then
      local path = resolve_run_path(reg.lua_dir, run)
      local f, err = compile_module(host, path)
      if not f then add_error(ctx, id, "run", "run module '" .. run .. "': " .. tostring(err))
      else step.run_factory = f; step.run_module = true end
    else
      local line = ctx.fmt ~= "lua" and find_line(ctx, id, "run") or 1
      -- a YAML block scalar (`run: |`) starts on the next line
      if ctx.fmt == "yaml" and ctx.lines and ctx.lines[line] and ctx.lines[line]:find("run%s*:%s*[|>]") then line = line + 1 end
      local chunk = ctx.fmt == "lua" and ("=" .. ctx.file .. ":" .. id .. ".run") or ("@" .. ctx.file)
      local src = "local _ENV = ...; return function(A, args, ctx) " .. string.rep("\n", line - 1) .. run .. "\nend"
      local f, err = host.compile(src, chunk)
      if not f then add_error(ctx, id, "run", "run code does not compile: " .. tostring(err))
      else step.run_factory = f end
    end
  else
    add_error(ctx, id, nil, "a step needs a tool or run")
  end

  if type(args_src) == "function" and ctx.fmt == "lua" then
    ctx.has_functions = true; user = true
    step.args = function(A, cx)
      local s = cx:wf_instance().steps[i]
      local f = s.tool and type(s.tool) == "table" and s.tool.args or s.args
      return f(A)
    end
  elseif args_src ~= nil then
    if type(args_src) ~= "table" then
      add_error(ctx, id, "args", "tool args must be a table")
    else
      local plan, flags = template.compile_value(args_src, where .. " args", fn_opts)
      if not plan then add_error(ctx, id, "args", flags)
      else step.args = plan; if flags.user then user = true end end
    end
  end

  step.sync = step.kind == "tool" and step.tool and step.tool.sync and not user
    and not step.timeout_ms and step.retries == 0 or false
  return step
end

local function find_cycle(steps, deps)
  local color, stack = {}, {}
  local cycle
  local function visit(i)
    color[i] = 1; stack[#stack + 1] = i
    for _, d in ipairs(deps[i]) do
      if color[d] == 1 then
        local names, start = {}, nil
        for k = 1, #stack do if stack[k] == d then start = k end end
        for k = start, #stack do names[#names + 1] = steps[stack[k]].id end
        names[#names + 1] = steps[d].id
        cycle = names
        return true
      elseif not color[d] and visit(d) then return true end
    end
    color[i] = 2; stack[#stack] = nil
    return false
  end
  for i = 1, #steps do
    if not color[i] and visit(i) then break end
  end
  return cycle
end

local function build(ctx, raw)
  local wf = { file = ctx.file, format = ctx.fmt }
  if type(raw) ~= "table" then add_error(ctx, nil, nil, "a workflow must be a table/object"); return nil end
  if type(raw.intent) ~= "string" or raw.intent == "" then
    add_error(ctx, nil, "intent", "missing intent")
  end
  wf.intent = raw.intent
  wf.description = raw.description
  wf.keywords = raw.keywords
  local mc = raw.max_concurrency
  if mc == nil then wf.max_concurrency = 4
  elseif type(mc) ~= "number" or mc < 1 or mc % 1 ~= 0 then
    add_error(ctx, nil, "max_concurrency", "max_concurrency must be an integer >= 1")
    wf.max_concurrency = 4
  else wf.max_concurrency = math.tointeger(mc) end
  wf.fail_fast = opt_bool(ctx, nil, "fail_fast", raw.fail_fast, true)
  wf.strict = opt_bool(ctx, nil, "strict_templates", raw.strict_templates, false)

  local rsteps = raw.steps
  if rsteps == nil then rsteps = {} end
  if not is_list(rsteps) then add_error(ctx, nil, "steps", "steps must be a list"); return nil end

  local steps, by_id, ids_ok = {}, {}, true
  for i, rs in ipairs(rsteps) do
    if type(rs) ~= "table" then
      add_error(ctx, nil, "steps", "step #" .. i .. " must be a table"); ids_ok = false
    elseif type(rs.id) ~= "string" or rs.id == "" then
      add_error(ctx, nil, "steps", "step #" .. i .. " has no id"); ids_ok = false
    elseif by_id[rs.id] then
      add_error(ctx, rs.id, nil, "duplicate step id '" .. rs.id .. "' (steps #" .. by_id[rs.id] .. " and #" .. i .. ")")
      ids_ok = false
    else
      by_id[rs.id] = i
    end
  end
  if not ids_ok then return nil end

  -- dependencies
  local dag = false
  for _, rs in ipairs(rsteps) do if rs.depends_on ~= nil then dag = true end end
  local deps = {}
  for i, rs in ipairs(rsteps) do
    local d = {}
    if dag then
      local list = rs.depends_on
      if type(list) == "string" then list = { list } end
      if list ~= nil and not is_list(list) then
        add_error(ctx, rs.id, "depends_on", "depends_on must be a list of step ids")
        list = {}
      end
      for _, dep in ipairs(list or {}) do
        local j = by_id[dep]
        if not j then add_error(ctx, rs.id, "depends_on", "depends_on unknown step '" .. tostring(dep) .. "'")
        elseif j == i then add_error(ctx, rs.id, "depends_on", "a step cannot depend on itself")
        else d[#d + 1] = j end
      end
    elseif i > 1 then
      d[1] = i - 1
    end
    deps[i] = d
  end
  if dag then
    local cycle = find_cycle(rsteps, deps)
    if cycle then
      add_error(ctx, cycle[1], "depends_on", "dependency cycle: " .. table.concat(cycle, " -> "))
    end
  end

  for i, rs in ipairs(rsteps) do steps[i] = build_step(ctx, wf, rs, i) end

  local indeg, dependants = {}, {}
  for i = 1, #steps do dependants[i] = {} end
  for i = 1, #steps do
    indeg[i] = #deps[i]
    steps[i].deps = deps[i]
    for _, j in ipairs(deps[i]) do local t = dependants[j]; t[#t + 1] = i end
  end
  for i = 1, #steps do steps[i].dependants = dependants[i] end
  wf.steps, wf.n, wf.indeg, wf.dag = steps, #steps, indeg, dag

  -- declared output
  local out = raw.output
  if out == nil then out = raw.result end
  if out ~= nil then
    local opts = { filters = ctx.reg.filters, strict = wf.strict }
    if ctx.fmt == "lua" then
      opts.fn = function(path)
        ctx.has_functions = true
        return function(A, cx)
          local inst = cx:wf_instance()
          local f = inst.output; if f == nil then f = inst.result end
          for k = 1, #path do f = f[path[k]] end
          return f(A)
        end
      end
    end
    local plan, flags = template.compile_value(out, "output", opts)
    if not plan then add_error(ctx, nil, raw.output ~= nil and "output" or "result", flags)
    else wf.output = plan end
  end
  wf.has_functions = ctx.has_functions or false
  wf.filters_factory = ctx.reg.filters_factory
  wf.registry = ctx.reg
  return wf
end

-- load_source(host, src, file, reg) -> wf | nil, errs
function M.load_source(host, src, file, reg)
  reg = reg or M.registry(host)
  local raw, fmt, factory = parse(host, src, file)
  if not raw then return nil, { fmt } end
  local ctx = { host = host, reg = reg, file = file, src = src, fmt = fmt, errs = {} }
  local wf = build(ctx, raw)
  if #ctx.errs > 0 or not wf then return nil, ctx.errs end
  if wf.has_functions then wf.factory = factory end
  return wf
end

-- load_file(host, path, reg) -> wf | nil, errs
function M.load_file(host, path, reg)
  local src, err = read_file(path)
  if not src then return nil, { path .. ": " .. tostring(err) } end
  return M.load_source(host, src, path, reg)
end

-- load_dir(host, dir, opts) -> {workflows = {intent -> wf}, errors = {...}, registry = reg}
-- opts: {registry = reg} or the options of workflow.registry().
function M.load_dir(host, dir, opts)
  opts = opts or {}
  local reg, regerrs = opts.registry, nil
  if not reg then reg, regerrs = M.registry(host, opts) end
  local res = { workflows = {}, errors = {}, registry = reg }
  for _, e in ipairs(regerrs or reg.errors or {}) do res.errors[#res.errors + 1] = e end
  local seen = {}
  for _, name in ipairs(list_dir(host, dir)) do
    if name:find("%.ya?ml$") or name:find("%.json$") or name:find("%.lua$") then
      local path = dir .. "/" .. name
      local wf, errs = M.load_file(host, path, reg)
      if not wf then
        for _, e in ipairs(errs) do res.errors[#res.errors + 1] = e end
      elseif seen[wf.intent] then
        local ctx = { file = path, errs = res.errors, src = read_file(path) }
        add_error(ctx, nil, "intent", "duplicate intent '" .. wf.intent .. "' (already defined in " .. seen[wf.intent] .. ")")
      else
        seen[wf.intent] = path
        res.workflows[wf.intent] = wf
      end
    end
  end
  return res
end

return M
