-- rawbytes: a workflow whose step result and outcome hold bytes that are not
-- UTF-8 (a stray byte, a surrogate, an overlong form) and NUL bytes, in
-- values and keys.  What the service writes of it must still be strict
-- UTF-8 JSON (it_service_poison_wire.sh).
return {
  intent = "rawbytes",
  steps = {
    {
      id = "s1",
      publish_result = true,
      run = function(A)
        return { bad = "a\xff\xfeb\0c\xed\xa0\x80d\xc0\xaf", ["k\xff"] = "\0", q = A.query }
      end,
    },
  },
  output = function(A) return { out = "caf\xe9\0", ["\xc3"] = A.s1 } end,
}
