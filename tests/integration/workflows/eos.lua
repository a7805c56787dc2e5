-- eos: the exactly-once test's workflow (it_service_eos): two published
-- step results, a message produced from Lua to attrs.side keyed by
-- attrs.id, and its runs counted in kv "runs:<id>" (a side effect outside
-- Kafka, which exactly-once does not cover).  With attrs.gate, the first
-- step counts itself in kv "entered:<gate>" and waits (polling, never
-- blocking the worker) until the test sets kv "gate:<gate>".
return {
  intent = "eos",
  steps = {
    {
      id = "first",
      publish_result = true,
      run = function(A)
        if A.gate then
          sio.kv.incr("entered:" .. A.gate)
          while not sio.kv.get("gate:" .. A.gate) do sio.sleep(20) end
        end
        return { id = A.id }
      end,
    },
    {
      id = "second",
      publish_result = true,
      run = function(A)
        sio.kafka.produce(A.side, A.id, { id = A.id })
        return { id = A.id, runs = sio.kv.incr("runs:" .. tostring(A.id)) }
      end,
    },
  },
}
