// The crew page: renders what /api/events pushes; every action is a POST
// to the agent's API, checked there (this script decides nothing). No
// inline style or script anywhere: the page runs under style-src 'self'
// and script-src 'self', so widths are SVG attributes and looks are
// classes in app.css.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    return fill(e, attrs, kids);
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...kids) { return fill(document.createElementNS(SVG, tag), attrs, kids); }
  function fill(e, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.setAttribute("class", v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k.nodeType ? k : String(k));
    if (stale && (e.tagName === "BUTTON" || e.tagName === "INPUT") && !e.disabled) { e.disabled = true; e.dataset.stale = "1"; }
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
  const pad = (n) => String(n).padStart(2, "0");
  function hms(ms) { const d = new Date(ms); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function clock(t) { return t ? hms(Date.parse(t)).slice(0, 5) : ""; }
  let toastTimer;
  function toast(msg) {
    const t = $("toast");
    t.textContent = msg; t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function post(url, body, btn) {
    if (stale) return null;
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
    } finally { if (btn && !stale) btn.disabled = false; }
  }

  // Latest state of every section, as the stream pushed it.
  const S = { status: null, preflight: null, scenes: null, batteries: null, printers: null, receipts: null, uplink: null, pickup: null, rehearsal: null };
  const listOf = (v, key) => Array.isArray(v) ? v : (v && v[key]) || [];

  // --- status: box, board, links, pins, parts
  function status(s) {
    S.status = s;
    renderLinks();
    if (!s) return;
    $("box").textContent = s.box;
    document.title = s.box + " · fieldkit";
    $("board").textContent = s.board.profile + " · " + s.board.model + " · " + s.version;
    const tb = $("pins").tBodies[0];
    const pins = (s.board.state && s.board.state.pins) || [];
    const list = Array.isArray(pins) ? pins : Object.values(pins);
    tb.replaceChildren(...list.map((p) => {
      // What the pin does now: PWM with its duty, or a steady level.
      const pwm = p.duty_percent > 0 && p.pwm_hz > 0;
      return el("tr", { "data-line": p.line },
        el("td", null, p.line), el("td", null, (p.names || []).join(", ")),
        el("td", { class: "level" }, el("span", { class: "lvl" + (pwm ? " pwm" : p.level ? " on" : "") }), " ",
          pwm ? "PWM " + p.duty_percent.toFixed(0) + " % @ " + p.pwm_hz + " Hz" : p.level ? "high" : "low"));
    }));
    if (!list.length) tb.append(el("tr", null, el("td", { colspan: 3, class: "muted" }, "no pin driven yet")));
    $("parts").replaceChildren(...(s.parts || []).map((p) =>
      el("li", null, el("span", { class: "grow" }, p.name), badge(p.state), p.reason ? el("span", { class: "detail" }, p.reason) : null)));
    renderAlerts();
  }
  function renderLinks() {
    const m = $("mqtt-link"), c = $("cloud-link");
    if (stale) {
      // Nothing the page knew about the box's links is known now.
      m.textContent = "MQTT ?"; m.className = "pill";
      c.textContent = "cloud ?"; c.className = "pill";
      return;
    }
    const s = S.status;
    if (s) {
      const dup = s.mqtt.duplicate;
      m.textContent = dup ? "box id in use twice" : "MQTT " + (s.mqtt.connected ? "connected" : "down");
      m.className = "pill " + (s.mqtt.connected && !dup ? "ok" : "fail");
      m.title = s.mqtt.broker + (s.mqtt.embedded ? " (embedded)" : "") + (s.mqtt.reason ? ": " + s.mqtt.reason : "");
    }
    const u = S.uplink;
    if (!u) { c.textContent = "cloud: n/a"; c.className = "pill"; }
    else {
      c.textContent = "cloud " + u.state + (u.count ? " · " + u.count + " to send" : "");
      c.className = "pill " + ({ idle: "ok", draining: "running", retrying: "warn", parked: "fail", off: "" }[u.state] || "");
    }
  }

  function whoami(w) {
    if (!w) return;
    $("me").textContent = w.auth ? (w.name ? w.name + " · " : "") + w.role : "";
    if (w.name && !$("who").value) $("who").value = w.name;
  }

  // --- pre-show check and the go-live gate
  function preflight(p) {
    S.preflight = p;
    const g = $("gate");
    if (!p) { g.textContent = "Go-live gate: unknown"; g.className = "gate unknown"; return; }
    const n = p.gate.blocking.length;
    const warns = p.checks.filter((c) => c.status === "warn").length;
    g.textContent = p.gate.open ? "GO LIVE · " + (warns ? warns + " warning" + (warns > 1 ? "s" : "") + " to read, none holding" : "all clear") :
      "HOLD · " + n + " to do: " + p.gate.blocking.map((b) => b.split(/:| \(/)[0]).join(", ");
    g.className = "gate " + (p.gate.open ? "go" : "hold");
    g.title = p.gate.open ? "every check passes and every item is signed off" : p.gate.blocking.join("\n");
    $("gate-blocking").replaceChildren(...p.gate.blocking.map((b) => el("li", null, b)));
    const auto = p.checks.filter((c) => !c.name.startsWith("sign-off: "));
    const count = (st) => auto.filter((c) => c.status === st).length;
    const signed = p.manual.filter((m) => m.signed_by).length;
    $("check-summary").textContent = [count("fail") ? count("fail") + " fail" : null, count("warn") ? count("warn") + " warn" : null,
      count("ok") + " ok", p.manual.length ? signed + " of " + p.manual.length + " signed off" : null].filter(Boolean).join(" · ");
    $("checks").replaceChildren(...auto.map((c) =>
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

  // --- scenes: the show's buttons, first on the page
  function scenes(l) {
    S.scenes = l;
    $("scenes-error").hidden = !(l && l.load_error);
    $("scenes-error").textContent = (l && l.load_error) || "";
    if (!l) { $("scene-list").replaceChildren(el("li", { class: "muted" }, "this box runs no scenes")); return; }
    if (!l.scenes.length) { $("scene-list").replaceChildren(el("li", { class: "muted" }, "no scenes loaded" + (l.dir ? " from " + l.dir : ""))); return; }
    $("scene-list").replaceChildren(...l.scenes.map((s) => {
      const st = (s.status && s.status.state) || "idle";
      const running = st === "running";
      return el("li", { "data-scene": s.name, title: s.description || "" },
        el("span", { class: "grow" }, el("b", null, s.name), " ", el("span", { class: "muted small desc" }, s.description || s.length)),
        el("span", { class: "badge scene-state " + st }, st + (running && s.status.steps ? " " + (s.status.step || 0) + "/" + s.status.steps : "")),
        el("button", { class: "run", onclick: (e) => post("/api/scenes/" + enc(s.name) + "/run", null, e.target) }, "Run"),
        el("button", { class: "cancel quiet", disabled: !running, onclick: (e) => post("/api/scenes/" + enc(s.name) + "/cancel", null, e.target) }, "Cancel"),
        // Outputs of the last run that did not obey: on a line of their own, in the alert colour.
        s.failed && s.failed.length ? el("span", { class: "fix failed-outputs" }, "did not confirm: " + s.failed.join("; ")) : null);
    }));
    renderAlerts();
  }

  // --- batteries: the gauge is an SVG rect as wide as the charge
  function batteries(b) {
    S.batteries = b;
    $("batteries").hidden = !b;
    renderAlerts();
    if (!b) return;
    const list = b.batteries || [];
    $("battery-list").replaceChildren(...list.map((r) => {
      const pct = r.percent === null || r.percent === undefined ? null : Math.max(0, Math.min(100, r.percent));
      const lvl = r.level || "unknown";
      return el("li", { "data-rig": r.rig, "data-percent": pct === null ? "" : pct },
        el("span", { class: "grow" }, el("b", null, r.rig), " ", el("span", { class: "muted small" },
          [pct === null ? "—" : pct.toFixed(0) + " %", r.volts ? r.volts.toFixed(2) + " V" : null, r.watts ? r.watts.toFixed(1) + " W" : null].filter(Boolean).join(" · "))),
        el("span", { class: "small" }, r.calculating ? "time left: calculating" : "time left: " + dur(r.tte_s)),
        badge(r.stale ? "stale" : lvl),
        svg("svg", { class: "gauge" + (pct === null ? " none" : pct <= 10 ? " low" : pct <= 25 ? " warn" : ""),
          viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img", "aria-label": pct === null ? "charge unknown" : pct.toFixed(0) + " % charged" },
        svg("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }),
        svg("rect", { class: "bar", x: 0, y: 0, width: pct === null ? 0 : pct, height: 10 })),
        r.error ? el("span", { class: "fix" }, r.error) : null);
    }));
    if (!list.length) $("battery-list").append(el("li", { class: "muted" }, "no battery rigs configured"));
  }

  // --- printers and their queues: order, buyer, state, age
  const jobsOf = {};
  async function loadJobs(name) {
    try {
      const r = await fetch("/api/printers/" + enc(name) + "/jobs?limit=20", { credentials: "same-origin" });
      if (!r.ok) return;
      jobsOf[name] = await r.json();
      renderPrinters();
      renderAlerts();
    } catch (_) { /* the stream retries */ }
  }
  function printers(p) {
    S.printers = p;
    $("printers").hidden = !p;
    renderAlerts();
    if (!p) return;
    renderPrinters();
    for (const pr of listOf(p, "printers")) loadJobs(pr.name);
  }
  function renderPrinters() {
    const p = S.printers;
    if (!p) return;
    $("printer-list").replaceChildren(...listOf(p, "printers").map((pr) => {
      const jobs = listOf(jobsOf[pr.name], "jobs").slice(0, 8);
      const facts = [pr.language, pr.transport, pr.queue_depth ? pr.queue_depth + " queued" : "queue empty",
        pr.uncertain ? pr.uncertain + " uncertain" : null, pr.parked ? "parked" : null].filter(Boolean).join(" · ");
      return el("div", { "data-printer": pr.name },
        el("h3", null, pr.name, " ", badge(pr.state), " ", el("span", { class: "muted small" }, facts)),
        (pr.flags || []).length ? el("div", { class: "small warn" }, pr.flags.join(", ")) : null,
        pr.last_error ? el("div", { class: "small error" }, pr.last_error) : null,
        el("ul", { class: "rows small jobs" }, jobs.length ? jobs.map((j) => job(j, true)) : el("li", { class: "muted" }, "no jobs yet")));
    }));
  }
  function buyer(j) { return j.discreet ? "discreet" : j.buyer || (j.order ? "no name" : ""); }
  function jobAction(j, verb, label, cls) {
    return el("button", { class: verb + " " + (cls || "quiet"),
      onclick: (e) => post("/api/jobs/" + enc(j.id) + "/" + verb, null, e.target).then((ok) => { if (ok) loadJobs(j.printer); }) }, label);
  }
  function job(j, full) {
    const st = j.state;
    const title = j.order ? "Order " + j.order : j.id;
    return el("li", { "data-job": j.id, "data-state": st },
      el("span", { class: "grow" }, el("span", { class: "job-order" }, title),
        buyer(j) ? " · " + buyer(j) : "",
        el("span", { class: "muted" }, " · " + ago(j.created), j.reprint_of ? " · reprint of " + j.reprint_of : "", j.attempts > 1 ? " · " + j.attempts + " tries" : "",
          full && j.order && j.order !== j.id ? " · job " + j.id : "")),
      badge(st),
      full && st === "uncertain" ? el("span", { class: "fix" }, "The printer went quiet mid-job: look at the label. Printed fine → Printed OK; missing or torn → Reprint.") : null,
      full && j.error && st !== "done" ? el("span", { class: "detail" }, j.error) : null,
      full && (j.warnings || []).length ? el("span", { class: "detail warn job-warn" }, "Printed with " + j.warnings.length + " warning" + (j.warnings.length > 1 ? "s" : "") + ": " + j.warnings.join("; ")) : null,
      st === "uncertain" ? jobAction(j, "cancel", "Printed OK") : null,
      st === "done" || st === "failed" || st === "uncertain" || st === "cancelled" ? jobAction(j, "reprint", "Reprint") : null,
      full && (st === "queued" || st === "parked") ? jobAction(j, "cancel", "Cancel", "danger") : null);
  }

  // --- what needs a hand now, under the scene buttons
  function renderAlerts() {
    const out = [];
    const add = (sev, text, ...extra) => out.push(el("li", { class: "alert", "data-alert": sev }, badge(sev), el("span", { class: "grow" }, text), ...extra));
    const s = S.status;
    const dup = s && s.mqtt.duplicate;
    if (dup) add("fail", "Another agent uses box id " + s.box + " (" + (dup.other.host ? "host " + dup.other.host + ", " : "") + "instance " + dup.other.id + ")" +
      (dup.refused ? ": this one stays off the broker" : "") + "; give each box its own box: id");
    else if (s && !s.mqtt.connected) add("fail", "MQTT broker down: cues to lights and wearables do not go out");
    for (const r of (S.batteries && S.batteries.batteries) || []) {
      if (r.stale) add("fail", r.rig + ": no battery reading" + (r.error ? " (" + r.error + ")" : ""));
      else if (["warn", "critical", "swap"].includes(r.level))
        add(r.level === "warn" ? "warn" : "fail", r.rig + ": " + (r.level === "swap" ? "swap the pack now" : r.level === "critical" ? "battery critical" : "battery low") +
          (r.percent !== null && r.percent !== undefined ? " (" + r.percent.toFixed(0) + " %" + (r.tte_s ? ", " + dur(r.tte_s) + " left" : "") + ")" : ""));
    }
    for (const pr of listOf(S.printers, "printers")) {
      const what = { paper_out: "out of paper: load a roll", cover_open: "cover open: close it", offline: "offline: check its cable and power",
        error: "error: look at the printer", paper_low: "paper running low" }[pr.state];
      if (what) add(pr.state === "paper_low" ? "warn" : "fail", "Printer " + pr.name + " " + what + (pr.parked ? " (queue held)" : ""));
      else if (pr.parked) add("fail", "Printer " + pr.name + ": queue held" + (pr.last_error ? ": " + pr.last_error : ""));
      for (const j of listOf(jobsOf[pr.name], "jobs").filter((j) => j.state === "uncertain" || j.state === "failed")) {
        add("fail", el("span", null, "Printer " + pr.name + ": ", el("span", { class: "job-order" }, j.order ? "order " + j.order : j.id),
          " " + (j.state === "uncertain" ? "may not have printed, look at the label" : "failed")),
        j.state === "uncertain" ? jobAction(j, "cancel", "Printed OK") : null, jobAction(j, "reprint", "Reprint"));
      }
    }
    if (S.scenes && S.scenes.load_error) add("fail", "Scenes: " + S.scenes.load_error);
    for (const sc of (S.scenes && S.scenes.scenes) || []) {
      const st = sc.status && sc.status.state;
      if (st === "failed") add("fail", "Scene " + sc.name + " failed" + (sc.status.error ? ": " + sc.status.error : ""));
    }
    if (S.uplink && S.uplink.state === "parked") add("warn", "Cloud upload parked: " + (S.uplink.reason || "an admin must resume it"));
    for (const p of (s && s.parts) || []) if (p.state === "failed") add("fail", "Part " + p.name + " failed" + (p.reason ? ": " + p.reason : ""));
    $("alerts").replaceChildren(...out);
  }

  // --- receipts and the cloud link
  function receipts(r) { S.receipts = r; renderReceipts(); }
  function uplink(u) { S.uplink = u; renderLinks(); renderReceipts(); renderAlerts(); }
  function renderReceipts() {
    const u = S.uplink, r = S.receipts;
    $("receipts").hidden = !r && !u;
    const facts = [];
    if (u) {
      facts.push(["backlog", u.count + " receipts to send"], ["cloud link", u.state + (u.reason ? ": " + u.reason : "")],
        ["synced through", "#" + u.acked_through], ["oldest unsent", u.count ? dur(u.oldest_age_s) : "—"]);
      if (u.last_sync) facts.push(["last sync", ago(u.last_sync)]);
    }
    if (r) facts.push(["sales (24 h)", r.count + (r.count ? " · " + (r.total / 100).toFixed(2) + " " + (r.currency || "") : "")], ["last receipt", "#" + r.last_seq]);
    $("receipt-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
  }

  // --- rehearsal mode: the banner, the frame and the switch. Starting
  // needs the crew role, ending the admin's; the agent decides.
  function rehearsal(r) {
    S.rehearsal = r;
    const on = !!(r && r.rehearsal);
    document.body.classList.toggle("rehearsal", on);
    $("rehearsal-banner").hidden = !on;
    $("rehearsal").hidden = !r || !r.available;
    $("rehearsal-on").hidden = on;
    if (on) $("rehearsal-since").textContent = r.since ? new Date(Date.parse(r.since)).toLocaleString() : "—";
    $("rehearsal-state").textContent = !r ? "" : on
      ? "rehearsing: " + ((r.rehearsal_head && r.rehearsal_head.seq) || 0) + " rehearsal sales"
      : "selling for real (last receipt #" + ((r.real_head && r.real_head.seq) || 0) + ")";
  }

  // --- the pickup desk: the queue, the scan box, the camera, and a loud
  // refusal (flash and sound) of a second scan of a handed-over order.
  let refusalSeen = null, ownRefusal = 0;
  function pickup(p) {
    S.pickup = p;
    $("pickup").hidden = !p;
    if (!p) return;
    $("pickup-summary").textContent = p.waiting + " waiting · " + p.handed_over + " handed over";
    const list = p.orders || [];
    $("pickup-list").className = "rows small pickup";
    $("pickup-list").replaceChildren(...list.map((o) => el("li", { "data-seq": o.seq, "data-order": o.order, class: o.handed_over ? "handed-over" : "waiting" },
      el("span", { class: "grow" }, el("b", null, o.order), " ", el("span", { class: "muted" }, o.discreet ? "discreet" : o.buyer || "no name"),
        " ", (o.items || []).map((i) => i.qty + " × " + i.sku).join(", ")),
      o.handed_over ? el("span", { class: "small" }, "handed over " + clock(o.handed_over.at) + " by " + o.handed_over.by) : null,
      badge(o.handed_over ? "done" : "waiting"))));
    if (!list.length) $("pickup-list").append(el("li", { class: "muted" }, "no sales yet"));
    // A refusal from a desk scanner reaches the page through the queue.
    const r = p.refused;
    // (Not a second time for the refusal this page's own scan just showed.)
    if (r && refusalSeen !== null && r.at !== refusalSeen && Date.now() - ownRefusal > 5000) refused(r.already, r.by);
    if (refusalSeen === null || r) refusalSeen = r ? r.at : "";
  }
  function hms2(t) { return t ? hms(Date.parse(t)) : "?"; }
  let audio = null;
  function beep(pattern) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      let t = audio.currentTime;
      for (const [hz, s] of pattern) {
        const o = audio.createOscillator(), g = audio.createGain();
        o.type = "square"; o.frequency.value = hz; g.gain.value = 0.25;
        o.connect(g); g.connect(audio.destination);
        o.start(t); o.stop(t + s); t += s + 0.05;
      }
      document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    } catch (_) { /* no audio: the flash still shows */ }
  }
  let flashTimer;
  function refused(a, by) {
    const msg = "ALREADY HANDED OVER: order " + a.order + " at " + hms2(a.at) + " by " + a.by + (by ? " (scanned again by " + by + ")" : "");
    const f = $("pickup-flash");
    f.textContent = msg; f.hidden = false;
    document.body.classList.remove("refused"); void document.body.offsetWidth; document.body.classList.add("refused");
    beep([[880, 0.18], [440, 0.18], [880, 0.18], [440, 0.18]]);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { f.hidden = true; document.body.classList.remove("refused"); }, 8000);
  }
  function scanResult(cls, text) { const r = $("scan-result"); r.className = "small " + cls; r.textContent = text; }
  async function scan(code) {
    code = code.trim();
    if (!code || stale) return;
    try {
      const r = await fetch("/api/pickup/scan", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code, by: who() }) });
      if (r.status === 401) { location.href = "/login"; return; }
      const j = await r.json().catch(() => ({}));
      if (r.status === 201) {
        const o = j.pickup;
        $("pickup-flash").hidden = true;
        scanResult("ok", "Handed over: order " + o.order + " · " + (o.discreet ? "discreet" : o.buyer || "no name") + " · " +
          (o.items || []).map((i) => i.qty + " × " + i.sku).join(", "));
        beep([[1320, 0.08]]);
      } else if (r.status === 409 && j.already) {
        scanResult("bad", "Refused: " + j.error);
        ownRefusal = Date.now();
        refused(j.already, "");
      } else if (r.status === 404) {
        scanResult("bad", "Unknown code: " + code + " is not a label of this box");
        beep([[330, 0.3]]);
      } else {
        scanResult("bad", j.error || r.status + " " + r.statusText);
      }
    } catch (e) { scanResult("bad", "The box did not answer: " + e.message); }
  }
  // The phone's camera, where the browser has a barcode detector (Chrome
  // on Android, Safari on iOS 17+ with the flag); elsewhere the button
  // stays hidden and the scan box takes a typed or wedge-scanned code.
  let camera = null;
  async function toggleCamera() {
    const v = $("scan-video");
    if (camera) { camera.getTracks().forEach((t) => t.stop()); camera = null; v.hidden = true; return; }
    try {
      const det = new BarcodeDetector({ formats: ["qr_code", "code_128"] });
      camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      v.srcObject = camera; v.hidden = false; await v.play();
      const mine = camera;
      const look = async () => {
        if (camera !== mine) return;
        try {
          const found = await det.detect(v);
          if (found.length) { const code = found[0].rawValue; toggleCamera(); scan(code); return; }
        } catch (_) { /* a frame not ready yet */ }
        setTimeout(look, 250);
      };
      look();
    } catch (e) { camera = null; v.hidden = true; scanResult("bad", "Camera: " + e.message); }
  }

  // --- the stream, and the stale state when it is lost. The agent sends
  // "alive" twice a second; 2 s of silence, or a broken connection, and
  // the page greys out, disables every control and says since when.
  let stale = false, lastHeard = 0, es = null, retry = null;
  const pageStart = Date.now();
  const SILENCE_MS = 2000;
  function setStale(on) {
    const s = $("stream");
    s.textContent = on ? "offline" : "live"; s.className = "pill " + (on ? "fail" : "ok");
    if (on === stale) return;
    stale = on;
    document.body.classList.toggle("stale", on);
    $("stale").hidden = !on;
    $("stale-since").textContent = hms(lastHeard || pageStart);
    document.querySelector("main").inert = on;
    for (const b of document.querySelectorAll("button, input")) {
      if (on && !b.disabled) { b.disabled = true; b.dataset.stale = "1"; }
      else if (!on && b.dataset.stale) { b.disabled = false; delete b.dataset.stale; }
    }
    renderLinks();
  }
  function heard() { lastHeard = Date.now(); setStale(false); }
  function reconnect(delay) {
    if (es) { es.close(); es = null; }
    clearTimeout(retry);
    retry = setTimeout(connect, delay);
  }
  const handlers = { status, preflight, scenes, batteries, printers, receipts, uplink, pickup, rehearsal };
  function connect() {
    es = new EventSource("/api/events");
    const me = es;
    es.onopen = heard;
    es.onerror = () => {
      if (me !== es) return;
      setStale(true);
      // A 401 closes the stream for good: the session has ended.
      if (es.readyState === EventSource.CLOSED) fetch("/api/whoami", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) location.href = "/login"; else reconnect(1000);
      }, () => reconnect(1000));
    };
    es.addEventListener("alive", heard);
    for (const [name, f] of Object.entries(handlers)) es.addEventListener(name, (e) => {
      heard();
      try { f(JSON.parse(e.data)); } catch (err) { console.error(name, err); }
    });
  }
  setInterval(() => {
    if (!stale && lastHeard && Date.now() - lastHeard > SILENCE_MS) {
      setStale(true);
      reconnect(0);
    }
  }, 200);
  // Ages ("2 min ago") move on by themselves.
  setInterval(() => { if (!stale) { renderPrinters(); renderReceipts(); } }, 10000);

  document.addEventListener("DOMContentLoaded", () => {
    try { $("who").value = localStorage.getItem("fieldkit-who") || ""; } catch (_) { /* private mode */ }
    $("gate").addEventListener("click", () => {
      const d = $("preflight");
      d.open = !d.open;
      if (d.open) d.scrollIntoView({ block: "start" });
    });
    $("preflight").addEventListener("toggle", () => $("gate").setAttribute("aria-expanded", String($("preflight").open)));
    $("run-checks").addEventListener("click", (e) => post("/api/preflight/run", null, e.target));
    $("rehearsal-on").addEventListener("click", (e) => {
      if (confirm("Start a rehearsal? Sales go to the rehearsal ledger until an admin ends it.")) post("/api/rehearsal/on", null, e.target).then((r) => r && rehearsal(r));
    });
    $("rehearsal-off").addEventListener("click", (e) => {
      if (confirm("End the rehearsal? Sales are real again from the next one.")) post("/api/rehearsal/off", null, e.target).then((r) => r && rehearsal(r));
    });
    $("reset-signoffs").addEventListener("click", (e) => {
      if (confirm("Clear every sign-off for the next show?")) post("/api/preflight/reset", { by: who() }, e.target);
    });
    $("scan-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const c = $("scan-code");
      scan(c.value);
      c.value = ""; c.focus();
    });
    if ("BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      $("scan-camera").hidden = false;
      $("scan-camera").addEventListener("click", toggleCamera);
    }
    fetch("/api/whoami", { credentials: "same-origin" }).then((r) => r.ok ? r.json() : null).then(whoami, () => {});
    connect();
  });
})();
