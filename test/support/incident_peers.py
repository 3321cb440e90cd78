"""Peers of the incident notifier tests, started and stopped by the test:

- Alertmanager: the real Prometheus Alertmanager (Debian's
  prometheus-alertmanager) on a free 127.0.0.1 port, clustering off, a
  minimal configuration and its own storage directory.
- IncidentSink: test/support/incident_sink.py playing PagerDuty or
  Opsgenie (request shapes checked, the service's state kept)."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import harness
from notify_receivers import Receiver

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "incident_sink.py")
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

AM_CONFIG = """route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def http_json(url, data=None, method=None, timeout=5):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


class Alertmanager:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gitopsd-am-")
        self.port = harness.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "alertmanager.yml")
        with open(cfg, "w") as f:
            f.write(AM_CONFIG)
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, "--config.file=" + cfg,
             "--storage.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--cluster.listen-address="],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30 * harness.TIMEOUT_SCALE
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/-/ready",
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("alertmanager did not start")

    def alerts(self, **filters):
        """GET /api/v2/alerts: the alerts Alertmanager holds as not
        resolved (active, silenced, inhibited or unprocessed)."""
        q = "&".join("filter=%s" % urllib.request.quote('%s="%s"' % kv)
                     for kv in filters.items())
        return http_json(self.url + "/api/v2/alerts" + ("?" + q if q else ""))

    def read_log(self):
        with open(os.path.join(self.dir, "log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class IncidentSink(Receiver):
    """incident_sink.py as a Receiver: start(), records(), wait_records(),
    close(); and state(), the service's open incidents and alerts."""

    def __init__(self, mode, key="", script=None):
        super().__init__(mode)
        self.args = ["/usr/bin/python3", SINK, mode, "--record", self.record,
                     "--key", key, "--port", "0"]
        if script:
            self.args += ["--script", script]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def state(self):
        return http_json(self.url + "/_state")
