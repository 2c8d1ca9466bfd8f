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

dofile("bench/report.lua")
