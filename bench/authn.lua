-- wrk script for TokenReviews: TOKEN_URL is a presigned GetCallerIdentity URL. With
-- DISTINCT=1 every request carries a different token (its X-Amz-Signature counts up), so no
-- authenticator can answer from a cache; otherwise the same token is sent every time.
local url = assert(os.getenv("TOKEN_URL"), "TOKEN_URL is required")
local distinct = os.getenv("DISTINCT") == "1"
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- base64url without padding, as the k8s-aws-v1 token format has it.
local function b64url(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = (b == nil) and 2 or ((c == nil) and 3 or 4)
    for j = 1, chars do
      local idx = math.floor(v / 2 ^ (6 * (4 - j))) % 64
      out[#out + 1] = alphabet:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

local function body(token)
  return '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"' .. token .. '"}}'
end

local fixed = body("k8s-aws-v1." .. b64url(url .. "&X-Amz-Signature=" .. string.rep("0", 64)))
local counter, thread_id = 0, 0
setup = function(thread) thread:set("thread_id", thread_id); thread_id = thread_id + 1 end
request = function()
  local b = fixed
  if distinct then
    counter = counter + 1
    local sig = string.format("%08x%08x", thread_id, counter) .. string.rep("0", 48)
    b = body("k8s-aws-v1." .. b64url(url .. "&X-Amz-Signature=" .. sig))
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, b)
end

dofile("bench/report.lua")
