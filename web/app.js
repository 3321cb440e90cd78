/*
 * gitopsd status page.  Reads only the documented /api/v1 routes and
 * follows GET /api/v1/stream for changes.  Every view is a hash URL
 * (#/apps/web, #/jobs/42, #/events/7) that can be pasted into chat.
 * Built with DOM calls only (no innerHTML): every string from the API is
 * text, never markup.
 */
"use strict";

const TOKEN_KEY = "gitopsd.token";
const API = "/api/v1";

/* ---------- small helpers ---------- */

// An app's revision as a short sha, linked to the commit's page on its Git
// host when the API knows it (revision_url).
function revision(a) {
  const code = h("code", { class: "rev", title: a.revision }, shortSha(a.revision));
  return a.revision_url ? h("a", { href: a.revision_url, rel: "noopener noreferrer", target: "_blank" }, code) : code;
}

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function shortSha(s) {
  return s && /^[0-9a-f]{12,}$/i.test(s) ? s.slice(0, 7) : (s || "");
}

function rel(iso) {
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  let d = Math.round((Date.now() - t) / 1000);
  const future = d < 0;
  d = Math.abs(d);
  let s;
  if (d < 5) return "just now";
  if (d < 60) s = d + " s";
  else if (d < 3600) s = Math.floor(d / 60) + " min";
  else if (d < 86400) s = Math.floor(d / 3600) + " h";
  else s = Math.floor(d / 86400) + " d";
  return future ? "in " + s : s + " ago";
}

/* A relative time; the absolute one is in the title (hover, screen readers). */
function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const abs = new Date(iso);
  return h("time", { datetime: iso, title: abs.toLocaleString() + " (" + iso + ")" }, rel(iso));
}

function badge(kind, value) {
  const v = value || "Unknown";
  return h("span", { class: "badge " + kind + "-" + v.replace(/[^A-Za-z-]/g, "") }, v);
}

function link(hash, text) {
  return h("a", { href: hash }, text);
}

function td(label, ...kids) {
  return h("td", { "data-label": label }, ...kids);
}

function enc(s) {
  return encodeURIComponent(s);
}

/* ---------- API and token ---------- */

function headers(extra) {
  const hd = Object.assign({ Accept: "application/json" }, extra || {});
  const tok = sessionStorage.getItem(TOKEN_KEY);
  if (tok) hd.Authorization = "Bearer " + tok;
  return hd;
}

let tokenAsk = null;

/* Ask once; concurrent 401s wait for the same answer. */
function askToken(wrong) {
  if (tokenAsk) return tokenAsk;
  const dlg = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("token");
  document.getElementById("login-error").textContent =
    wrong ? "That token was refused." : "";
  tokenAsk = new Promise((resolve) => {
    form.addEventListener("submit", () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = "";
      tokenAsk = null;
      resolve();
    }, { once: true });
  });
  if (!dlg.open) dlg.showModal();
  input.focus();
  return tokenAsk;
}

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function api(path, opts) {
  for (let tries = 0; ; tries++) {
    const r = await fetch(API + path, Object.assign({}, opts, {
      headers: headers(opts && opts.body ? { "Content-Type": "application/json" } : null),
      cache: "no-store",
    }));
    if (r.status === 401 && tries < 5) {
      await askToken(sessionStorage.getItem(TOKEN_KEY) !== null);
      continue;
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new ApiError(r.status, (body && body.error) || r.statusText);
    return body;
  }
}

/* ---------- derived state ---------- */

function syncState(app) {
  const j = app.last_job;
  if (j && j.kind === "sync") {
    if (j.state === "succeeded") return "Synced";
    if (j.state === "running" || j.state === "queued") return "Syncing";
    return "Failed";
  }
  return app.synced_at ? "Synced" : "Never";
}

const HEALTHS = ["Healthy", "Progressing", "Degraded", "Missing", "Unknown"];
const SYNCS = ["Synced", "Syncing", "Failed", "Never"];

/* ---------- views ---------- */

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent),
           query: new URLSearchParams(qs || "") };
}

function setHashQuery(q) {
  const { parts } = parseHash();
  const s = q.toString();
  const base = "#/" + parts.map(enc).join("/");
  history.replaceState(null, "", s ? base + "?" + s : base);
}

function errorBox(e) {
  return h("p", { class: "error", role: "alert" },
    e instanceof ApiError ? e.status + ": " + e.message : String(e.message || e));
}

const appsView = {
  title: "Apps",
  prev: new Map(),
  init(root, query) {
    this.q = query.get("q") || "";
    this.state = query.get("state") || "";
    const text = h("input", { type: "search", id: "filter", placeholder: "Filter by name, repo, image, revision",
      "aria-label": "Filter apps", value: this.q });
    const sel = h("select", { id: "state", "aria-label": "Filter by state" },
      h("option", { value: "" }, "Any state"),
      h("optgroup", { label: "Health" }, HEALTHS.map((s) => h("option", { value: s }, s))),
      h("optgroup", { label: "Sync" }, SYNCS.map((s) => h("option", { value: "sync:" + s }, s))));
    sel.value = this.state;
    const apply = () => {
      this.q = text.value;
      this.state = sel.value;
      const p = new URLSearchParams();
      if (this.q) p.set("q", this.q);
      if (this.state) p.set("state", this.state);
      setHashQuery(p);
      this.draw();
    };
    /* One redraw per pause in typing, not per key (1,000 rows). */
    let typing = null;
    text.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(apply, 80); });
    sel.addEventListener("change", apply);
    this.count = h("span", { class: "muted", "aria-live": "polite" });
    this.body = h("div");
    root.append(h("h1", {}, "Apps"), h("div", { class: "toolbar" }, text, sel, this.count), this.body);
  },
  async load() {
    const [apps, jobs] = await Promise.all([api("/apps"), api("/jobs?limit=1000")]);
    this.apps = apps.apps;
    this.jobs = new Map(jobs.jobs.map((j) => [j.id, j]));
    this.draw();
  },
  match(a) {
    if (this.state) {
      if (this.state.startsWith("sync:")) {
        if (syncState(a) !== this.state.slice(5)) return false;
      } else if (a.health !== this.state) return false;
    }
    if (!this.q) return true;
    const q = this.q.toLowerCase();
    const hay = [a.name, a.repo, a.revision, a.cluster, a.namespace,
      ...a.images.map((i) => i.repository + ":" + (i.tag || ""))].join(" ").toLowerCase();
    return hay.includes(q);
  },
  draw() {
    if (!this.apps) return;
    const shown = this.apps.filter((a) => this.match(a));
    this.count.textContent = shown.length + " of " + this.apps.length + " apps";
    if (shown.length === 0) {
      this.body.replaceChildren(h("p", { class: "empty" }, this.apps.length ? "No app matches." : "No apps configured."));
      return;
    }
    const rows = shown.map((a) => {
      const lj = a.last_job ? this.jobs.get(a.last_job.id) : null;
      const key = [a.revision, a.health, a.last_job && a.last_job.id, a.last_job && a.last_job.state].join("|");
      const changed = this.prev.has(a.name) && this.prev.get(a.name) !== key;
      this.prev.set(a.name, key);
      return h("tr", { class: changed ? "flash" : null, "data-app": a.name },
        td("App", link("#/apps/" + enc(a.name), a.name)),
        td("Health", badge("h", a.health)),
        td("Sync", badge("s", syncState(a))),
        td("Revision", a.revision ? revision(a) : h("span", { class: "muted" }, "—")),
        td("Images", a.images.length ? h("ul", { class: "plain" }, a.images.map((i) =>
          h("li", {}, h("code", {}, i.repository + ":" + (i.tag || "?"))))) : h("span", { class: "muted" }, "—")),
        td("Last job", a.last_job ? h("span", {},
          link("#/jobs/" + a.last_job.id, a.last_job.kind + " #" + a.last_job.id), " ",
          badge("s", a.last_job.state), " ", lj ? time(lj.updated) : "") : h("span", { class: "muted" }, "—")));
    });
    this.body.replaceChildren(h("table", { class: "cards" },
      h("thead", {}, h("tr", {}, ["App", "Health", "Sync", "Revision", "Images", "Last job"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
  },
};

function jobsTable(jobs) {
  if (!jobs.length) return h("p", { class: "empty" }, "No jobs.");
  return h("table", { class: "cards" },
    h("thead", {}, h("tr", {}, ["Job", "Kind", "State", "Attempts", "Updated", "Error"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, jobs.map((j) => h("tr", { "data-job": j.id },
      td("Job", link("#/jobs/" + j.id, "#" + j.id)),
      td("Kind", j.kind, j.app ? h("span", { class: "muted" }, " · ", link("#/apps/" + enc(j.app), j.app)) : null),
      td("State", badge("s", j.state)),
      td("Attempts", j.attempts + " / " + j.max_attempts),
      td("Updated", time(j.updated)),
      td("Error", j.error ? h("span", { class: "error" }, j.error) : "")))));
}

function resources(jobs) {
  const sync = jobs.find((j) => j.kind === "sync" && j.result && j.result.detail && Array.isArray(j.result.detail.objects));
  if (!sync) return h("p", { class: "empty" }, "No sync has recorded resources yet.");
  const objs = sync.result.detail.objects;
  return h("div", {},
    h("p", { class: "muted" }, "From ", link("#/jobs/" + sync.id, "sync #" + sync.id), " ", time(sync.updated)),
    h("table", { class: "cards" },
      h("thead", {}, h("tr", {}, ["Kind", "Namespace", "Name", "Health"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, objs.map((o) => h("tr", {},
        td("Kind", o.kind), td("Namespace", o.namespace || "—"), td("Name", o.name),
        td("Health", o.health ? badge("h", o.health) : h("span", { class: "muted" }, "—")))))));
}

function actionButton(label, run) {
  const msg = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const b = h("button", { type: "button" }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    msg.textContent = "";
    try {
      msg.textContent = await run();
    } catch (e) {
      msg.textContent = e instanceof ApiError ? e.status + ": " + e.message : String(e);
      msg.className = "error";
    } finally {
      b.disabled = false;
    }
  });
  return h("span", { class: "toolbar" }, b, msg);
}

const appView = {
  init(root, query, name) {
    this.name = name;
    this.title = name;
    this.body = h("div");
    root.append(h("p", {}, link("#/", "← Apps")), h("h1", {}, name),
      actionButton("Sync now", async () => {
        const r = await api("/apps/" + enc(name) + "/sync", { method: "POST", body: "{}" });
        refreshSoon();
        return "Queued job #" + r.job;
      }), this.body);
  },
  async load() {
    const [a, jobs] = await Promise.all([api("/apps/" + enc(this.name)),
      api("/jobs?app=" + enc(this.name) + "&limit=50")]);
    this.body.replaceChildren(
      h("dl", {},
        h("dt", {}, "Health"), h("dd", {}, badge("h", a.health)),
        h("dt", {}, "Sync"), h("dd", {}, badge("s", syncState(a)), " ", a.synced_at ? time(a.synced_at) : ""),
        h("dt", {}, "Revision"), h("dd", {}, a.revision ? revision(a) : "—"),
        h("dt", {}, "Repo"), h("dd", {}, (a.repo || "—") + (a.branch ? " @ " + a.branch : "") + (a.path ? " : " + a.path : "")),
        h("dt", {}, "Cluster"), h("dd", {}, (a.cluster || "none (Git only)") + (a.namespace ? " / " + a.namespace : "")),
        a.last_error ? [h("dt", {}, "Last error"), h("dd", { class: "error" }, a.last_error)] : null),
      h("h2", {}, "Images"),
      a.images.length ? h("table", { class: "cards" },
        h("thead", {}, h("tr", {}, ["Repository", "Tag", "Digest", "Last poll"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, a.images.map((i) => h("tr", {},
          td("Repository", h("code", {}, i.repository)), td("Tag", h("code", {}, i.tag || "—")),
          td("Digest", i.digest ? h("code", { title: i.digest }, i.digest.slice(0, 19)) : "—"),
          td("Last poll", i.poll ? h("span", {}, time(i.poll.last), i.poll.error ? h("span", { class: "error" }, " " + i.poll.error) : "") : "—")))))
        : h("p", { class: "empty" }, "No images."),
      h("h2", {}, "Resources of the last sync"), resources(jobs.jobs),
      h("h2", {}, "Jobs"), jobsTable(jobs.jobs));
  },
};

function attemptsTable(list) {
  if (!list || !list.length) return h("p", { class: "empty" }, "No attempt yet.");
  return h("table", { class: "cards" },
    h("thead", {}, h("tr", {}, ["#", "Started", "Ended", "Outcome", "Error"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.map((a) => h("tr", {},
      td("#", String(a.n)), td("Started", time(a.started)), td("Ended", time(a.ended)),
      td("Outcome", a.ok === null ? badge("s", "running") : a.ok ? badge("s", "succeeded") : badge("s", "failed")),
      td("Error", a.error ? h("span", { class: "error" }, a.error) : "")))));
}

const jobView = {
  init(root, query, id) {
    this.id = id;
    this.title = "Job " + id;
    this.body = h("div");
    this.retry = actionButton("Retry", async () => {
      await api("/jobs/" + enc(id) + "/retry", { method: "POST", body: "{}" });
      refreshSoon();
      return "Queued again";
    });
    root.append(h("h1", {}, "Job #" + id), this.body);
  },
  async load() {
    const j = await api("/jobs/" + enc(this.id));
    const res = j.result || {};
    const sent = j.kind === "notify" ? [] : await alertsOf([j]);
    this.body.replaceChildren(
      h("dl", {},
        h("dt", {}, "State"), h("dd", {}, badge("s", j.state),
          j.state === "failed" && j.not_before ? h("span", { class: "muted" }, " next attempt ", time(j.not_before)) : ""),
        h("dt", {}, "Kind"), h("dd", {}, j.kind),
        h("dt", {}, "App"), h("dd", {}, j.app ? link("#/apps/" + enc(j.app), j.app) : "—"),
        h("dt", {}, "Event"), h("dd", {}, j.event_id ? link("#/events/" + j.event_id, "event #" + j.event_id) : "—",
          j.source ? " (" + j.source + (j.delivery ? " " + j.delivery : "") + ")" : ""),
        j.image ? [h("dt", {}, "Image"), h("dd", {}, h("code", {}, j.image + ":" + (j.tag || "")))] : null,
        j.revision ? [h("dt", {}, "Revision"), h("dd", {}, h("code", { title: j.revision }, shortSha(j.revision)))] : null,
        res.commit ? [h("dt", {}, "Commit made"), h("dd", {}, h("code", { class: "commit", title: res.commit }, shortSha(res.commit)))] : null,
        j.alert ? [h("dt", {}, "Alert"), h("dd", {}, (j.alert.event || "") + " to " + (j.alert.notifier || "?"),
          j.alert.job ? [" about ", link("#/jobs/" + j.alert.job, "job #" + j.alert.job)] : "")] : null,
        sent.length ? [h("dt", {}, "Alerts sent"), h("dd", {}, alertList(sent))] : null,
        h("dt", {}, "Attempts"), h("dd", {}, j.attempts + " / " + j.max_attempts),
        h("dt", {}, "Created"), h("dd", {}, time(j.created)),
        h("dt", {}, "Updated"), h("dd", {}, time(j.updated)),
        j.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, j.error)] : null),
      j.state === "failed" || j.state === "dead" ? this.retry : "",
      h("h2", {}, "Attempts"), attemptsTable(j.attempts_log),
      h("h2", {}, "Result"), j.result ? h("pre", {}, JSON.stringify(j.result, null, 2)) : h("p", { class: "empty" }, "No result yet."));
  },
};

/* Alerts belong to no event: notify jobs of the apps, by the job they are about. */
async function alertsOf(jobs) {
  const apps = [...new Set(jobs.map((j) => j.app).filter(Boolean))];
  const ids = new Set(jobs.map((j) => j.id));
  const lists = await Promise.all(apps.map((a) => api("/jobs?kind=notify&limit=200&app=" + enc(a))));
  return lists.flatMap((l) => l.jobs).filter((n) => n.alert && ids.has(n.alert.job));
}

function alertList(list) {
  return list.map((x, i) => [i ? ", " : "", link("#/jobs/" + x.id, (x.alert.event || "alert") + " to " + (x.alert.notifier || "?")),
    " ", badge("s", x.state)]);
}

async function findEvent(id) {
  const r = await api("/events?limit=1&after=" + (Number(id) + 1));
  const e = r.events[0];
  if (!e || String(e.id) !== String(id)) throw new ApiError(404, "no such event");
  return e;
}

const eventView = {
  init(root, query, id) {
    this.id = id;
    this.title = "Event " + id;
    this.body = h("div");
    root.append(h("h1", {}, "Event #" + id), this.body);
  },
  async load() {
    const e = await findEvent(this.id);
    const jobs = await Promise.all(e.jobs.map((j) => api("/jobs/" + j)));
    const alerts = await alertsOf(jobs);
    /* The trace: delivery, then every job in creation order with its steps. */
    const steps = [h("li", {}, h("strong", {}, "Delivery"), " ", e.source + " " + (e.delivery || ""), " · ", time(e.received))];
    jobs.sort((a, b) => a.id - b.id);
    for (const j of jobs) {
      const r = j.result || {};
      steps.push(h("li", {},
        h("strong", {}, j.kind), " ", link("#/jobs/" + j.id, "#" + j.id), " ", badge("s", j.state),
        j.app ? [" app ", link("#/apps/" + enc(j.app), j.app)] : "",
        " · created ", time(j.created), " · updated ", time(j.updated),
        r.commit ? [" · commit ", h("code", { title: r.commit }, shortSha(r.commit))] : "",
        alerts.some((a) => a.alert.job === j.id) ? [" · alerts: ", alertList(alerts.filter((a) => a.alert.job === j.id))] : "",
        j.error ? h("div", { class: "error" }, j.error) : "",
        h("ul", {}, (j.attempts_log || []).map((a) => h("li", {}, "attempt " + a.n + " ", time(a.started), " → ",
          a.ended ? time(a.ended) : "running", a.ok === false ? h("span", { class: "error" }, " " + (a.error || "failed")) : a.ok ? " ok" : "")))));
    }
    this.body.replaceChildren(
      h("dl", {},
        h("dt", {}, "Source"), h("dd", {}, e.source || "—"),
        h("dt", {}, "Kind"), h("dd", {}, e.kind || "—"),
        h("dt", {}, "Summary"), h("dd", {}, e.summary || "—"),
        h("dt", {}, "Received"), h("dd", {}, time(e.received))),
      h("h2", {}, "Trace"), h("ol", { class: "trace" }, steps));
  },
};

const jobsView = {
  title: "Jobs",
  init(root, query) {
    this.state = query.get("state") || "";
    const sel = h("select", { "aria-label": "Filter by state" }, h("option", { value: "" }, "Any state"),
      ["queued", "running", "succeeded", "failed", "dead"].map((s) => h("option", { value: s }, s)));
    sel.value = this.state;
    sel.addEventListener("change", () => {
      this.state = sel.value;
      setHashQuery(new URLSearchParams(this.state ? { state: this.state } : {}));
      refreshSoon();
    });
    this.body = h("div");
    root.append(h("h1", {}, "Jobs"), h("div", { class: "toolbar" }, sel), this.body);
  },
  async load() {
    const r = await api("/jobs?limit=100" + (this.state ? "&state=" + enc(this.state) : ""));
    this.body.replaceChildren(jobsTable(r.jobs));
  },
};

const eventsView = {
  title: "Events",
  init(root) {
    this.body = h("div");
    root.append(h("h1", {}, "Events"), this.body);
  },
  async load() {
    const r = await api("/events?limit=100");
    this.body.replaceChildren(r.events.length ? h("table", { class: "cards" },
      h("thead", {}, h("tr", {}, ["Event", "Received", "Source", "Summary", "Jobs"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, r.events.map((e) => h("tr", {},
        td("Event", link("#/events/" + e.id, "#" + e.id)), td("Received", time(e.received)),
        td("Source", e.source + (e.kind ? " · " + e.kind : "")), td("Summary", e.summary || ""),
        td("Jobs", e.jobs.map((j, i) => [i ? ", " : "", link("#/jobs/" + j, "#" + j)]))))))
      : h("p", { class: "empty" }, "No events yet."));
  },
};

/* ---------- router and refresh ---------- */

let current = null;
let loading = null;
let again = false;

function route() {
  const { parts, query } = parseHash();
  const main = document.getElementById("main");
  const root = h("div");
  let v;
  if (parts.length === 0) v = Object.create(appsView);
  else if (parts[0] === "apps" && parts[1]) v = Object.create(appView);
  else if (parts[0] === "jobs" && parts[1]) v = Object.create(jobView);
  else if (parts[0] === "jobs") v = Object.create(jobsView);
  else if (parts[0] === "events" && parts[1]) v = Object.create(eventView);
  else if (parts[0] === "events") v = Object.create(eventsView);
  else v = Object.create(appsView);
  if (v.init === appsView.init) v.prev = new Map();
  v.init(root, query, parts[1]);
  v.error = h("div");
  root.prepend(v.error);
  main.replaceChildren(root);
  document.title = (v.title || "") + " · gitopsd";
  current = v;
  refresh();
}

/* One load at a time; changes during a load bring one more. */
async function refresh() {
  if (loading) { again = true; return; }
  const v = current;
  const focusKey = document.activeElement && document.activeElement.getAttribute("href");
  loading = v.load().then(() => v.error.replaceChildren(), (e) => v.error.replaceChildren(errorBox(e)));
  await loading;
  loading = null;
  /* A re-drawn link that had the focus keeps it (keyboard users). */
  if (focusKey && document.activeElement === document.body) {
    const el = document.querySelector('main a[href="' + CSS.escape(focusKey) + '"]');
    if (el) el.focus();
  }
  if (again) { again = false; refresh(); }
}

let soon = null;
function refreshSoon() {
  if (soon) return;
  soon = setTimeout(() => { soon = null; refresh(); }, 100);
}

/* ---------- live stream ---------- */

function setLive(on, text) {
  const el = document.getElementById("live");
  el.className = "live " + (on ? "on" : "off");
  el.textContent = text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/*
 * fetch() rather than EventSource: EventSource cannot send the bearer
 * header, and the token must never be in a URL.
 */
async function stream() {
  let delay = 500, first = true;
  for (;;) {
    const ctl = new AbortController();
    let idle = null;
    const arm = () => { clearTimeout(idle); idle = setTimeout(() => ctl.abort(), 40000); };
    try {
      const r = await fetch(API + "/stream", { headers: headers({ Accept: "text/event-stream" }),
        signal: ctl.signal, cache: "no-store" });
      if (r.status === 401) {
        await askToken(sessionStorage.getItem(TOKEN_KEY) !== null);
        continue;
      }
      if (!r.ok || !r.body) throw new Error("stream: " + r.status);
      setLive(true, "live");
      delay = 500;
      if (!first) refresh();	/* what changed while we were away */
      first = false;
      arm();
      const rd = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        arm();
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^\r?\n\r?\n/, "");
          let ev = "message";
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) ev = line.slice(6).trim();
          }
          if (ev === "apps" || ev === "jobs" || ev === "events") refreshSoon();
        }
      }
    } catch (e) {
      /* the daemon went away or restarted: try again below */
    } finally {
      clearTimeout(idle);
    }
    setLive(false, "reconnecting…");
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
}

/* Relative times age while the page is open. */
setInterval(() => {
  for (const t of document.querySelectorAll("time[datetime]")) t.textContent = rel(t.getAttribute("datetime"));
}, 10000);

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("cancel", (e) => e.preventDefault());
  route();
  stream();
});
