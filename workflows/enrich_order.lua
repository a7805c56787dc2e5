-- Enrich an order: validate it, fetch the customer, reserve the stock, and
-- price it with the customer's discount.
--
--   sio-orchestrator run enrich_order \
--     --attrs '{"order_id":"o-1","customer_id":"42","items":[{"sku":"A","qty":2,"price":5}]}'
--
-- The warehouse confirms reservations asynchronously: the first attempt of
-- `reserve` places the reservation (POST), remembers it in the kv store and
-- raises a transient error; the engine retries after its backoff, and the
-- next attempt reads the confirmation (GET).  Needs Redis for sio.kv.
return {
  intent = "enrich_order",
  description = "Validate an order, reserve its stock and price it for the customer.",
  keywords = { "order", "enrich", "pricing" },
  steps = {
    {
      id = "validate",
      text = "Check the order and compute its subtotal",
      depends_on = {},
      run = function(A)
        if type(A.order_id) ~= "string" or A.order_id == "" then
          sio.error.permanent("order_id is required")
        end
        local items = A.items
        if type(items) ~= "table" or #items == 0 then
          sio.error.permanent("order " .. A.order_id .. " has no items")
        end
        local subtotal, count = 0, 0
        for i, it in ipairs(items) do
          if type(it.sku) ~= "string" then sio.error.permanent("item " .. i .. " has no sku") end
          local qty = math.tointeger(it.qty or 1) or 1
          subtotal = subtotal + qty * (tonumber(it.price) or 0)
          count = count + qty
        end
        return { order_id = A.order_id, subtotal = subtotal, units = count }
      end,
    },
    {
      id = "customer",
      text = "Fetch the customer (tier and discount)",
      depends_on = {},
      tool = { name = "http", args = { url = "https://crm.internal.example/customers/${A.customer_id}" } },
      timeout = "5s",
      retries = 1,
    },
    {
      id = "reserve",
      text = "Reserve the stock (confirmed asynchronously by the warehouse)",
      depends_on = { "validate" },
      retries = 3,
      timeout = "10s",
      run = function(A, args, ctx)
        local key = "reservation:" .. A.order_id
        local pending = sio.kv.get(key)
        if not pending then
          local resp = sio.http.request({
            method = "POST", url = "https://warehouse.internal.example/reservations",
            body = { order_id = A.order_id, items = A.items }, timeout = "3s",
          })
          if resp.status ~= 202 and resp.status ~= 200 then
            sio.error.permanent("warehouse refused order " .. A.order_id .. ": status " .. resp.status)
          end
          local id = sio.json.decode(resp.body).reservation_id
          sio.kv.set(key, id, 3600)
          sio.log("info", "reservation placed", { order = A.order_id, reservation = id })
          sio.error.transient("reservation " .. id .. " pending confirmation")
        end
        local resp = sio.http.request({ url = "https://warehouse.internal.example/reservations/" .. pending })
        local r = resp.status == 200 and sio.json.decode(resp.body) or {}
        if r.state ~= "confirmed" then
          sio.error.transient("reservation " .. pending .. " is " .. tostring(r.state or resp.status))
        end
        return { reservation_id = pending, warehouse = r.warehouse, attempts = ctx.attempt }
      end,
      publish_result = true,
    },
    {
      id = "price",
      text = "Apply the customer's discount",
      depends_on = { "validate", "customer", "reserve" },
      run = function(A)
        local c = A.customer.json or {}
        local discount = tonumber(c.discount) or 0
        local subtotal = A.validate.json.subtotal
        local total = math.floor(subtotal * (100 - discount) + 0.5) / 100
        return { subtotal = subtotal, discount = discount, total = total, tier = c.tier or "standard" }
      end,
      publish_result = true,
    },
    {
      id = "record_coupon",
      text = "Record the coupon for the marketing team",
      guard = "A.coupon ~= nil and A.coupon ~= ''",
      depends_on = { "price" },
      tool = { name = "kafka", args = { topic = "marketing.coupons", key = "${A.order_id}", value = "${A.coupon}" } },
    },
  },
  output = function(A)
    return {
      order_id = A.order_id,
      total = A.price.json.total,
      reservation = A.reserve.json.reservation_id,
    }
  end,
}
