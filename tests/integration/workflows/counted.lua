-- counted: counts its executions per attrs.id in Redis (kv "runs:<id>"),
-- then, when attrs.gate is set, calls the test HTTP server there (which
-- holds the command until the test releases it: tests/support/httpd.h),
-- then publishes the count.  Used by the service tests to prove how often
-- a command ran, and to hold commands in flight without timing.
return {
  intent = "counted",
  steps = {
    {
      id = "count",
      publish_result = true,
      run = function(A)
        local n = sio.kv.incr("runs:" .. tostring(A.id))
        if A.gate then sio.http.request{ url = A.gate .. "/" .. tostring(A.id) } end
        return { id = A.id, runs = n }
      end,
    },
  },
}
