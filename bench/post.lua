-- wrk script: POST the SubjectAccessReview in bench/sar.json, count non-2xx as errors.
local f = assert(io.open(os.getenv("SAR_FILE") or "bench/sar.json", "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d socket_errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
