-- wrk script used by bench/bench_runner.py: POST one JSON body (read from a
-- file) with an optional bearer key, and print one machine-readable summary
-- line, "WRKJSON {...}", when the run is over.
--   BENCH_BODY  path of the request body file (required)
--   BENCH_KEY   bearer token for the Authorization header (optional)
-- wrk counts a request when its whole response has arrived, so for SSE
-- bodies the latency is that of the complete stream.
local body_path = os.getenv("BENCH_BODY")
assert(body_path, "BENCH_BODY must name a request body file")
local f = assert(io.open(body_path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

function done(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"p%s":%d', (tostring(p):gsub("%.", "_")), latency:percentile(p))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(pct, ",")))
end
