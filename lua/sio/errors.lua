-- sio.errors: the classified error values used end to end by the engine.
-- An error is a table {class = "transient"|"permanent", message = "...", step = "id"}.
-- Anything raised that is not such a table (a plain string from error("..."),
-- a runtime fault) is permanent.
local M = {}

local type, tostring = type, tostring

function M.new(class, message, step)
  return { class = class, message = message, step = step }
end

function M.transient(message, step) return { class = "transient", message = message, step = step } end
function M.permanent(message, step) return { class = "permanent", message = message, step = step } end

function M.is_classified(e)
  return type(e) == "table" and (e.class == "transient" or e.class == "permanent")
end

-- classify(e, step) -> error table. Classified tables are kept (step filled in
-- when missing); everything else becomes permanent with a string message.
function M.classify(e, step)
  if type(e) == "table" then
    if e.class == "transient" or e.class == "permanent" then
      if e.step == nil then e.step = step end
      if type(e.message) ~= "string" then e.message = tostring(e.message) end
      return e
    end
    local msg = e.message
    return { class = "permanent", message = type(msg) == "string" and msg or tostring(e), step = step }
  end
  return { class = "permanent", message = tostring(e), step = step }
end

-- Render an error for logs / DLQ messages.
function M.tostring(e)
  if type(e) ~= "table" then return tostring(e) end
  if e.step then return ("%s error in step %s: %s"):format(e.class or "permanent", e.step, tostring(e.message)) end
  return ("%s error: %s"):format(e.class or "permanent", tostring(e.message))
end

return M
