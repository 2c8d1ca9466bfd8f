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

dofile("bench/report.lua")
