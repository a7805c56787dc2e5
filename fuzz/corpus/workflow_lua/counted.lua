-- counted: counts its executions per attrs.id in Redis (kv "runs:<id>"),
-- optionally waits attrs.sleep ms, then publishes the count.  Used by the
-- service tests to prove how often a command ran.
return {
  intent = "counted",
  steps = {
    {
      id = "count",
      publish_result = true,
      run = function(A)
        local n = sio.kv.incr("runs:" .. tostring(A.id))
        if A.sleep then sio.sleep(A.sleep) end
        return { id = A.id, runs = n }
      end,
    },
  },
}
