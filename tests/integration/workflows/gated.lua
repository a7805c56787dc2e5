-- gated: marks kv "waiting:<id>", waits (polling kv every attrs.poll_ms,
-- default 10, never blocking the worker) until the test sets
-- "gate:<attrs.gate or id>", then raises a permanent error when attrs.fail,
-- else counts its runs ("runs:<id>") and returns them.  Lets a test create
-- the state it needs (a fault injected while commands are known to wait, a
-- stop while work is known to be in flight) instead of sleeping and hoping.
return {
  intent = "gated",
  steps = {
    {
      id = "wait",
      publish_result = true,
      run = function(A)
        local id = tostring(A.id)
        sio.kv.set("waiting:" .. id, "1")
        local gate = "gate:" .. tostring(A.gate or id)
        while not sio.kv.get(gate) do sio.sleep(A.poll_ms or 10) end
        if A.fail then error("gated failure: " .. id) end
        return { id = A.id, runs = sio.kv.incr("runs:" .. id) }
      end,
    },
  },
}
