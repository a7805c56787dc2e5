-- The http tool's contract (and sio.http.request's), through the harness:
-- the result later steps and templates read, the request that goes out,
-- what a 4xx, a 429 and a 5xx do, Retry-After on the virtual clock.
local testing = require "sio.testing"

local WF = [[
intent: call
steps:
  - id: s1
    tool:
      name: http
      args:
        method: POST
        url: "https://api.example/items/${A.id}"
        body: {name: "${A.name}", n: 2}
        on_4xx: "${A.on_4xx | default('permanent')}"
    retries: 2
  - id: use
    args:
      status: "${A.s1.status}"
      x: "${A.s1.json.x}"
      etag: "${A.s1.headers.etag}"
    run: |
      return { status = args.status, x = args.x, etag = args.etag,
               seen = A.s1.status, body = A.s1.body, ok = A.s1.ok }
output:
  status: "${A.s1.status}"
  x: "${A.s1.json.x}"
]]

describe("the http tool", function()
  local h
  before_each(function()
    h = testing.new({ root = "/nonexistent", intent = "call", http_allow = "api.example" })
    h:add_workflow(WF, "call.yaml")
  end)

  it("gives later steps and templates {status, headers, body, json}", function()
    h:stub("http", { status = 201, headers = { ETag = "v7" }, json = { x = 42 } })
    local r = h:run({ id = "9", name = "Ada" })
    r:expect_ok()
    assert.are.same({ status = 201, x = 42, etag = "v7", seen = 201, body = '{"x":42}', ok = true }, r:json("use"))
    assert.are.same({ status = 201, x = 42 }, { status = r.result.status, x = r.result.x })
    assert.are.equal('{"x":42}', r:output("s1")) -- the payload (and a step_result's) is the body
  end)

  it("sends a table body as JSON with Content-Type: application/json", function()
    local seen
    h:stub("http", function(req) seen = req; return { status = 200, body = "{}" } end)
    h:run({ id = "9", name = "Ada" }):expect_ok()
    assert.are.equal("POST", seen.method)
    assert.are.equal("https://api.example/items/9", seen.url)
    assert.are.same({ name = "Ada", n = 2 }, require("cjson").decode(seen.body))
    assert.are.same({ ["content-type"] = "application/json" }, seen.headers) -- as the daemon sends them
  end)

  it("keeps a Content-Type the request sets", function()
    h:add_workflow([[
intent: form
steps:
  - id: s1
    tool: {name: http, args: {url: "https://api.example/f", body: {a: 1}, headers: {content-type: text/plain}}}
]], "form.yaml")
    local seen
    h:stub("http", function(req) seen = req; return "ok" end)
    h:run("form", {}):expect_ok()
    assert.are.same({ ["content-type"] = "text/plain" }, seen.headers)
  end)

  it("fails a 4xx permanently, with the start of the response body in the error", function()
    h:stub("http", { status = 422, body = '{"error":"name is taken"}' })
    local r = h:run({ id = "9", name = "Ada" })
    r:expect_error("permanent", 'status 422: {"error":"name is taken"}', "s1")
    assert.are.equal(1, #r:calls_of("http")) -- not retried
    h:stub("http", { status = 400, body = ("é"):rep(400) })
    r = h:run({ id = "9", name = "Ada" })
    local msg = r.error.message
    assert.matches("%.%.%. %(800 bytes%)$", msg)
    assert.is_truthy(utf8.len(msg), "cut at a character boundary")
  end)

  it("on_4xx: ok returns the response; transient retries it", function()
    h:stub("http", { status = 404, body = "no such item" })
    local r = h:run({ id = "9", on_4xx = "ok" })
    r:expect_ok()
    assert.are.equal(404, r:json("use").status)
    r = h:run({ id = "9", on_4xx = "transient" })
    r:expect_error("transient", "status 404: no such item", "s1")
    assert.are.equal(3, #r:calls_of("http"))
    h:run({ id = "9", on_4xx = "maybe" }):expect_error("permanent", 'on_4xx must be "permanent", "transient" or "ok"')
  end)

  it("retries 5xx and 429, waiting what Retry-After says", function()
    local n = 0
    h:stub("http", function()
      n = n + 1
      if n == 1 then return { status = 503 } end
      if n == 2 then return { status = 429, headers = { ["Retry-After"] = "7" } } end
      return { status = 200, json = { x = 1 } }
    end)
    local r = h:run({ id = "9" })
    r:expect_ok()
    local calls = r:calls_of("http")
    assert.are.equal(3, #calls)
    assert.are.equal(200, calls[2].at - calls[1].at)   -- the step's backoff
    assert.are.equal(7000, calls[3].at - calls[2].at)  -- Retry-After: 7
  end)

  it("honours an HTTP-date Retry-After, and gives up on one past a minute", function()
    h:stub("time", 1700000000) -- 2023-11-14T22:13:20Z
    local n = 0
    h:stub("http", function()
      n = n + 1
      if n == 1 then return { status = 503, headers = { ["retry-after"] = "Tue, 14 Nov 2023 22:13:50 GMT" } } end
      return { status = 200, body = "{}" }
    end)
    local r = h:run({ id = "9" })
    r:expect_ok()
    local calls = r:calls_of("http")
    assert.are.equal(30000, calls[2].at - calls[1].at)
    h:stub("http", { status = 429, headers = { ["Retry-After"] = "3600" } })
    r = h:run({ id = "9" })
    r:expect_error("transient", "status 429 %(Retry%-After 3600s%)", "s1")
    assert.are.equal(1, #r:calls_of("http"))
  end)
end)

describe("an http request's timeout in the harness", function()
  it("fails the request at its timeout, or HTTP_TIMEOUT's, as libcurl does", function()
    local h = testing.new({ root = "/nonexistent", http_allow = "api.example" })
    h:add_workflow([[
intent: slow
steps:
  - id: quick
    tool: {name: http, args: {url: "https://api.example/a", timeout: 300ms}}
    continue_on_error: true
  - id: default
    tool: {name: http, args: {url: "https://api.example/b"}}
]], "slow.yaml")
    h:stub("http", function(req)
      if req.url:find("/a$") then return testing.after("1s", { status = 200 }) end
      return testing.never()
    end)
    local r = h:run("slow", {})
    r:expect_error("transient", "^http: timed out$", "default") -- the daemon's message (aio_http.c)
    assert.are.equal("http: timed out", r.steps.quick.error.message)
    assert.are.equal(300 + 10000, r.elapsed_ms) -- the request's 300 ms, then HTTP_TIMEOUT's 10 s
    h:close()
  end)
end)

describe("sio.http.request", function()
  it("returns {status, headers, body, json} for any status", function()
    local h = testing.new({ root = "/nonexistent", http_allow = "api.example" })
    h:add_workflow([[
intent: req
steps:
  - id: s
    run: |
      local r = sio.http.request({ url = "https://api.example/x", headers = { Accept = "application/json" } })
      local miss = sio.http.request({ url = "https://api.example/missing" })
      return { status = r.status, type = r.headers["content-type"], json = r.json, body = r.body,
               miss = miss.status, miss_json = miss.json == nil, miss_body = miss.body }
]], "req.yaml")
    h:stub("http", function(req)
      if req.url:find("missing") then return { status = 404, body = "nope" } end
      return { status = 200, json = { ok = true } }
    end)
    local r = h:run("req", {})
    r:expect_ok()
    assert.are.same({ status = 200, type = "application/json", json = { ok = true }, body = '{"ok":true}',
                      miss = 404, miss_json = true, miss_body = "nope" }, r:json("s"))
  end)
end)

-- The harness applies serve's rules to a request before any stub sees it:
-- the same host contract (luahost_ops.c) and the same checks.
describe("the HTTP allow-list in the harness", function()
  local WF = [[
intent: reach
steps:
  - id: s
    run: |
      local ok, e = pcall(sio.http.request, { url = A.url })
      if ok then return { status = e.status } end
      return { error = type(e) == "table" and e.message or tostring(e) }
]]
  local function reach(allow, url)
    local h = testing.new({ root = "/nonexistent", http_allow = allow })
    h:add_workflow(WF, "reach.yaml")
    h:stub("http", { status = 204 })
    local r = h:run("reach", { url = url })
    r:expect_ok()
    local out = r:json("s")
    h:close()
    return out, #r:calls_of("http")
  end

  it("refuses a host off the list, as serve does, before any stub is asked", function()
    local out, calls = reach(nil, "https://api.example/x")
    assert.matches("not on the allow%-list %(SIO_HTTP_ALLOW", out.error)
    assert.are.equal(0, calls)
    out, calls = reach("other.example", "https://api.example/x")
    assert.matches("not on the allow%-list", out.error)
    assert.are.equal(0, calls)
  end)

  it("lets a listed host through (a list or a comma string, any case)", function()
    local out, calls = reach({ "other.example", "API.example" }, "https://api.example/x")
    assert.are.same({ status = 204 }, out)
    assert.are.equal(1, calls)
    out = reach("*", "http://anything.example:8080/")
    assert.are.same({ status = 204 }, out)
  end)

  it("matches host and port as serve does: a bare host is the scheme's default port only", function()
    local out, calls = reach("api.example", "https://api.example:8443/x")
    assert.matches("api.example:8443 is not on the allow%-list", out.error)
    assert.are.equal(0, calls)
    out = reach("api.example:8443", "https://api.example:8443/x")
    assert.are.same({ status = 204 }, out)
    out = reach("127.0.0.1", "http://127.0.0.1:8000/")
    assert.matches("127.0.0.1:8000 is not on the allow%-list", out.error)
    out = reach("127.0.0.1:8000", "http://127.0.0.1:8000/")
    assert.are.same({ status = 204 }, out)
  end)

  it("refuses what serve refuses before it is sent: a header value with CR/LF, a framing header", function()
    local h = testing.new({ root = "/nonexistent", http_allow = "api.example" })
    h:add_workflow([[
intent: hdr
steps:
  - id: s
    run: |
      local ok, e = pcall(sio.http.request, { url = "https://api.example/", headers = A.headers })
      return { error = not ok and (type(e) == "table" and e.message or tostring(e)) or nil }
]], "hdr.yaml")
    h:stub("http", { status = 204 })
    local r = h:run("hdr", { headers = { ["X-User"] = "a\r\nX-Admin: true" } })
    assert.are.equal("http: the value of header 'X-User' holds CR", r:json("s").error)
    r = h:run("hdr", { headers = { ["Content-Length"] = "0" } })
    assert.matches("header 'Content%-Length' is set by the host", r:json("s").error)
    assert.are.equal(0, #r:calls_of("http"))
    h:close()
  end)

  it("refuses a bad http_allow entry with serve's message", function()
    local ok, msg = pcall(testing.new, { root = "/nonexistent", http_allow = "https://api.example/" })
    assert.is_false(ok)
    assert.matches("SIO_HTTP_ALLOW", msg)
  end)
end)
