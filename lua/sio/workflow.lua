-- sio.workflow: load and validate WARPP workflows (YAML, JSON, Lua).
--
--   reg, errs = workflow.registry(host, {lua_dir = "lua", lua_prefix = "", native_tools = {...}})
--   wf, errs  = workflow.load_file(host, path, reg [, name])
--   wf, errs  = workflow.load_source(host, src, name, reg)   -- format by extension
--   files     = workflow.list(host, dir [, prefix]) -> {{path =, name =}, ...}
--   set       = workflow.new_set(reg)
--   workflow.add_file(host, set, file)    -- one entry of list(); errors into set
--   workflow.add_error(set, name, msg)    -- "name: msg" into set.errors
--   res       = workflow.load_dir(host, dir, {registry = reg, prefix = ""} or registry opts)
--               -> {workflows = {intent -> wf}, errors = {"file:line: msg", ...}, registry = reg}
--
-- Names.  Every message and every chunk name of user code names a file by
-- its name, not the path it was read from: a workflow file relative to the
-- folder it was listed from (list's prefix + file name; the service uses no
-- prefix, so an error in a dead-letter entry reads "triage.yaml:12: ...",
-- never a path of the host's file system), a file under lua/ relative to
-- that folder (lua_prefix + "tools/lookup.lua"), as the sandbox's require
-- names modules.  wf.file is the name, wf.path the path read.
--
-- Limits.  Loading runs user code (Lua workflow files, filters.lua) under
-- the caller's execution; a limit breach is never reported as a load error
-- of the file (the execution is dead from then on): it is raised, and the
-- caller (runner.load_step) gives each file an execution of its own and
-- records the breach against the file being loaded (set.loading).
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
local errors = require "sio.errors"
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
-- Reads path; on failure returns nil and a message naming `name` (io's own
-- message names the path).
local function read_named(path, name)
  local src, err = read_file(path)
  if src then return src end
  local why = tostring(err)
  if why:sub(1, #path + 2) == path .. ": " then why = why:sub(#path + 3) end
  return nil, name .. ": cannot read: " .. why
end

-- A limit breach of the running execution is raised, never reported as an
-- error of the file (see the top of this file).
local function raise_if_killed(host)
  local k = host.exec_killed and host.exec_killed()
  if k then error(k, 0) end
end

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

-- compile_module(host, path, name) -> factory | nil, "name:line: msg"
local function compile_module(host, path, name)
  local src, err = read_named(path, name)
  if not src then return nil, err end
  src = src:gsub("^#![^\n]*", "")
  local fn, cerr = host.compile("local _ENV = ...; " .. src, "@" .. name)
  raise_if_killed(host)
  if not fn then return nil, cerr end
  return fn
end
M.compile_module = compile_module

-- prepare(factory) -> factory, pure
-- A guard or inline `run` whose function reads no global (it has no _ENV
-- upvalue, so it sees only its arguments, literals and operators) is
-- instantiated once here and shared by every command: it can hold no
-- state of its own, and the command needs no environment for it.  Its
-- factory then returns that instance whatever env it is given (pure =
-- true, so the engine passes none).  Only for factories whose call runs
-- no user code (the code is inside the returned function).
local getupvalue = debug.getupvalue
local function prepare(factory)
  local fn = factory(nil)
  if type(fn) == "function" and getupvalue(fn, 1) == nil then
    return function() return fn end, true
  end
  return factory, false
end

---------------------------------------------------------------------------
-- registry: tools (built-in, lua/tools/*.lua, native) and user filters

-- registry(host, opts) -> reg, errs: registry_base, then registry_user.
function M.registry(host, opts)
  local reg = M.registry_base(host, opts)
  M.registry_user(host, reg)
  return reg, reg.errors
end

-- The built-in and native tools (no user code runs).
function M.registry_base(host, opts)
  opts = opts or {}
  -- modules: the lua/ modules user code requires, compiled on first use
  -- and shared by every command of this set (host.safe_env)
  local reg = { host = host, lua_dir = opts.lua_dir or "lua", lua_prefix = opts.lua_prefix or "",
                tools = {}, filters = {}, errors = {}, modules = {} }
  for name, t in pairs(api.builtin_tools) do
    reg.tools[name] = { kind = "builtin", name = name, fn = t.fn, sync = t.sync }
  end
  for k, v in pairs(opts.native_tools or {}) do
    local name = type(k) == "string" and k or v
    if reg.tools[name] then -- a built-in: the engine's names win, and say so
      reg.errors[#reg.errors + 1] = ("native tool '%s' (sio_tool_register) has the name of a built-in tool")
        :format(name)
    else
      reg.tools[name] = { kind = "native", name = name }
    end
  end
  return reg
end

-- Adds lua/tools/*.lua and lua/filters.lua to reg; their errors go to
-- reg.errors.  reg.loading names the file being loaded.
function M.registry_user(host, reg)
  local lua_dir, lua_prefix = reg.lua_dir, reg.lua_prefix
  local tdir = lua_dir .. "/tools"
  for _, fname in ipairs(list_dir(host, tdir)) do
    local name = fname:match("^([%w_%-]+)%.lua$")
    if name then
      local path, rel = tdir .. "/" .. fname, lua_prefix .. "tools/" .. fname
      reg.loading = rel
      local factory, err = compile_module(host, path, rel)
      if factory then
        reg.tools[name] = { kind = "lua", name = name, factory = factory, file = rel }
      else
        reg.errors[#reg.errors + 1] = tostring(err)
      end
    end
  end
  -- user filters: lua/filters.lua returns name -> function(value, ...)
  local fpath, frel = lua_dir .. "/filters.lua", lua_prefix .. "filters.lua"
  if file_exists(fpath) then
    reg.loading = frel
    local factory, err = compile_module(host, fpath, frel)
    if not factory then
      reg.errors[#reg.errors + 1] = tostring(err)
    else
      local ok, t = pcall(factory, host.safe_env())
      raise_if_killed(host)
      if not ok then
        reg.errors[#reg.errors + 1] = frel .. ": " .. errors.describe(t)
      elseif type(t) ~= "table" then
        reg.errors[#reg.errors + 1] = frel .. ": must return a table of name -> function"
      else
        for name, f in pairs(t) do
          if type(name) == "string" and type(f) == "function" then reg.filters[name] = true end
        end
        reg.filters_factory = factory
        reg.filters_path = frel
      end
    end
  end
  reg.loading = nil
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
    raise_if_killed(host)
    if not ok then
      local msg = errors.describe(t)
      local line, rest = msg:match("^(%d+):%d+: (.*)$")
      if line then return nil, sformat("%s:%s: YAML: %s", file, line, rest) end
      return nil, file .. ": YAML: " .. msg
    end
    return denull(t, lyaml.null, json.null), "yaml"
  elseif ext == "json" then
    local ok, t = pcall(json.decode, src)
    raise_if_killed(host)
    if not ok then
      local msg = errors.describe(t)
      local why, line, col = msg:match("^malformed JSON: (.*) at line (%d+), column (%d+)$")
      if why then return nil, sformat("%s:%s: JSON: %s (column %s)", file, line, why, col) end
      return nil, file .. ": JSON: " .. msg
    end
    return denull(t, json.null), "json"
  elseif ext == "lua" then
    local factory, err = host.compile("local _ENV = ...; " .. src:gsub("^#![^\n]*", ""), "@" .. file)
    raise_if_killed(host)
    if not factory then return nil, tostring(err) end
    local ok, t = pcall(factory, host.safe_env())
    raise_if_killed(host)
    if not ok then return nil, file .. ": " .. errors.describe(t) end
    if type(t) ~= "table" then return nil, file .. ": a Lua workflow must return a table" end
    return t, "lua", factory
  end
  return nil, file .. ": unknown workflow file type (want .yaml, .yml, .json or .lua)"
end

---------------------------------------------------------------------------
-- building a workflow

-- A list: keys 1..n and nothing else, with no hole (a YAML `- ` with no
-- value, or a null, leaves one: ipairs would stop there and # may point
-- past it).
local function is_list(t)
  if type(t) ~= "table" then return false end
  local n, count = #t, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
    count = count + 1
  end
  return count == n
end

-- The first missing index of a table whose keys are positive integers
-- (a list with a hole), or nil.
local function list_hole(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) == "integer" and k > n then n = k end
  end
  for i = 1, n do if t[i] == nil then return i end end
  return nil
end

local function opt_bool(ctx, id, key, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then add_error(ctx, id, key, key .. " must be true or false"); return default end
  return v
end

-- run: a.b or a/b(.lua) -> path, name (relative to lua/, see "Names")
local function resolve_run_path(reg, s)
  local p = s:gsub("%.lua$", "")
  if not p:find("/", 1, true) then p = p:gsub("%.", "/") end
  return reg.lua_dir .. "/" .. p .. ".lua", reg.lua_prefix .. p .. ".lua"
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
    add_error(ctx, id, "retries", "retries must be an integer >= 0, got " .. errors.value_text(r))
    step.retries = 0
  else step.retries = math.tointeger(r) end

  -- timeout
  if raw.timeout ~= nil then
    local ms, err = api.duration_ms(host, raw.timeout)
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
      else step.guard, step.guard_pure = prepare(f); step.has_guard = true end
    else
      add_error(ctx, id, "guard", "guard must be a string expression")
    end
  end

  local user = false
  local fn_opts = { filters = reg.filters, strict = step.strict, names = wf.values_allowed }
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
      local path, name = resolve_run_path(reg, run)
      local f, err = compile_module(host, path, name)
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
      else step.run_factory, step.run_pure = prepare(f) end
    end
  else
    add_error(ctx, id, nil, "a step needs a tool or run")
  end

  local user_args = false
  if type(args_src) == "function" and ctx.fmt == "lua" then
    ctx.has_functions = true; user = true; user_args = true
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
      else step.args = plan; if flags.user then user = true; user_args = true end end
    end
  end

  step.sync = step.kind == "tool" and step.tool and step.tool.sync and not user
    and not step.timeout_ms and step.retries == 0 or false
  -- whether the step's coroutine runs user code (the engine arms it)
  step.user_code = step.kind == "run" or (step.tool and step.tool.kind == "lua") or user_args
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

-- `config:` / `secrets:` -> a list of names (1-64 of A-Z a-z 0-9 _ -, as
-- src/core/wfvalues.c names values).
local function name_list(ctx, key, v)
  if v == nil then return {} end
  if not is_list(v) then add_error(ctx, nil, key, key .. " must be a list of names"); return {} end
  local out = {}
  for _, n in ipairs(v) do
    if type(n) ~= "string" or #n > 64 or not n:find("^[%w_%-]+$") then
      add_error(ctx, nil, key, key .. ": " .. errors.value_text(n) .. " is not a name (1-64 of A-Z a-z 0-9 _ -)")
    else
      out[#out + 1] = n
    end
  end
  return out
end

-- Step ids the engine writes into A itself (attrs normalisation).
local RESERVED_IDS = { utter = true, query = true }

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
  -- the configuration and secret names it may read (engine.lua Cmd:value)
  wf.config = name_list(ctx, "config", raw.config)
  wf.secrets = name_list(ctx, "secrets", raw.secrets)
  wf.values_allowed = { config = {}, secret = {} }
  for _, n in ipairs(wf.config) do wf.values_allowed.config[n] = true end
  for _, n in ipairs(wf.secrets) do wf.values_allowed.secret[n] = true end

  local rsteps = raw.steps
  if rsteps == nil then rsteps = {} end
  local hole = type(rsteps) == "table" and list_hole(rsteps)
  if hole then add_error(ctx, nil, "steps", "step #" .. hole .. " is empty (null)"); return nil end
  if not is_list(rsteps) then add_error(ctx, nil, "steps", "steps must be a list"); return nil end

  local steps, by_id, ids_ok = {}, {}, true
  for i, rs in ipairs(rsteps) do
    if type(rs) ~= "table" then
      add_error(ctx, nil, "steps", "step #" .. i .. " must be a table"); ids_ok = false
    elseif type(rs.id) ~= "string" or rs.id == "" then
      add_error(ctx, nil, "steps", "step #" .. i .. " has no id"); ids_ok = false
    elseif RESERVED_IDS[rs.id] then
      add_error(ctx, rs.id, nil, "step id '" .. rs.id .. "' is reserved: A." .. rs.id .. " holds the command's query")
      ids_ok = false
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
        if not j then add_error(ctx, rs.id, "depends_on", "depends_on unknown step '" .. errors.value_text(dep) .. "'")
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

  local step_ids = {}
  for i, rs in ipairs(rsteps) do steps[i] = build_step(ctx, wf, rs, i); step_ids[i] = rs.id end
  wf.step_ids = step_ids

  local indeg, dependants = {}, {}
  for i = 1, #steps do dependants[i] = {} end
  for i = 1, #steps do
    indeg[i] = #deps[i]
    steps[i].deps = deps[i]
    for _, j in ipairs(deps[i]) do local t = dependants[j]; t[#t + 1] = i end
  end
  for i = 1, #steps do steps[i].dependants = dependants[i] end
  wf.steps, wf.n, wf.indeg, wf.dag = steps, #steps, indeg, dag

  -- The plan: the order steps run in when none of them waits (the engine
  -- starts the ready step first in file order), and whether a command can
  -- simply run down it (straight): every step sync (a built-in tool run
  -- inline) and none guarded, so none waits, is skipped or is dropped.
  local order, left, placed = {}, {}, {}
  for i = 1, #steps do left[i] = indeg[i] end
  for k = 1, #steps do
    for i = 1, #steps do
      if not placed[i] and left[i] == 0 then
        placed[i] = true; order[k] = i
        for _, d in ipairs(dependants[i]) do left[d] = left[d] - 1 end
        break
      end
    end
  end
  local straight = #order == #steps
  for i = 1, #steps do
    if not steps[i].sync or steps[i].has_guard then straight = false end
  end
  wf.order, wf.straight = order, straight

  -- declared output
  local out = raw.output
  if out == nil then out = raw.result end
  if out ~= nil then
    local opts = { filters = ctx.reg.filters, strict = wf.strict, names = wf.values_allowed }
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

-- load_source(host, src, name, reg) -> wf | nil, errs
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

-- load_file(host, path, reg [, name]) -> wf | nil, errs
function M.load_file(host, path, reg, name)
  name = name or path
  local src, err = read_named(path, name)
  if not src then return nil, { err } end
  local wf, errs = M.load_source(host, src, name, reg)
  if wf then wf.path = path end
  return wf, errs
end

local function is_workflow_file(name)
  return name:find("%.ya?ml$") or name:find("%.json$") or name:find("%.lua$")
end

-- list(host, dir [, prefix]) -> {{path = dir/x.yaml, name = prefix .. "x.yaml"}, ...}
-- The workflow files of dir, sorted by name.
function M.list(host, dir, prefix)
  local out = {}
  for _, name in ipairs(list_dir(host, dir)) do
    if is_workflow_file(name) then
      out[#out + 1] = { path = dir .. "/" .. name, name = (prefix or "") .. name }
    end
  end
  return out
end

-- new_set(reg) -> {workflows = {intent -> wf}, errors = {...}, registry = reg}
function M.new_set(reg)
  local set = { workflows = {}, errors = {}, registry = reg, seen = {} }
  for _, e in ipairs(reg.errors or {}) do set.errors[#set.errors + 1] = e end
  return set
end

function M.add_error(set, name, msg)
  set.errors[#set.errors + 1] = name .. ": " .. msg
end

-- add_file(host, set, {path =, name =}): loads one file into set.  The
-- first file of an intent wins; a later one is an error (either way the
-- set is not valid as a whole).
function M.add_file(host, set, file)
  set.loading = file.name
  local wf, errs = M.load_file(host, file.path, set.registry, file.name)
  set.loading = nil
  if not wf then
    for _, e in ipairs(errs) do set.errors[#set.errors + 1] = tostring(e) end
  elseif set.seen[wf.intent] then
    local ctx = { file = file.name, errs = set.errors, src = read_file(file.path) }
    add_error(ctx, nil, "intent", "duplicate intent '" .. wf.intent .. "' (already defined in " .. set.seen[wf.intent] .. ")")
  else
    set.seen[wf.intent] = file.name
    set.workflows[wf.intent] = wf
  end
  return wf
end

-- load_dir(host, dir, opts) -> set (see new_set)
-- opts: {registry = reg, prefix = ""} or the options of workflow.registry().
function M.load_dir(host, dir, opts)
  opts = opts or {}
  local reg = opts.registry or M.registry(host, opts)
  local set = M.new_set(reg)
  for _, file in ipairs(M.list(host, dir, opts.prefix)) do M.add_file(host, set, file) end
  return set
end

return M
