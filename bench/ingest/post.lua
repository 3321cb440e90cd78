-- wrk script: POST one signed GitHub push with a unique X-GitHub-Delivery
-- per request (GitHub's signature covers the body only, so one signed body
-- serves every request).  Reads body.json and sig from BENCH_WORK.
local dir = os.getenv("BENCH_WORK")
local f = assert(io.open(dir .. "/body.json", "rb"))
local body = f:read("*a")
f:close()
f = assert(io.open(dir .. "/sig", "rb"))
local sig = f:read("*l")
f:close()

-- Several wrk processes at once (run.sh's postgres modes) tell their ids
-- apart by BENCH_TAG.
local tag = os.getenv("BENCH_TAG") or "0"
local threads = 0
local counter = 0
tid = tid or 0

function setup(thread)
	thread:set("tid", threads)
	threads = threads + 1
end

function request()
	counter = counter + 1
	return wrk.format("POST", nil, {
		["Content-Type"] = "application/json",
		["X-GitHub-Event"] = "push",
		["X-Hub-Signature-256"] = sig,
		["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d-%d",
		    tag, os.time(), tid, counter),
	}, body)
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d "
	    .. "p99_us=%d non2xx=%d errors=%d\n", summary.requests,
	    summary.duration, latency:percentile(50), latency:percentile(99),
	    e.status, e.connect + e.read + e.write + e.timeout))
end
