-- hold: holds attrs.bytes of memory (one string) for attrs.ms
-- milliseconds without blocking its worker, then returns the size held.
-- The memory tests run thousands of these at once.
return {
  intent = "hold",
  steps = {
    {
      id = "hold",
      run = function(A)
        local s = string.rep("x", A.bytes)
        sio.sleep(A.ms or 0)
        return { held = #s }
      end,
    },
  },
}
