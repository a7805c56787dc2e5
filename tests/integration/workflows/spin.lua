-- spin: loops until the sandbox's instruction limit kills the command.
return {
  intent = "spin",
  steps = {
    { id = "loop", run = function(A) while true do end end },
  },
}
