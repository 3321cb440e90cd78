#!/usr/bin/python3
"""During the load: time admin API calls, which are the only SQLite calls
the event loop makes (reads on their own WAL connection; a manual sync is
a write that waits for the store thread's current commit).
usage: probe.py ADMIN_PORT SECONDS -> one line of results"""
import http.client
import sys
import time

port, secs = int(sys.argv[1]), float(sys.argv[2])
reads, writes = [], []
end = time.time() + secs
while time.time() < end:
    for method, path, out in (("GET", "/api/v1/events?limit=50", reads),
                              ("GET", "/api/v1/jobs?limit=50", reads),
                              ("POST", "/api/v1/apps/web/sync", writes)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t = time.perf_counter()
        c.request(method, path)
        r = c.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000)
        c.close()
    time.sleep(0.05)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else 0


print("admin API under load: reads p50 %.2f ms max %.2f ms (%d); "
      "manual sync (write) p50 %.2f ms max %.2f ms (%d)" % (
          pct(reads, 0.5), max(reads or [0]), len(reads),
          pct(writes, 0.5), max(writes or [0]), len(writes)))
