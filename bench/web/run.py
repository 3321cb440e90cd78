#!/usr/bin/python3
"""Status page with many apps, in headless Chromium: time to the first
full render of the apps view, time for a text filter to apply, and the
latency from a state change (POST /api/v1/apps/<name>/sync) to the new
job on screen through GET /api/v1/stream.  Not part of `make test`.

  python3 bench/web/run.py [APPS]        (default 1000; GITOPSD_BUILD=build)
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "support"))
os.environ.setdefault("GITOPSD_BUILD", "build")

import harness  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def config(n):
    apps = ["  - {name: app-%04d, repo: deploy, path: apps/app-%04d,"
            " cluster: c, namespace: ns-%04d}" % (i, i, i) for i in range(n)]
    return ("server: {listen: \"127.0.0.1:{port}\"}\n"
            "admin: {listen: \"127.0.0.1:{admin_port}\"}\n"
            "state: {path: \"{tmp}/state.db\"}\n"
            "workdir: \"{tmp}/repos\"\n"
            "retry: {base_s: 60, max_s: 60, max_attempts: 1}\n"
            "repos:\n  - {name: deploy, url: \"{tmp}/none.git\", branch: main}\n"
            + harness.DEAD_CLUSTER + "apps:\n" + "\n".join(apps) + "\n")


def until(fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError("timed out")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    d = harness.Daemon(config(n), secrets=harness.DEAD_CLUSTER_FILES)
    d.start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--window-size=1200,900"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                           options=opts)
    try:
        rows = "return document.querySelectorAll('tr[data-app]').length"
        t0 = time.time()
        drv.get("http://127.0.0.1:%d/" % d.admin_port)
        until(lambda: drv.execute_script(rows) == n)
        first = time.time() - t0
        until(lambda: drv.find_element(By.ID, "live").text == "live")
        box = drv.find_element(By.ID, "filter")
        t0 = time.time()
        box.send_keys("app-0999" if n >= 1000 else "app-0000")
        until(lambda: drv.execute_script(rows) == 1)
        filt = time.time() - t0
        box.clear()
        drv.execute_script("const f = document.getElementById('filter');"
                           " f.dispatchEvent(new Event('input'));")
        until(lambda: drv.execute_script(rows) == n)
        lat = []
        for i in range(5):
            name = "app-%04d" % i
            t0 = time.time()
            r = harness.request(d.admin_port, "POST",
                                "/api/v1/apps/%s/sync" % name)
            job = r.json()["job"]
            sel = "tr[data-app='%s'] a[href='#/jobs/%d']" % (name, job)
            until(lambda: drv.execute_script(
                "return document.querySelector(arguments[0]) !== null", sel))
            lat.append(time.time() - t0)
        lat.sort()
        print("apps=%d first_render_s=%.2f filter_s=%.3f "
              "update_latency_s median=%.3f max=%.3f" %
              (n, first, filt, lat[len(lat) // 2], lat[-1]))
    finally:
        drv.quit()
        d.cleanup()


if __name__ == "__main__":
    main()
