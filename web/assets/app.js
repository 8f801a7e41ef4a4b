// The crew page: renders what /api/events pushes; every action is a POST
// to the agent's API, checked there (this script decides nothing).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k.nodeType ? k : String(k));
    return e;
  }
  const badge = (s) => el("span", { class: "badge " + String(s || "").toLowerCase() }, s || "?");
  const enc = encodeURIComponent;
  function dur(s) {
    if (s === null || s === undefined) return "—";
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? h + " h " + m + " min" : m ? m + " min" : s + " s";
  }
  function ago(t) {
    if (!t) return "never";
    const s = (Date.now() - Date.parse(t)) / 1000;
    return s < 5 ? "just now" : dur(s) + " ago";
  }
  function clock(t) { return t ? new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : ""; }
  let toastTimer;
  function toast(msg) {
    const t = $("toast");
    t.textContent = msg; t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function post(url, body, btn) {
    if (btn) btn.disabled = true;
    try {
      const r = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      if (r.status === 401) { location.href = "/login"; return null; }
      const j = await r.json().catch(() => ({}));
      if (!r.ok) { toast(j.error || r.status + " " + r.statusText); return null; }
      return j;
    } catch (e) {
      toast("The box did not answer: " + e.message);
      return null;
    } finally { if (btn) btn.disabled = false; }
  }

  // --- status: box, board, links, pins, parts
  function status(s) {
    if (!s) return;
    $("box").textContent = s.box;
    document.title = s.box + " · fieldkit";
    $("board").textContent = s.board.profile + " · " + s.board.model + " · " + s.version;
    const m = $("mqtt-link");
    const dup = s.mqtt.duplicate;
    m.textContent = dup ? "BOX ID " + s.box + " IN USE TWICE" : "MQTT " + (s.mqtt.connected ? "connected" : "down");
    m.className = "pill " + (s.mqtt.connected && !dup ? "ok" : "fail");
    m.title = dup ? "another agent with this box id: " + (dup.other.host || "") + " " + dup.other.id + "; give each box its own box: id"
      : s.mqtt.broker + (s.mqtt.embedded ? " (embedded)" : "") + (s.mqtt.reason ? ": " + s.mqtt.reason : "");
    const tb = $("pins").tBodies[0];
    const pins = (s.board.state && s.board.state.pins) || [];
    const list = Array.isArray(pins) ? pins : Object.values(pins);
    tb.replaceChildren(...list.map((p) => el("tr", { "data-line": p.line },
      el("td", null, p.line), el("td", null, (p.names || []).join(", ")),
      el("td", { class: "level" }, el("span", { class: "lvl" + (p.level ? " on" : "") }), " ", p.level ? "high" : "low",
        p.duty_percent ? " · " + p.duty_percent.toFixed(0) + " % @ " + p.pwm_hz + " Hz" : ""))));
    if (!list.length) tb.append(el("tr", null, el("td", { colspan: 3, class: "muted" }, "no pin driven yet")));
    $("parts").replaceChildren(...(s.parts || []).map((p) =>
      el("li", null, el("span", { class: "grow" }, p.name), badge(p.state), p.reason ? el("span", { class: "detail" }, p.reason) : null)));
  }

  function whoami(w) {
    if (!w) return;
    $("me").textContent = w.auth ? (w.name ? w.name + " · " : "") + w.role : "";
    if (w.name && !$("who").value) $("who").value = w.name;
  }

  // --- pre-show check and the go-live gate
  function preflight(p) {
    if (!p) return;
    const g = $("gate");
    g.textContent = p.gate.open ? "GO LIVE: all clear" : "HOLD: not ready to go live";
    g.className = "gate " + (p.gate.open ? "go" : "hold");
    $("gate-blocking").replaceChildren(...p.gate.blocking.map((b) => el("li", null, b)));
    $("checks").replaceChildren(...p.checks.filter((c) => !c.name.startsWith("sign-off: ")).map((c) =>
      el("li", { "data-check": c.name }, badge(c.status), el("span", { class: "grow" }, el("b", null, c.name), " ", el("span", { class: "muted" }, c.detail || "")),
        c.status !== "ok" && c.fix ? el("span", { class: "fix" }, c.fix) : null)));
    $("manual-block").hidden = !p.manual.length;
    $("manual").replaceChildren(...p.manual.map((m) => el("li", { "data-item": m.id },
      badge(m.signed_by ? "ok" : "warn"),
      el("span", { class: "grow" }, el("b", null, m.label), " ", el("span", { class: "muted" }, "owner: " + m.owner),
        m.signed_by ? el("div", { class: "small" }, "signed off by " + m.signed_by + " at " + clock(m.signed_at) + (m.note ? " — " + m.note : "")) : null),
      m.signed_by
        ? el("button", { class: "quiet", onclick: (e) => post("/api/preflight/unsign", { item: m.id, by: who() }, e.target) }, "Undo")
        : el("button", { class: "signoff", onclick: (e) => post("/api/preflight/signoff", { item: m.id, by: who() }, e.target) }, "Sign off"))));
  }
  function who() {
    const v = $("who").value.trim();
    try { localStorage.setItem("fieldkit-who", v); } catch (_) { /* private mode */ }
    return v;
  }

  // --- scenes
  function scenes(l) {
    $("scenes").hidden = !l;
    if (!l) return;
    $("scenes-error").hidden = !l.load_error;
    $("scenes-error").textContent = l.load_error || "";
    if (!l.scenes.length) { $("scene-list").replaceChildren(el("li", { class: "muted" }, "no scenes loaded" + (l.dir ? " from " + l.dir : ""))); return; }
    $("scene-list").replaceChildren(...l.scenes.map((s) => {
      const st = (s.status && s.status.state) || "idle";
      const running = st === "running";
      return el("li", { "data-scene": s.name },
        el("span", { class: "grow" }, el("b", null, s.name), " ", el("span", { class: "muted small" }, s.description || s.length)),
        el("span", { class: "badge scene-state " + st }, st + (running && s.status.steps ? " " + (s.status.step || 0) + "/" + s.status.steps : "")),
        el("button", { class: "run", onclick: (e) => post("/api/scenes/" + enc(s.name) + "/run", null, e.target) }, "Run"),
        el("button", { class: "cancel quiet", disabled: !running, onclick: (e) => post("/api/scenes/" + enc(s.name) + "/cancel", null, e.target) }, "Cancel"));
    }));
  }

  // --- batteries
  function batteries(b) {
    $("batteries").hidden = !b;
    if (!b) return;
    const list = b.batteries || [];
    $("battery-list").replaceChildren(...list.map((r) => {
      const pct = r.percent === null || r.percent === undefined ? null : r.percent;
      const lvl = r.level || "unknown";
      return el("li", { "data-rig": r.rig },
        el("span", { class: "grow" }, el("b", null, r.rig), " ", el("span", { class: "muted small" },
          [pct === null ? "—" : pct.toFixed(0) + " %", r.volts ? r.volts.toFixed(2) + " V" : null, r.watts ? r.watts.toFixed(1) + " W" : null].filter(Boolean).join(" · "))),
        el("span", { class: "small" }, r.calculating ? "time left: calculating" : "time left: " + dur(r.tte_s)),
        badge(r.stale ? "stale" : lvl),
        el("div", { class: "gauge" + (pct !== null && pct <= 10 ? " low" : pct !== null && pct <= 25 ? " warn" : "") },
          el("span", { style: "width:" + (pct === null ? 0 : Math.min(100, pct)) + "%" })),
        r.error ? el("span", { class: "fix" }, r.error) : null);
    }));
    if (!list.length) $("battery-list").append(el("li", { class: "muted" }, "no battery rigs configured"));
  }

  // --- printers and their queues
  const jobsOf = {};
  async function loadJobs(name) {
    try {
      const r = await fetch("/api/printers/" + enc(name) + "/jobs", { credentials: "same-origin" });
      if (!r.ok) return;
      jobsOf[name] = await r.json();
      renderPrinters();
    } catch (_) { /* the stream retries */ }
  }
  let lastPrinters = null;
  function printers(p) {
    lastPrinters = p;
    $("printers").hidden = !p;
    if (!p) return;
    renderPrinters();
    for (const pr of listOf(p, "printers")) loadJobs(pr.name);
  }
  function listOf(v, key) { return Array.isArray(v) ? v : (v && v[key]) || []; }
  function renderPrinters() {
    const p = lastPrinters;
    if (!p) return;
    $("printer-list").replaceChildren(...listOf(p, "printers").map((pr) => {
      const jobs = listOf(jobsOf[pr.name], "jobs").slice(0, 8);
      const facts = [pr.language, pr.transport, pr.queue_depth ? pr.queue_depth + " queued" : "queue empty",
        pr.uncertain ? pr.uncertain + " uncertain" : null, pr.parked ? "parked" : null].filter(Boolean).join(" · ");
      return el("div", { "data-printer": pr.name },
        el("h3", null, pr.name, " ", badge(pr.state), " ", el("span", { class: "muted small" }, facts)),
        (pr.flags || []).length ? el("div", { class: "small warn" }, pr.flags.join(", ")) : null,
        pr.last_error ? el("div", { class: "small error" }, pr.last_error) : null,
        el("ul", { class: "rows small jobs" }, jobs.length ? jobs.map(job) : el("li", { class: "muted" }, "no jobs yet")));
    }));
  }
  function job(j) {
    const st = j.state;
    const act = (verb, label, cls) => el("button", { class: verb + " " + (cls || "quiet"),
      onclick: (e) => post("/api/jobs/" + enc(j.id) + "/" + verb, null, e.target).then((ok) => { if (ok) loadJobs(j.printer); }) }, label);
    return el("li", { "data-job": j.id, "data-state": st },
      el("span", { class: "grow" }, el("b", null, j.id), " ", el("span", { class: "muted" },
        clock(j.created), j.reprint_of ? " · reprint of " + j.reprint_of : "", j.attempts > 1 ? " · " + j.attempts + " tries" : "")),
      badge(st),
      st === "uncertain" ? el("span", { class: "fix" }, "The printer went quiet mid-job: look at the label. Printed fine → Printed OK; missing or torn → Reprint.") : null,
      j.error && st !== "done" ? el("span", { class: "detail" }, j.error) : null,
      st === "uncertain" ? act("cancel", "Printed OK") : null,
      st === "done" || st === "failed" || st === "uncertain" || st === "cancelled" ? act("reprint", "Reprint") : null,
      st === "queued" || st === "parked" ? act("cancel", "Cancel", "danger") : null);
  }

  // --- receipts and the cloud link
  function receipts(r) {
    $("receipts").hidden = !r && !lastUplink;
    if (r) lastReport = r;
    renderReceipts();
  }
  let lastReport = null, lastUplink = null;
  function uplink(u) {
    lastUplink = u;
    const c = $("cloud-link");
    if (!u) { c.textContent = "cloud: n/a"; c.className = "pill"; }
    else {
      c.textContent = "cloud " + u.state + (u.count ? " · " + u.count + " to send" : "");
      c.className = "pill " + ({ idle: "ok", draining: "running", retrying: "warn", parked: "fail", off: "" }[u.state] || "");
    }
    $("receipts").hidden = !lastReport && !u;
    renderReceipts();
  }
  function renderReceipts() {
    const facts = [];
    if (lastUplink) {
      facts.push(["backlog", lastUplink.count + " receipts to send"], ["cloud link", lastUplink.state + (lastUplink.reason ? ": " + lastUplink.reason : "")],
        ["synced through", "#" + lastUplink.acked_through], ["oldest unsent", lastUplink.count ? dur(lastUplink.oldest_age_s) : "—"]);
      if (lastUplink.last_sync) facts.push(["last sync", ago(lastUplink.last_sync)]);
    }
    if (lastReport) facts.push(["sales (24 h)", lastReport.count + (lastReport.count ? " · " + (lastReport.total / 100).toFixed(2) + " " + (lastReport.currency || "") : "")], ["last receipt", "#" + lastReport.last_seq]);
    $("receipt-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
  }

  const handlers = { status, preflight, scenes, batteries, printers, receipts, uplink };
  function connect() {
    const es = new EventSource("/api/events");
    const s = $("stream");
    es.onopen = () => { s.textContent = "live"; s.className = "pill ok"; };
    es.onerror = () => {
      s.textContent = "reconnecting…"; s.className = "pill warn";
      // A 401 closes the stream for good: the session has ended.
      if (es.readyState === EventSource.CLOSED) fetch("/api/whoami", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) location.href = "/login"; else setTimeout(connect, 2000);
      }, () => setTimeout(connect, 2000));
    };
    for (const [name, f] of Object.entries(handlers)) es.addEventListener(name, (e) => {
      try { f(JSON.parse(e.data)); } catch (err) { console.error(name, err); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    try { $("who").value = localStorage.getItem("fieldkit-who") || ""; } catch (_) { /* private mode */ }
    $("run-checks").addEventListener("click", (e) => post("/api/preflight/run", null, e.target));
    $("reset-signoffs").addEventListener("click", (e) => {
      if (confirm("Clear every sign-off for the next show?")) post("/api/preflight/reset", { by: who() }, e.target);
    });
    fetch("/api/whoami", { credentials: "same-origin" }).then((r) => r.ok ? r.json() : null).then(whoami, () => {});
    connect();
  });
})();
