"""The status page in a real browser: headless Chromium (selenium) against
a real gitopsd with the Kubernetes simulator and a bare Git repository.
Screenshots of every view go to <build>/artifacts/web/; with
UPDATE_DOCS_SCREENSHOT=1 the apps view also goes to docs/status-page.png."""
import json
import os
import shutil
import signal
import tempfile
import time
import unittest
import urllib.request
import uuid

import harness
from fault_peers import Kubesim, git

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "web-secret"
TOKEN = "web-admin-token-0123456789"

CONFIG = """
shutdown_timeout_s: 5
server: {listen: "127.0.0.1:{port}"}
admin: {listen: "127.0.0.1:{admin_port}", token_file: admin.token}
state: {path: "{tmp}/state.db"}
workdir: "{tmp}/repos"
retry: {base_s: 1, max_s: 2, max_attempts: 2}
sources:
  - {name: github, type: github, secret_file: github.secret}
repos:
  - {name: deploy, url: "%(url)s", poll_interval_s: 0, branch: main}
clusters:
  - {name: sim, kubeconfig: "%(kubeconfig)s"}
notifiers:
  - {name: audit, type: webhook, url: "http://127.0.0.1:9/", on: [all]}
notify_default: [audit]
apps:
  - name: demo
    repo: deploy
    path: apps/demo
    cluster: sim
    namespace: demo
    sync: {auto: true, prune: true, timeout_s: 30}
  - name: billing
    repo: deploy
    path: apps/billing
    images:
      - {repository: registry.example/billing, policy: {semver: ">=1"}}
"""

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:%s
"""


def browser_ok():
    if not HAVE_SELENIUM:
        return False, "python3-selenium not installed (make deps)"
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        return False, "chromium / chromium-driver not installed (make deps)"
    try:
        harness.binary()
    except RuntimeError:
        return False, "gitopsd not built"
    return True, ""


OK, WHY = browser_ok()


def artifacts_dir():
    build = os.environ.get("GITOPSD_BUILD", "build-san")
    d = os.path.join(ROOT, build, "artifacts", "web")
    os.makedirs(d, exist_ok=True)
    return d


@unittest.skipUnless(OK, WHY)
class StatusPageTest(unittest.TestCase):
    def setUp(self):
        self.sim = Kubesim()
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="web-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bare = os.path.join(self.tmp, "deploy.git")
        self.work = os.path.join(self.tmp, "work")
        git("init", "-q", "--bare", "-b", "main", self.bare)
        git("init", "-q", "-b", "main", self.work)
        self.art = artifacts_dir()
        text = CONFIG % {"url": self.bare, "kubeconfig": self.sim.kubeconfig}
        self.d = harness.Daemon(text, secrets={"github.secret": SECRET,
                                               "admin.token": TOKEN + "\n"})
        self.addCleanup(self.d.cleanup)
        self.first = self.commit("1.0.0")
        self.d.start()
        self.push(self.first)
        self.wait_api_app(self.first)
        self.driver = self.start_browser()
        self.addCleanup(self.driver.quit)
        self.base = "http://127.0.0.1:%d/" % self.d.admin_port

    # ---- peers ----

    def commit(self, tag):
        files = {"apps/demo/ns.yaml": "apiVersion: v1\nkind: Namespace\n"
                 "metadata:\n  name: demo\n",
                 "apps/demo/web.yaml": DEPLOY % tag,
                 "apps/billing/kustomization.yaml": "images: []\n"}
        for rel, text in files.items():
            p = os.path.join(self.work, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", "web " + tag, cwd=self.work)
        git("push", "-q", self.bare, "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, after):
        body = harness.github_push_body(self.bare, after=after)
        r = self.d.post("/hooks/github", body, harness.github_headers(
            SECRET, body, str(uuid.uuid4())))
        self.assertEqual(r.status, 202, r)

    def wait_api_app(self, revision, timeout=60):
        deadline = time.time() + timeout
        app = None
        while time.time() < deadline:
            r = harness.request(self.d.admin_port, "GET", "/api/v1/apps/demo",
                                headers={"Authorization": "Bearer " + TOKEN})
            if r.status == 200:
                app = r.json()
                if app["revision"] == revision and app["health"] == "Healthy":
                    return app
            time.sleep(0.2)
        self.fail("demo never reached %s: %r\n%s" %
                  (revision, app, self.d.log()[-3000:]))

    def start_browser(self):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--window-size=1200,900",
                  "--no-first-run", "--disable-extensions",
                  "--disable-background-networking",
                  "--user-data-dir=" + os.path.join(self.tmp, "chrome")):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            return webdriver.Chrome(service=Service(DRIVER), options=opts)
        except WebDriverException as e:
            self.skipTest("chromium cannot run here: %s" % e.msg)

    # ---- browser helpers ----

    def until(self, fn, what, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = fn()
                if last:
                    return last
            except WebDriverException as e:
                last = e
            time.sleep(0.1)
        self.shot("failed")
        self.fail("timed out waiting for %s (last: %r)\n%s" %
                  (what, last, self.d.log()[-2000:]))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]);"
                       " return e ? e.textContent : null;", css)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(self.art, name + ".png"))

    def severe_logs(self):
        return [e for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE"]

    def login(self, token):
        self.until(lambda: self.js(
            "return document.getElementById('login').open"), "token dialog")
        box = self.driver.find_element(By.ID, "token")
        box.clear()
        box.send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR,
                                 "#login-form button").click()

    def app_row(self, name):
        return "tr[data-app=%s]" % json.dumps(name)

    # ---- the test ----

    def test_page_live_views_and_token(self):
        d = self.driver
        d.get(self.base)
        # The token flow: a wrong one is refused and asked again; the
        # right one is kept for the tab and sent as a bearer header.
        self.login("wrong-token")
        self.until(lambda: self.text("#login-error") ==
                   "That token was refused.", "refusal message")
        self.login(TOKEN)
        row = self.app_row("demo")
        self.until(lambda: self.text(row + " .badge.h-Healthy") == "Healthy",
                   "demo shown Healthy")
        self.assertEqual(self.text(row + " .rev"), self.first[:7])
        self.assertEqual(self.text(self.app_row("billing") + " .badge"),
                         "Unknown")
        self.assertIn("registry.example/billing",
                      self.text(self.app_row("billing")))
        self.assertEqual(self.js(
            "return sessionStorage.getItem('gitopsd.token')"), TOKEN)
        self.until(lambda: self.text("#live") == "live", "stream live")
        urls = self.js("return performance.getEntriesByType('resource')"
                       ".map(e => e.name)")
        self.assertTrue(any("/api/v1/stream" in u for u in urls), urls)
        self.assertFalse([u for u in urls if TOKEN in u], urls)
        self.shot("apps")
        if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
            d.save_screenshot(os.path.join(ROOT, "docs", "status-page.png"))

        # Relative times carry the absolute one on hover.
        t = self.js("const t = document.querySelector('main time');"
                    " return t && [t.textContent, t.title,"
                    " t.getAttribute('datetime')];")
        self.assertTrue(t and t[0].endswith(("ago", "just now")), t)
        self.assertIn(t[2], t[1])

        # Dark mode follows the system: another background, same page.
        light = self.js("return getComputedStyle(document.body)"
                        ".backgroundColor")
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark"}]})
        dark = self.js("return getComputedStyle(document.body)"
                       ".backgroundColor")
        self.assertNotEqual(light, dark)
        self.shot("apps-dark")
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "light"}]})

        # The keyboard alone reaches an app: Tab to its link, Enter.
        d.find_element(By.TAG_NAME, "body").click()
        for _ in range(30):
            el = d.switch_to.active_element
            if el.get_attribute("href") and \
                    el.get_attribute("href").endswith("#/apps/demo"):
                break
            el.send_keys(Keys.TAB)
        else:
            self.fail("Tab never reached the demo link")
        self.assertEqual(self.js(
            "const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle"), "solid")
        d.switch_to.active_element.send_keys(Keys.ENTER)
        self.until(lambda: d.current_url.endswith("#/apps/demo"),
                   "Enter opens the app")
        d.back()
        self.until(lambda: self.text(row + " .rev"), "apps again")

        # Filter by text and by state, reflected in the URL.
        box = d.find_element(By.ID, "filter")
        box.send_keys("bill")
        self.until(lambda: self.js(
            "return document.querySelectorAll('tr[data-app]').length") == 1,
            "text filter")
        self.assertIn("q=bill", d.current_url)
        box.clear()
        box.send_keys(" ")
        box.clear()
        d.get(self.base + "#/?state=Healthy")
        self.until(lambda: self.js(
            "return [...document.querySelectorAll('tr[data-app]')]"
            ".map(r => r.dataset.app).join()") == "demo", "state filter")
        d.get(self.base + "#/")

        # A signed push changes the revision on screen without a reload.
        self.until(lambda: self.text(row + " .rev") == self.first[:7],
                   "apps view again")
        self.js("window.__noReload = 1")
        t0 = time.time()
        second = self.commit("1.1.0")
        self.push(second)
        self.until(lambda: self.text(row + " .rev") == second[:7],
                   "new revision on screen", timeout=60)
        self.assertEqual(self.js("return window.__noReload"), 1)
        print("push to revision on screen: %.2f s" % (time.time() - t0))

        # One app: "Sync now" makes a job appear, live.
        d.get(self.base + "#/apps/demo")
        self.until(lambda: self.text("main h1") == "demo", "app view")
        self.until(lambda: self.js(
            "return document.querySelectorAll('tr[data-job]').length") > 0,
            "app's jobs")
        before = set(self.js("return [...document.querySelectorAll("
                             "'tr[data-job]')].map(r => r.dataset.job)"))
        btn = [b for b in d.find_elements(By.TAG_NAME, "button")
               if b.text == "Sync now"][0]
        btn.click()
        new = self.until(lambda: set(self.js(
            "return [...document.querySelectorAll('tr[data-job]')]"
            ".map(r => r.dataset.job)")) - before, "new sync job row")
        job = sorted(new, key=int)[-1]
        self.until(lambda: "Resources" in (self.text("main") or "") and
                   self.js("return [...document.querySelectorAll('td')]"
                           ".some(t => t.textContent.endsWith('Deployment'))"),
                   "resources of the last sync")
        self.shot("app")

        # One job, pasted as a URL: attempts and result.
        d.get(self.base + "#/jobs/" + job)
        self.until(lambda: self.text("main h1") == "Job #" + job, "job view")
        self.until(lambda: "succeeded" in (self.text("main dl") or ""),
                   "job succeeded", timeout=60)
        self.shot("job")
        # A job's alerts (notify jobs about it, in no event; a repeat of
        # the same outcome is deduplicated, so take the one there is).
        alert = self.until(lambda: self.d.api(
            "/api/v1/jobs?kind=notify&app=demo", TOKEN)["jobs"],
            "an alert")[-1]["alert"]
        self.assertEqual(alert["notifier"], "audit")
        self.assertEqual(alert["event"], "job.succeeded")
        d.get(self.base + "#/jobs/%d" % alert["job"])
        self.until(lambda: "job.succeeded to audit" in
                   (self.text("main dl") or ""), "alert on the job view")
        self.shot("job-alerts")

        # One event: the trace of the push, with its jobs.
        ev = self.d.api("/api/v1/events?limit=1", TOKEN)["events"][0]
        d.get(self.base + "#/events/%d" % ev["id"])
        self.until(lambda: self.js(
            "return document.querySelectorAll('ol.trace > li').length") >=
            1 + len(ev["jobs"]), "event trace")
        self.shot("event")

        # Narrow phone screen: no sideways scrolling.
        d.set_window_size(390, 844)
        d.get(self.base + "#/")
        self.until(lambda: self.text(row + " .rev"), "apps at 390 px")
        self.assertLessEqual(self.js(
            "return document.documentElement.scrollWidth"), 390)
        self.shot("apps-390")
        d.set_window_size(1200, 900)

        # Nothing went wrong in the page until here.  (The restart below
        # makes the browser log refused connections, which are expected.)
        bad = [e for e in self.severe_logs()
               if "wrong-token" not in e["message"] and
               "401" not in e["message"]]
        self.assertEqual(bad, [])

        # A daemon restart: the page says it is reconnecting, then is live
        # again and shows what changed meanwhile, still without a reload.
        self.d.stop()
        self.until(lambda: self.text("#live") == "reconnecting…",
                   "reconnecting shown")
        self.shot("reconnecting")
        self.d.start()
        self.until(lambda: self.text("#live") == "live", "live again",
                   timeout=30)
        self.assertEqual(self.js("return window.__noReload"), 1)


@unittest.skipUnless(OK, WHY)
class StatusPageNoTokenTest(unittest.TestCase):
    """Without a token the page asks nothing and the stream answers at once
    (the listener stays loopback-only)."""

    def test_stream_headers_and_messages(self):
        d = harness.Daemon(CONFIG.replace(", token_file: admin.token", "")
                           % {"url": "/nonexistent", "kubeconfig":
                              "c.kubeconfig"},
                           secrets=dict(harness.DEAD_CLUSTER_FILES,
                                        **{"github.secret": SECRET}))
        self.addCleanup(d.cleanup)
        d.start()
        req = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1/stream" % d.admin_port)
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith(
                "text/event-stream"))
            self.assertEqual(r.headers["Cache-Control"], "no-store")
            self.assertEqual(r.readline(), b"retry: 1000\n")
            self.assertEqual(r.readline(), b"event: hello\n")
            r.readline()
            r.readline()
            # A state change (a manual sync) arrives as jobs/apps events.
            s = harness.request(d.admin_port, "POST", "/api/v1/apps/demo/sync")
            self.assertEqual(s.status, 202, s)
            lines = [r.readline() for _ in range(6)]
            self.assertIn(b"event: jobs\n", lines)
            self.assertIn(b"event: apps\n", lines)
            # SIGTERM ends the stream at once: a drain does not wait for
            # it, and gitopsd exits cleanly.
            t0 = time.time()
            d.signal(signal.SIGTERM)
            while r.readline():
                pass
            self.assertLess(time.time() - t0, 3)
            self.assertEqual(d.stop(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
