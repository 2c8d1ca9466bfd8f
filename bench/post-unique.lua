-- wrk script: like post.lua, but every request names a different object, so no two bodies
-- are equal and Rampart's exact-request cache never hits (worst case: every request evaluated).
local f = assert(io.open(os.getenv("SAR_FILE") or "bench/sar.json", "r"))
local template = f:read("*a")
f:close()
local counter = 0
local thread_id = 0
setup = function(thread) thread:set("thread_id", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  local body = template:gsub('"namespace":"default"', '"namespace":"default","name":"obj-' .. thread_id .. '-' .. counter .. '"')
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body) end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d socket_errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
