-- wrk script for bench/http_load.py: replays pre-signed raw HTTP requests and reports JSON.
--
-- Usage: wrk -s bench/http_load.lua ... URL -- <request-file-prefix>
-- Thread i (1-based) reads <prefix>.<i>, a sequence of "<byte length>\n<raw request bytes>"
-- records written by http_load.py (complete HTTP/1.1 requests, keep-alive, already signed),
-- and cycles through them. Every response status is counted, so the caller can tell 201
-- (order placed), 200 (cancel-all done) and any non-2xx apart. done() prints one line:
-- "WRK_JSON {...}" with requests, duration, latency percentiles (ms) and per-status counts.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

function init(args)
   local prefix = args[1]
   local path = prefix .. "." .. tid
   local f = assert(io.open(path, "rb"))
   reqs = {}
   while true do
      local line = f:read("*l")
      if not line or line == "" then break end
      local n = tonumber(line)
      reqs[#reqs + 1] = f:read(n)
   end
   f:close()
   assert(#reqs > 0, "no requests in " .. path)
   idx = 0
   statuses = {}
end

function request()
   idx = idx + 1
   if idx > #reqs then idx = 1 end
   return reqs[idx]
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

local function ms(us)
   return string.format("%.3f", us / 1000.0)
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      local s = thread:get("statuses")
      if s then
         for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
      end
   end
   local parts = {}
   for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"latency_ms": {"mean": %s, "max": %s, "p50": %s, "p90": %s, "p99": %s, "p999": %s}, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"statuses": {%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      ms(latency.mean), ms(latency.max), ms(latency:percentile(50)), ms(latency:percentile(90)),
      ms(latency:percentile(99)), ms(latency:percentile(99.9)),
      e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
