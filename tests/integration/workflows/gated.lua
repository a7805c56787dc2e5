-- gated: marks kv "waiting:<id>", waits (polling kv, never blocking the
-- worker) until the test sets "gate:<id>", then raises a permanent error
-- when attrs.fail, else counts its runs ("runs:<id>") and returns them.
-- Lets a test create the state it needs (a fault injected while the
-- command is known to be waiting) instead of sleeping and hoping.
return {
  intent = "gated",
  steps = {
    {
      id = "wait",
      publish_result = true,
      run = function(A)
        sio.kv.set("waiting:" .. tostring(A.id), "1")
        while not sio.kv.get("gate:" .. tostring(A.id)) do sio.sleep(10) end
        if A.fail then error("gated failure: " .. tostring(A.id)) end
        return { id = A.id, runs = sio.kv.incr("runs:" .. tostring(A.id)) }
      end,
    },
  },
}
