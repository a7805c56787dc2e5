-- The engine in the daemon's sandbox and host contract, on the virtual
-- clock of sio.testing (spec/support/helpers.lua).
local engine = require "sio.engine"
local testing = require "sio.testing"
local H = require "support.helpers"
local cjson = require "sio.json"

-- http stub: responds with the URL's path as body after `delay` ms of virtual time
local function delayed(delay)
  return function(req) return testing.after(delay or 0, { status = 200, body = req.url:match("//[^/]+(.*)$") }) end
end

-- the hosts the specs call (the harness enforces the allow-list, as serve does)
local X = { http_allow = "x,api.example.com" }

describe("sio.engine", function()
  it("must run inside a coroutine", function()
    assert.has_error(function() engine.execute({}, { step_ids = {} }, {}) end,
      "sio.engine.execute must run inside the command coroutine")
  end)

  describe("attrs normalisation", function()
    local wf, h = H.load([[
intent: n
steps:
  - {id: s1, tool: {name: echo, args: {q: "${A.query}", u: "${A.utter}"}}}
]])
    it("utter <- echo when utter is absent; query = utter", function()
      local res = H.run(h, wf, { echo = "from echo", query = "ignored" })
      assert.are.same({ q = "from echo", u = "from echo" }, cjson.decode(res.outputs.s1))
    end)
    it("utter <- query when utter and echo are absent", function()
      local res = H.run(h, wf, { query = "q" })
      assert.are.same({ q = "q", u = "q" }, cjson.decode(res.outputs.s1))
    end)
    it("an explicit utter wins", function()
      local res = H.run(h, wf, { utter = "u", echo = "e", query = "q" })
      assert.are.same({ q = "u", u = "u" }, cjson.decode(res.outputs.s1))
    end)
  end)

  -- Workflows of sync built-in tools only, unguarded, run down the plan
  -- sio.workflow resolves at load (wf.straight): the order, failures and
  -- what is published are the scheduler's.
  describe("straight plan (sync steps only)", function()
    it("runs in the scheduler's order: the ready step first in file order", function()
      local wf, h = H.load([[
intent: p
steps:
  - {id: a, tool: {name: echo, args: {x: "${A.c.json.x}"}}, depends_on: [c], publish_result: true}
  - {id: b, tool: {name: echo, args: {x: "b"}}, depends_on: [], publish_result: true}
  - {id: c, tool: {name: echo, args: {x: "${A.b.json.x}c"}}, depends_on: [b], publish_result: true}
  - {id: d, tool: {name: noop}, depends_on: [], publish_result: true}
]])
      assert.is_true(wf.straight)
      local res, err, pubs = H.run(h, wf, {})
      assert.is_nil(err)
      assert.are.same({ "b", "c", "a", "d" }, res.steps)
      assert.are.same({ "b", "c", "a", "d" }, H.ids(pubs))
      assert.are.same({ x = "bc" }, cjson.decode(res.outputs.a))
    end)

    it("fail_fast: false runs what does not depend on the failed step, then reports it", function()
      local wf, h = H.load([[
intent: p
fail_fast: false
steps:
  - {id: a, tool: {name: echo, args: {x: "${A.nope}"}}, strict_templates: true, depends_on: [], publish_result: true}
  - {id: b, tool: {name: echo, args: {x: "b"}}, depends_on: [a], publish_result: true}
  - {id: c, tool: {name: echo, args: {x: "c"}}, depends_on: [], publish_result: true}
]])
      assert.is_true(wf.straight)
      local res, err, pubs = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("a", err.step)
      assert.matches("missing %${A.nope}", err.message)
      assert.are.same({ "c" }, H.ids(pubs))
    end)

    it("fail_fast (default) stops at the failed step", function()
      local wf, h = H.load([[
intent: p
steps:
  - {id: a, tool: {name: echo, args: {x: "${A.nope}"}}, strict_templates: true, depends_on: [], publish_result: true}
  - {id: c, tool: {name: echo, args: {x: "c"}}, depends_on: [], publish_result: true}
]])
      local res, err, pubs = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("a", err.step)
      assert.are.equal(0, #pubs)
    end)

    it("continue_on_error: dependants run and the failure is counted", function()
      local wf, h = H.load([[
intent: p
steps:
  - {id: a, tool: {name: echo, args: {x: "${A.nope}"}}, strict_templates: true, continue_on_error: true}
  - {id: b, tool: {name: echo, args: {a_ok: "${A.a.ok}"}}}
]])
      assert.is_true(wf.straight)
      local res, err = H.run(h, wf, {})
      assert.is_nil(err)
      assert.are.same({ "a", "b" }, res.steps)
      assert.are.same({ a_ok = false }, cjson.decode(res.outputs.b))
      assert.are.equal("workflow p: 1 steps ok, 0 skipped, 1 failed", res.summary)
    end)
  end)

  describe("DAG and concurrency", function()
    it("runs independent steps concurrently up to max_concurrency", function()
      local wf, h = H.load([[
intent: fan
max_concurrency: 2
steps:
  - {id: a, tool: {name: http, args: {url: "http://x/a"}}, depends_on: []}
  - {id: b, tool: {name: http, args: {url: "http://x/b"}}, depends_on: []}
  - {id: c, tool: {name: http, args: {url: "http://x/c"}}, depends_on: []}
  - {id: d, tool: {name: http, args: {url: "http://x/d"}}, depends_on: []}
  - {id: e, tool: {name: http, args: {url: "http://x/e"}}, depends_on: []}
]], nil, X)
      h:stub("http", delayed(100))
      local res, _, _, r = H.run(h, wf, {})
      assert.are.equal(2, H.max_in_flight(r))
      assert.are.equal(5, #r:calls_of("http"))
      assert.are.same({ "a", "b", "c", "d", "e" }, res.steps)
      assert.are.same({ a = "/a", b = "/b", c = "/c", d = "/d", e = "/e" }, res.outputs)
      assert.are.equal(300, r.elapsed_ms) -- 3 waves of 100 ms of virtual time
    end)

    it("uses the default max_concurrency of 4", function()
      local wf, h = H.load([[
intent: fan
steps:
  - {id: a, tool: {name: http, args: {url: "http://x/a"}}, depends_on: []}
  - {id: b, tool: {name: http, args: {url: "http://x/b"}}, depends_on: []}
  - {id: c, tool: {name: http, args: {url: "http://x/c"}}, depends_on: []}
  - {id: d, tool: {name: http, args: {url: "http://x/d"}}, depends_on: []}
  - {id: e, tool: {name: http, args: {url: "http://x/e"}}, depends_on: []}
  - {id: f, tool: {name: http, args: {url: "http://x/f"}}, depends_on: []}
]], nil, X)
      h:stub("http", delayed(10))
      local _, _, _, r = H.run(h, wf, {})
      assert.are.equal(4, H.max_in_flight(r))
    end)

    it("without depends_on, steps run one after another in file order", function()
      local wf, h = H.load([[
intent: seq
steps:
  - {id: a, tool: {name: http, args: {url: "http://x/a"}}}
  - {id: b, tool: {name: http, args: {url: "http://x/b"}}}
  - {id: c, tool: {name: http, args: {url: "http://x/c"}}}
]], nil, X)
      h:stub("http", delayed(50))
      local res, _, _, r = H.run(h, wf, {})
      assert.are.equal(1, H.max_in_flight(r))
      assert.are.same({ "a", "b", "c" }, res.steps)
      assert.are.equal(150, r.elapsed_ms)
    end)

    it("honours depends_on: diamond a -> (b, c) -> d", function()
      local wf, h = H.load([[
intent: diamond
steps:
  - {id: d, tool: {name: echo, args: {b: "${A.b.payload}", c: "${A.c.payload}"}}, depends_on: [b, c], publish_result: true}
  - {id: b, tool: {name: http, args: {url: "http://x/b"}}, depends_on: [a], publish_result: true}
  - {id: c, tool: {name: http, args: {url: "http://x/c-${A.a.payload}"}}, depends_on: [a], publish_result: true}
  - {id: a, tool: {name: http, args: {url: "http://x/a"}}, publish_result: true}
]], nil, X)
      local delays = { ["/a"] = 10, ["/b"] = 50, ["/c-/a"] = 20 }
      h:stub("http", function(req)
        local p = req.url:match("//[^/]+(.*)$")
        return testing.after(delays[p], { status = 200, body = p })
      end)
      local res, err, pubs, r = H.run(h, wf, {})
      assert.is_nil(err)
      assert.are.same({ "a", "c", "b", "d" }, H.ids(pubs)) -- completion order
      assert.are.same({ "a", "c", "b", "d" }, res.steps)
      assert.are.equal(2, H.max_in_flight(r))
      assert.are.same({ b = "/b", c = "/c-/a" }, cjson.decode(res.outputs.d))
    end)

    it("dependants of a step dropped by its guard still run", function()
      local wf, h = H.load([[
intent: g
steps:
  - {id: a, guard: "A.never", tool: {name: echo}}
  - {id: b, tool: {name: echo, args: {x: 1}}, depends_on: [a]}
]])
      local res = H.run(h, wf, {})
      assert.are.same({ "b" }, res.steps)
      assert.are.equal("workflow g: 1 steps ok, 1 skipped", res.summary)
    end)
  end)

  describe("failures", function()
    local function failing_wf(extra)
      return [[
intent: f
]] .. (extra or "") .. [[
steps:
  - id: a
    run: "error('boom')"
    depends_on: []
  - {id: b, tool: {name: echo, args: {a_ok: "${A.a.ok}"}}, depends_on: [a]}
  - {id: c, tool: {name: http, args: {url: "http://x/c"}}, depends_on: []}
]]
    end

    it("fail_fast (default): the first failure ends the execution with a permanent error", function()
      local wf, h = H.load([[
intent: f
steps:
  - {id: a, tool: {name: http, args: {url: "http://x/a"}}, depends_on: []}
  - {id: b, tool: {name: echo}, depends_on: [a]}
  - {id: c, tool: {name: http, args: {url: "http://x/c"}}, depends_on: []}
]], nil, X)
      h:stub("http", function(req)
        if req.url:find("/a$") then return testing.after(50, { status = 400, body = "boom" }) end
        return testing.after(100, { status = 200, body = "c" })
      end)
      local res, err, pubs, r = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("permanent", err.class)
      assert.are.equal("a", err.step)
      assert.matches("status 400", err.message)
      assert.are.equal(0, #pubs)
      -- c was started and abandoned when a failed: its request was cancelled
      assert.are.equal(2, #r:calls_of("http"))
      assert.are.equal(1, H.cancelled(r))
      assert.are.equal(50, r.elapsed_ms)
    end)

    it("fail_fast: a step that fails before others start prevents them from starting", function()
      local wf, h = H.load(failing_wf(), nil, X)
      h:stub("http", delayed(100))
      local res, err, pubs, r = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("permanent", err.class)
      assert.are.equal("a", err.step)
      assert.matches("boom", err.message)
      assert.are.equal(0, #pubs)
      assert.are.equal(0, #r.calls)
    end)

    it("fail_fast: false lets independent steps finish, then reports the failure", function()
      local wf, h = H.load(failing_wf("fail_fast: false\n"), nil, X)
      h:stub("http", delayed(100))
      local res, err, _, r = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.equal("a", err.step)
      assert.are.equal(100, r.elapsed_ms) -- waited for c
      assert.are.equal("/c", r.calls[1].args.url:match("//[^/]+(.*)$"))
    end)

    it("continue_on_error records the failure and dependants still run", function()
      local wf, h = H.load([[
intent: f
steps:
  - {id: a, run: "error('boom')", continue_on_error: true}
  - {id: b, tool: {name: echo, args: {a_ok: "${A.a.ok}", msg: "${A.a.error.message}"}}}
]])
      local res, err = H.run(h, wf, {})
      assert.is_nil(err)
      assert.are.same({ "a", "b" }, res.steps)
      local b = cjson.decode(res.outputs.b)
      assert.are.equal(false, b.a_ok)
      assert.matches("boom", b.msg)
      assert.is_nil(res.outputs.a)
      assert.are.equal("workflow f: 1 steps ok, 0 skipped, 1 failed", res.summary)
    end)
  end)

  describe("error classes", function()
    local function run_code(code)
      local wf, h = H.load("intent: e\nsteps:\n  - id: s1\n    run: \"" .. code .. "\"\n")
      return H.run(h, wf, {})
    end
    it("sio.error.transient raises a transient error", function()
      local _, err = run_code("sio.error.transient('later')")
      assert.are.same({ class = "transient", message = "later", step = "s1", attempts = 1 }, err)
    end)
    it("sio.error.permanent raises a permanent error", function()
      local _, err = run_code("sio.error.permanent('never')")
      assert.are.same({ class = "permanent", message = "never", step = "s1", attempts = 1 }, err)
    end)
    it("a plain error is permanent", function()
      local _, err = run_code("error('plain')")
      assert.are.equal("permanent", err.class)
      assert.matches("plain$", err.message)
    end)
    it("a runtime fault is permanent", function()
      local _, err = run_code("return nil .. 'x'")
      assert.are.equal("permanent", err.class)
      assert.matches("attempt to concatenate", err.message)
    end)
    it("a transient error caught by pcall in user code is swallowed by design", function()
      local res = run_code("local ok, e = pcall(sio.error.transient, 'x'); return e.class")
      assert.are.equal("transient", res.outputs.s1)
    end)
  end)

  describe("retries", function()
    it("re-runs a step on transient errors and succeeds on the Nth attempt", function()
      local wf, h = H.load([[
intent: r
steps:
  - id: s1
    retries: 3
    tool: {name: http, args: {url: "http://x/flaky"}}
    publish_result: true
  - id: s2
    tool: {name: echo, args: {attempts: "${A.s1.attempts}"}}
]], nil, X)
      local n = 0
      h:stub("http", function()
        n = n + 1
        if n < 3 then return testing.after(5, testing.fail("connection refused")) end
        return testing.after(5, { status = 200, body = "finally" })
      end)
      local res, err, pubs, r = H.run(h, wf, {}, { retry_base_ms = 100 })
      assert.is_nil(err)
      assert.are.equal(3, n)
      assert.are.equal("finally", res.outputs.s1)
      assert.are.same({ s1 = 3 }, res.attempts)
      assert.are.same({ attempts = 3 }, cjson.decode(res.outputs.s2))
      assert.are.equal(1, #pubs) -- published once, on success
      -- 3 requests of 5 ms + backoff 100 ms + 200 ms
      assert.are.equal(315, r.elapsed_ms)
    end)

    it("gives up after retries and reports the attempts", function()
      local wf, h = H.load([[
intent: r
steps:
  - {id: s1, retries: 2, run: "sio.error.transient('down')"}
]])
      local _, err = H.run(h, wf, {})
      assert.are.equal("transient", err.class)
      assert.are.equal(3, err.attempts)
      assert.are.equal("down", err.message)
    end)

    it("does not retry permanent errors", function()
      local wf, h = H.load([[
intent: r
steps:
  - {id: s1, retries: 5, run: "error('bad input')"}
]])
      local _, err, _, r = H.run(h, wf, {})
      assert.are.equal("permanent", err.class)
      assert.are.equal(1, err.attempts)
      assert.are.equal(0, #r.timers) -- no backoff
    end)

    it("an http 5xx is transient, 4xx permanent", function()
      local wf, h = H.load("intent: r\nsteps:\n  - {id: s1, tool: {name: http, args: {url: 'http://x/'}}}\n", nil, X)
      h:stub("http", { status = 503, body = "" })
      local _, err = H.run(h, wf, {})
      assert.are.equal("transient", err.class)
      h:stub("http", { status = 404, body = "" })
      _, err = H.run(h, wf, {})
      assert.are.equal("permanent", err.class)
    end)
  end)

  describe("timeouts", function()
    it("a step that outlives its timeout fails with a transient error", function()
      local wf, h = H.load([[
intent: t
steps:
  - {id: s1, timeout: 500ms, tool: {name: http, args: {url: "http://x/slow"}}}
]], nil, X)
      h:stub("http", delayed(2000))
      local res, err, _, r = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.same({ class = "transient", step = "s1", attempts = 1,
                        message = "step s1 timed out after 500ms" }, err)
      assert.are.equal(500, r.elapsed_ms)
      assert.are.equal(1, H.cancelled(r)) -- the slow request was cancelled
    end)

    it("a timed-out attempt is retried and the next attempt can succeed", function()
      local wf, h = H.load([[
intent: t
steps:
  - {id: s1, timeout: 1s, retries: 1, tool: {name: http, args: {url: "http://x/"}}}
]], nil, X)
      local n = 0
      h:stub("http", function()
        n = n + 1
        return testing.after(n == 1 and 5000 or 10, { status = 200, body = "r" .. n })
      end)
      local res, err, _, r = H.run(h, wf, {}, { retry_base_ms = 50 })
      assert.is_nil(err)
      assert.are.equal("r2", res.outputs.s1)
      assert.are.same({ s1 = 2 }, res.attempts)
      assert.are.equal(1060, r.elapsed_ms)
    end)

    it("a step that finishes in time cancels its timer", function()
      local wf, h = H.load([[
intent: t
steps:
  - {id: s1, timeout: 1s, tool: {name: http, args: {url: "http://x/"}}}
]], nil, X)
      h:stub("http", delayed(10))
      local res, _, _, r = H.run(h, wf, {})
      assert.are.equal("/", res.outputs.s1)
      assert.are.equal(10, r.elapsed_ms)
      assert.are.equal(1, #r.timers)
      assert.are.equal(10, r.timers[1].cancelled_at)
    end)
  end)

  describe("publish_result", function()
    it("publishes step results in completion order, with the query", function()
      local wf, h = H.load([[
intent: p
steps:
  - {id: slow, tool: {name: http, args: {url: "http://x/slow"}}, publish_result: true, depends_on: []}
  - {id: fast, tool: {name: http, args: {url: "http://x/fast"}}, publish_result: true, depends_on: []}
  - {id: quiet, tool: {name: echo}, depends_on: []}
  - {id: extra, run: "sio.publish({n = 1}); sio.publish('two'); return 'done'", depends_on: [fast]}
]], nil, X)
      h:stub("http", function(req)
        return testing.after(req.url:find("slow") and 100 or 10, { status = 200, body = req.url })
      end)
      local res, err, pubs = H.run(h, wf, { query = "q?" })
      assert.is_nil(err)
      assert.are.same({
        { id = "fast", payload = "http://x/fast", query = "q?" },
        { id = "extra", payload = '{"n":1}', query = "q?" },
        { id = "extra", payload = "two", query = "q?" },
        { id = "slow", payload = "http://x/slow", query = "q?" },
      }, pubs)
      assert.are.equal("done", res.outputs.extra)
    end)
  end)

  describe("result", function()
    it("has summary, steps, outputs and the declared output", function()
      local wf, h = H.load([[
intent: out
steps:
  - {id: s1, tool: {name: echo, args: {title: "${A.query | upper}"}}}
output:
  title: "${A.s1.json.title}"
  raw: "${A.s1.payload}"
]])
      local res = H.run(h, wf, { query = "x" })
      assert.are.same({
        summary = "workflow out: 1 steps ok, 0 skipped",
        steps = { "s1" },
        outputs = { s1 = '{"title":"X"}' },
        title = "X",
        raw = '{"title":"X"}',
      }, res)
    end)
  end)

  describe("limits", function()
    it("a tripped limit ends the execution even if user code swallows the error", function()
      local wf, h = H.load([[
intent: k
steps:
  - id: s1
    run: |
      local ok = pcall(function() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end)
      return "swallowed"
  - {id: s2, tool: {name: echo}}
]], nil, { memory = "4m" })
      local res, err, _, r = H.run(h, wf, {})
      assert.is_nil(res)
      assert.are.same({ class = "permanent", message = "memory limit exceeded", step = "s1", killed = true }, err)
      assert.are.equal("memory limit exceeded", r.killed)
    end)
  end)

  describe("sio api", function()
    it("kv is namespaced by workflow intent", function()
      local wf, h = H.load([[
intent: store
steps:
  - {id: s1, run: "sio.kv.set('k', A.query); return sio.kv.get('k')"}
  - {id: s2, tool: {name: kv, args: {op: get, key: k}}}
  - {id: s3, run: "sio.kv.del('k'); return tostring(sio.kv.get('k'))"}
]])
      local res, _, _, r = H.run(h, wf, { query = "v1" })
      assert.are.equal("v1", res.outputs.s1)
      assert.are.equal("v1", res.outputs.s2)
      assert.are.equal("nil", res.outputs.s3)
      assert.are.same({}, h.kv)
      assert.are.equal("wf:store:k", r:calls_of("kv")[1].key)
      H.run(h, wf, { query = "v2" })
      assert.is_nil(h.kv.k)
    end)

    it("kv failures are transient", function()
      local wf, h = H.load("intent: s\nsteps:\n  - {id: s1, run: \"return sio.kv.get('x')\"}\n")
      h:stub("kv", testing.fail("redis unavailable"))
      local _, err = H.run(h, wf, {})
      assert.are.equal("transient", err.class)
      assert.matches("redis unavailable", err.message)
    end)

    it("kafka produce through the host", function()
      local wf, h = H.load([[
intent: k
steps:
  - {id: s1, tool: {name: kafka, args: {topic: t1, key: "${A.query}", value: {q: "${A.query}"}}}}
  - {id: s2, run: "sio.kafka.produce('t2', 'k2', 'v2'); return 'ok'"}
]])
      local res = H.run(h, wf, { query = "hi" })
      assert.are.same({
        { topic = "t1", key = "hi", value = '{"q":"hi"}' },
        { topic = "t2", key = "k2", value = "v2" },
      }, h.produced)
      assert.are.equal("ok", res.outputs.s2)
    end)

    it("http requests pass method, headers, body and timeout; non-http URLs are refused", function()
      local wf, h = H.load([[
intent: h
steps:
  - id: s1
    run: |
      local r = sio.http.request{method = "post", url = "https://api.example.com/x",
        headers = {["content-type"] = "application/json"}, body = {a = 1}, timeout = "2s"}
      return r.body
  - id: s2
    run: "return sio.http.request{url = 'file:///etc/passwd'}.body"
]], nil, X)
      h:stub("http", { status = 200, body = "ok" })
      local _, err, _, r = H.run(h, wf, {})
      local calls = r:calls_of("http")
      assert.are.equal(1, #calls)
      assert.are.same({ method = "POST", url = "https://api.example.com/x",
        headers = { ["content-type"] = "application/json" }, body = '{"a":1}', timeout_ms = 2000 },
        calls[1].args)
      assert.are.equal("permanent", err.class)
      assert.are.equal("s2", err.step)
      assert.matches("only http%(s%) URLs", err.message)
    end)

    it("log, json, time and id", function()
      local wf, h = H.load([[
intent: misc
steps:
  - id: s1
    run: |
      sio.log("info", "hello", {n = 1})
      return sio.json.encode({t = sio.time.now(), u = sio.time.unix(), id = sio.id(),
        d = sio.json.decode('{"x":[1]}').x[1]})
]])
      local res, _, _, r = H.run(h, wf, {})
      local out = cjson.decode(res.outputs.s1)
      assert.are.equal(0, out.t)
      assert.are.equal(1700000000, out.u)
      assert.are.equal(1, out.d)
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", out.id)
      local line = r.logs[1]
      assert.are.same({ "info", "hello", 1, "misc", "s1" }, { line.level, line.msg, line.n, line.intent, line.step })
    end)

    it("user code gets a fresh environment per command", function()
      local wf, h = H.load([[
intent: env
steps:
  - {id: s1, run: "counter = (counter or 0) + 1; return tostring(counter)"}
]])
      assert.are.equal("1", H.run(h, wf, {}).outputs.s1)
      assert.are.equal("1", H.run(h, wf, {}).outputs.s1)
    end)

    it("a step that yields outside sio.await fails permanently", function()
      local wf, h = H.load("intent: y\nsteps:\n  - {id: s1, run: \"coroutine.yield('wait')\"}\n")
      local _, err = H.run(h, wf, {})
      assert.are.equal("permanent", err.class)
      assert.matches("yielded outside sio.await", err.message)
    end)
  end)
end)
