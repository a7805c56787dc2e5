-- kvops: every sio.kv operation once (set with a TTL, get, incr, del), so
-- the Redis tests see each command the kv capability sends.
return {
  intent = "kvops",
  steps = {
    {
      id = "ops",
      publish_result = true,
      run = function(A)
        local key = "k:" .. tostring(A.id)
        sio.kv.set(key, "v", 60)
        local got = sio.kv.get(key)
        local n = sio.kv.incr("n:" .. tostring(A.id))
        sio.kv.del(key)
        return { got = got, n = n, gone = sio.kv.get(key) == nil }
      end,
    },
  },
}
