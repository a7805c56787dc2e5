-- a Lua workflow: inline functions for a guard, a step and the output
local calls = 0
return {
  intent = "fz_lua",
  steps = {
    { id = "a", tool = { name = "echo", args = { q = "${A.query}" } }, publish_result = true },
    { id = "b", depends_on = { "a" },
      guard = function(A) return A.a ~= nil end,
      run = function(A)
        calls = calls + 1
        local s = sio.json.encode({ n = A.n, items = A.items })
        return { calls = calls, text = s:rep(2), sleep = sio.sleep and sio.sleep(1) }
      end },
    { id = "c", depends_on = { "b" }, retries = 1,
      run = function(A) if (A.n or 0) > 5 then sio.error.transient("again") end return { ok = true } end },
  },
  output = function(A) return { done = true, q = A.a.q } end,
}
