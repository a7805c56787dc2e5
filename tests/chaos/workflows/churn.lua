-- churn: the chaos test's workload (tests/chaos/churn.py).  Each execution
-- counts itself in Redis (kv "runs:<id>", the counter per correlation id),
-- records which service process ran it and when ("run:<id>:<n>" =
-- "<instance>.<start> <ms>", the process named by the module churn_whoami
-- the test writes into each process's LUA_DIR), works for attrs.ms
-- milliseconds (0-500, never blocking its worker), records its end
-- ("end:<id>:<n>"), and returns who ran it and when.  While it works it
-- holds "busy:<process>:<id>:<n>", so that the test kills a process that
-- has executions in flight.  From these records and the kill times the
-- test tells an execution taken over after its process was killed (its
-- lease expired) from a double execution, and from the successes which
-- process has worked since a restart of Kafka or Redis.
return {
  intent = "churn",
  steps = {
    {
      id = "work",
      publish_result = true,
      run = function(A)
        local me = require("churn_whoami")
        local id = tostring(A.id)
        local n = sio.kv.incr("runs:" .. id)
        local start = math.floor(sio.time.unix() * 1000)
        sio.kv.set("run:" .. id .. ":" .. n, me .. " " .. start)
        local busy = "busy:" .. me .. ":" .. id .. ":" .. n
        sio.kv.set(busy, start)
        sio.sleep(A.ms or 0)
        sio.kv.set("end:" .. id .. ":" .. n, tostring(math.floor(sio.time.unix() * 1000)))
        sio.kv.del(busy)
        return { id = A.id, execution = n, by = me, start = start }
      end,
    },
  },
}
