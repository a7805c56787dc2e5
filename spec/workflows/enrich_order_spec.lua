-- workflows/enrich_order.lua: Lua step logic, a step that raises
-- sio.error.transient on its first attempt and succeeds on the retry, kv and
-- http stubbed.
local testing = require "sio.testing"
local cjson = require "cjson"

local ORDER = { order_id = "o-1", customer_id = "42", items = { { sku = "A", qty = 2, price = 5 }, { sku = "B", qty = 1, price = 12.5 } } }

describe("workflows/enrich_order.lua", function()
  local h, confirmed
  before_each(function()
    h = testing.load("enrich_order", { http_allow = "crm.internal.example,warehouse.internal.example" })
    confirmed = true
    h:stub("http", function(req)
      if req.url == "https://crm.internal.example/customers/42" then
        return { status = 200, json = { tier = "gold", discount = 10 } }
      elseif req.method == "POST" and req.url == "https://warehouse.internal.example/reservations" then
        return { status = 202, json = { reservation_id = "R-9" } }
      elseif req.url == "https://warehouse.internal.example/reservations/R-9" then
        return { status = 200, json = { state = confirmed and "confirmed" or "pending", warehouse = "W1" } }
      end
      return { status = 404 }
    end)
  end)

  it("reserve fails transiently on its first attempt, succeeds on the retry; the order is priced", function()
    local r = h:run(ORDER)
    r:expect_ok()
    assert.are.equal(2, r.steps.reserve.attempts)
    assert.are.same({ reserve = 1 }, r.retries)
    assert.are.same({ reservation_id = "R-9", warehouse = "W1", attempts = 2 }, r:json("reserve"))
    assert.are.same({ subtotal = 22.5, discount = 10, total = 20.25, tier = "gold" }, r:json("price"))
    assert.are.equal(20.25, r.result.total)
    assert.are.equal("R-9", r.result.reservation)
    -- the first attempt stored the reservation through sio.kv (namespaced per workflow)
    assert.are.equal("R-9", h.kv["wf:enrich_order:reservation:o-1"])
    local kv = r:calls_of("kv")
    assert.are.same({ "get", "set", "get" }, { kv[1].op, kv[2].op, kv[3].op })
    assert.are.equal(3600, kv[2].ttl)
    -- the retry came after the engine's 200 ms backoff, on the virtual clock
    local posts = r:calls_of("http")
    assert.are.equal(200, posts[#posts].at)
    assert.are.same({ "reserve", "price" }, { r.published[1].step_id, r.published[2].step_id })
    assert.are.equal("reservation placed", r.logs[1].msg)
    r:expect_skipped("record_coupon")
  end)

  it("keeps retrying while the warehouse says pending, then fails transiently", function()
    confirmed = false
    local r = h:run(ORDER)
    r:expect_error("transient", "reservation R%-9 is pending", "reserve")
    assert.are.equal(3, r.retries.reserve)
    assert.are.equal(200 + 400 + 800, r.elapsed_ms)
  end)

  it("a coupon is produced to Kafka with templated key and value", function()
    local r = h:run({ order_id = "o-2", customer_id = "42", items = { { sku = "A", price = 1 } }, coupon = "SPRING" })
    r:expect_ok()
    r:expect_ran("record_coupon")
    assert.are.same({ topic = "marketing.coupons", key = "o-2", value = "SPRING" }, h.produced[1])
    assert.are.same({ topic = "marketing.coupons", key = "o-2", value = "SPRING" }, r:args("record_coupon"))
  end)

  it("an order without items is a permanent error from the Lua step, and nothing is reserved", function()
    local r = h:run({ order_id = "o-3", customer_id = "42", items = {} })
    r:expect_error("permanent", "order o%-3 has no items", "validate")
    assert.are.equal("not_run", r.steps.reserve.status)
    assert.are.equal(0, #r:calls_of("kv"))
  end)

  it("the kv store can be stubbed too: a Redis outage is transient", function()
    h:stub("kv", function() return testing.fail("redis: connection refused") end)
    local r = h:run(ORDER)
    r:expect_error("transient", "connection refused", "reserve")
  end)
end)
