-- workflows/support_triage.yaml through the real engine and sandbox
-- (sio.testing), with the CRM and pager services stubbed.
local testing = require "sio.testing"

local CUSTOMERS = {
  ["42"] = { name = "Ada", account_manager = "Grace" },
  ["7"] = { name = "Linus" },
}

-- the CRM answers from CUSTOMERS; the pager hands out escalation ids
local function services(req)
  local id = req.url:match("^https://crm%.internal%.example/customers/(.*)$")
  if id then
    local c = CUSTOMERS[id]
    if not c then return { status = 404, body = "no such customer" } end
    return { status = 200, json = c }
  end
  if req.url == "https://pager.internal.example/escalations" then return { status = 201, json = { id = "E-1" } } end
  if req.url == "https://pager.internal.example/oncall" then return { status = 202, json = { paged = true } } end
  return { status = 500, body = "unexpected " .. req.url }
end

describe("workflows/support_triage.yaml", function()
  local h
  before_each(function()
    h = testing.load("support_triage", { http_allow = "crm.internal.example,pager.internal.example" })
    h:stub("http", services)
  end)

  it("gold customers: escalated to their account manager with values templated from lookup and classify", function()
    local r = h:run({ query = "I was charged twice", customer_id = "42", tier = "gold" })
    r:expect_ok()
    r:expect_ran("lookup", "classify", "escalate", "reply")
    r:expect_skipped("ticket", "page_oncall")
    -- the lookup's rendered args, and the escalation body built from ${A.lookup.json.*}
    assert.are.equal("https://crm.internal.example/customers/42", r:args("lookup").url)
    local calls = r:calls_of("http")
    assert.are.equal(2, #calls)
    assert.are.equal("POST", calls[2].args.method)
    assert.are.same({ customer = "Ada", account_manager = "Grace", topic = "billing", query = "I was charged twice" },
      require("cjson").decode(calls[2].args.body))
    assert.are.same({ "escalate", "reply" }, { r.published[1].step_id, r.published[2].step_id })
    assert.are.equal("I was charged twice", r.published[1].query)
    assert.are.equal("Hi Ada, Grace will contact you shortly (ref E-1).", r.result.reply)
    assert.are.equal(true, r.result.escalated)
    assert.are.equal("billing", r.result.topic)
    assert.are.equal("workflow support_triage: 4 steps ok, 2 skipped", r.result.summary)
  end)

  it("other tiers get a ticket in the topic's queue; the guard drops the escalation", function()
    local r = h:run({ query = "the app shows an error", customer_id = "7", tier = "silver" })
    r:expect_ok()
    r:expect_skipped("escalate", "page_oncall")
    assert.are.same({ queue = "technical", customer = "Linus", summary = "the app shows an error" }, r:json("ticket"))
    assert.are.equal(false, r.result.escalated)
    assert.are.equal("Hi Linus, we opened a technical ticket for you.", r.result.reply)
    assert.are.equal(1, #r:calls_of("http")) -- only the CRM
  end)

  it("urgent technical problems page the on-call engineer (a guard on classify's output)", function()
    local r = h:run({ query = "URGENT: the site is down", customer_id = "7" })
    r:expect_ok()
    r:expect_ran("page_oncall")
    assert.is_true(r.steps.page_oncall.guard)
    assert.are.same({ reason = "URGENT: the site is down" }, r:args("page_oncall").body)
  end)

  it("lookup and classify run concurrently; the rest wait for both", function()
    h:stub("http", function(req) return testing.after(300, services(req)) end)
    local r = h:run({ query = "invoice", customer_id = "42", tier = "gold" })
    r:expect_ok()
    assert.are.equal("classify", r.ran[1]) -- classify does not wait for the CRM
    assert.are.equal(600, r.elapsed_ms)   -- lookup 300 ms, then escalate 300 ms
  end)

  it("a CRM outage (5xx) is retried twice, then the command fails transiently", function()
    h:stub("http", { status = 503, body = "maintenance" })
    local r = h:run({ query = "hello", customer_id = "42", tier = "gold" })
    r:expect_error("transient", "status 503", "lookup")
    assert.are.equal(2, r.retries.lookup)
    assert.are.equal(3, #r:calls_of("http"))
    assert.are.equal(600, r.elapsed_ms) -- backoff 200 ms + 400 ms, on the virtual clock
  end)

  it("an unknown customer (404) is a permanent failure of lookup", function()
    local r = h:run({ query = "hello", customer_id = "nobody", tier = "gold" })
    r:expect_error("permanent", "status 404", "lookup")
    assert.is_nil(r.retries.lookup)
  end)

  it("a CRM that never answers fails each attempt at the request's 2 s timeout, without waiting", function()
    h:stub("http", testing.never())
    local r = h:run({ query = "hello", customer_id = "42" })
    r:expect_error("transient", "^http: timed out$", "lookup")
    assert.are.equal(2, r.retries.lookup)
    assert.are.equal(3 * 2000 + 200 + 400, r.elapsed_ms) -- before the step's own 5 s
  end)
end)
