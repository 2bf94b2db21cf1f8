-- wrk script for POST /v1/screen: cycles through request bodies, one JSON
-- object per line in $BODIES, with the API key in $RINGFENCE_KEY.
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("RINGFENCE_KEY"),
  ["Content-Type"] = "application/json",
}
local i = 0
function setup(thread) thread:set("offset", math.random(#bodies)) end
function request()
  i = i + 1
  return wrk.format("POST", "/v1/screen", headers, bodies[(i + offset) % #bodies + 1])
end
local errors = 0
function response(status) if status ~= 200 then errors = errors + 1 end end
function done(summary, latency, requests)
  io.write(string.format("non-2xx or socket errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("latency p50=%.0fus p90=%.0fus p99=%.0fus max=%.0fus\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
