-- flaky: raises a transient error until attempt attrs.ok_on (counted per
-- attrs.id in kv), then succeeds.  attrs.ok_on = 0 fails forever.
return {
  intent = "flaky",
  steps = {
    {
      id = "try",
      run = function(A)
        local n = sio.kv.incr("flaky:" .. tostring(A.id))
        if A.ok_on == 0 or n < A.ok_on then sio.error.transient("not yet (attempt " .. n .. ")") end
        return { attempt = n }
      end,
    },
  },
}
