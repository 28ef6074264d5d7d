-- wrk script: GET /api/v1/products/{id} with ids drawn at random from the
-- file named by the IDS_FILE environment variable (one UUID per line).
local ids = {}

function init(args)
  local path = os.getenv("IDS_FILE")
  for line in io.lines(path) do
    ids[#ids + 1] = line
  end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

function request()
  return wrk.format("GET", "/api/v1/products/" .. ids[math.random(#ids)])
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("non-2xx: %d, socket errors: %d\n", non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
