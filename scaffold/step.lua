-- Step logic of workflows/{{name}}.yaml, step `compose` (run: {{name}}).
-- A step module returns function(A, args, ctx); what it returns is the
-- step's payload (a table is sent as JSON) and lands in A.compose.
-- Editor support: .luarc.json points the Lua language server at .sio/types.

---@param A sio.A the command's attrs, and each finished step under its id
---@param args {name: string} the step's args, rendered from the templates
---@param ctx sio.Ctx the step's id, attempt, intent and the sio module
---@return table
return function(A, args, ctx)
  sio.log("info", "composing a greeting", { attempt = ctx.attempt })
  local text = ("Hello, %s!"):format(args.name)
  if A.query and A.query ~= "" then text = text .. " You said: " .. A.query end
  return { text = text }
end
