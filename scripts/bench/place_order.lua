-- wrk script: POST /api/v1/orders, one item of a product drawn at random
-- from the file named by IDS_FILE (one UUID per line), each order for a
-- random customer.
local ids = {}

local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

function init(args)
  for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

function request()
  local customer = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" ..
    hex(3) .. "-" .. hex(12)
  local product = ids[math.random(#ids)]
  local body = '{"customer_id":"' .. customer ..
    '","items":[{"product_id":"' .. product .. '","quantity":1}]}'
  return wrk.format("POST", "/api/v1/orders",
    { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d, socket errors: %d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
