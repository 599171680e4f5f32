-- wrk script (bench/load.py, load_wrk): post each body of a file once, in the file's order, over the
-- connections of one wrk thread. The file holds each body after a line with its length in bytes.
-- Run with one thread (-t1): every thread would read the whole file and send each body again.
-- Past the last body it starts over; the gateway refuses those as replays, and the run counts them as failed.

local bodies, next_body = {}, 1

function init(args)
  local f = assert(io.open(args[1], "rb"))
  for size in f:lines() do
    bodies[#bodies + 1] = f:read(tonumber(size))
  end
  f:close()
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/xml"}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
                         e.connect + e.read + e.write + e.status + e.timeout,
                         latency:percentile(50.0), latency:percentile(99.0)))
end
