-- wrk script of bench/reading.py: signed-in readers paging and searching, all at once.
--
--   wrk -t 50 -c 50 -d 30s -s bench/reading_load.lua http://127.0.0.1:PORT -- COOKIES PATHS THINK_MS
--
-- One wrk thread per reader, each with one connection and its own session cookie (line n of
-- COOKIES for thread n), so every reader is a separate signed-in session as 50 people would be.
-- Each request is the next line of PATHS (first pages, deeper pages by their cursors, the
-- conversation list, message opens, searches), every reader starting at a different line.
-- Every answer but a 200 is counted: wrk itself counts only 4xx and 5xx, not a redirect to login.
-- THINK_MS (0: none) is how long a reader looks at a page before the next request, drawn
-- uniformly from half to one and a half times it; wrk's latencies do not include it.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("reader", #threads)
end

local function lines(path)
   local found = {}
   for line in io.lines(path) do
      if line ~= "" then
         table.insert(found, line)
      end
   end
   return found
end

function init(args)
   local cookies = lines(args[1])
   paths = lines(args[2])
   cookie = cookies[(reader - 1) % #cookies + 1]
   position = (reader * 7) % #paths
   not_ok = 0
   think = tonumber(args[3] or "0")
   math.randomseed(reader)
end

function delay()
   if think <= 0 then
      return 0
   end
   return math.random(math.floor(think / 2), math.floor(think * 3 / 2))
end

function request()
   position = position % #paths + 1
   return wrk.format("GET", paths[position], { Cookie = cookie })
end

function response(status, headers, body)
   if status ~= 200 then
      not_ok = not_ok + 1
   end
end

function done(summary, latency, requests)
   local refused = 0
   for _, thread in ipairs(threads) do
      refused = refused + thread:get("not_ok")
   end
   local errors = summary.errors
   io.write(string.format("postane requests %d\n", summary.requests))
   io.write(string.format("postane seconds %.3f\n", summary.duration / 1e6))
   for _, share in ipairs({ 50, 95, 99 }) do
      io.write(string.format("postane p%d %d\n", share, latency:percentile(share)))
   end
   io.write(string.format("postane not_ok %d\n", refused))
   io.write(string.format(
      "postane socket_errors connect %d, read %d, write %d, timeout %d\n",
      errors.connect, errors.read, errors.write, errors.timeout
   ))
end
