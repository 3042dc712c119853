// The live run page: polls /api/status (this app's proxy of the engine's /status) once a second,
// fills the stage table, the verdict and the totals, and draws a timeline of queue depths and busy
// fractions on a <canvas>. Every value goes in through textContent: nothing is parsed as HTML.
// States: running (live numbers), finished/failed (the run's last snapshot and its summary, from the
// engine or YTINGEST_HOME/last-run.json), idle (the stream is starting), and no run at all
// (unreachable/unconfigured: a calm empty state with the command that starts one).
"use strict";
(function () {
  const POLL_MS = 1000;
  const WINDOW_S = 600; // the chart shows the last ten minutes
  // the verdicts that are not a stage; each stage's colour comes with it in the snapshot
  // (the pipeline description's ``colour``)
  const COLOURS = { source: "#cc0000", disk: "#8b0000", none: "#4e9a06" };
  const SPARE = ["#e66100", "#5e3c99", "#1a5fb4", "#26a269", "#a51d2d", "#865e3c"];
  const CELLS = ["name", "queue", "depth", "capacity", "qbar", "busy", "busybar", "workers",
                 "rate", "audio", "latency", "done", "errors"];
  const history = []; // [{t, verdict, stages: {name: {depth, capacity, busy}}}]
  let labels = {}; // stage name -> the label the table shows
  let stageColours = {}; // stage name -> its colour, as the snapshot says
  let polls = 0;

  function colour(name, i) { return stageColours[name] || COLOURS[name] || SPARE[i % SPARE.length]; }
  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }
  function fixed(v, d) { return num(v).toFixed(d); }
  function pct(v) { return Math.round(num(v) * 100) + "%"; }
  function set(root, selector, value) {
    const el = root.querySelector(selector);
    if (el) el.textContent = String(value);
  }

  function stageRow(name) {
    const body = document.querySelector("#stages tbody");
    for (const tr of body.rows) if (tr.dataset.stage === name) return tr;
    const tr = document.createElement("tr");
    tr.dataset.stage = name;
    for (const cls of CELLS) {
      const td = document.createElement("td");
      td.className = cls;
      if (cls === "qbar" || cls === "busybar") {
        const meter = document.createElement("meter");
        meter.min = 0;
        meter.max = 1;
        td.appendChild(meter);
      } else if (cls !== "name" && cls !== "queue") {
        td.classList.add("num");
      }
      tr.appendChild(td);
    }
    body.appendChild(tr);
    return tr;
  }

  function drawTable(stages) {
    const names = Object.keys(stages);
    for (const tr of Array.from(document.querySelectorAll("#stages tbody tr"))) {
      if (!names.includes(tr.dataset.stage)) tr.remove();
    }
    names.forEach(function (name, i) {
      const st = stages[name];
      const tr = stageRow(name);
      const cap = num(st.capacity) || 1;
      set(tr, ".name", st.label || name);
      tr.querySelector(".name").style.borderLeftColor = colour(name, i);
      set(tr, ".queue", st.queue || "");
      set(tr, ".depth", num(st.depth));
      set(tr, ".capacity", num(st.capacity));
      tr.querySelector(".qbar meter").value = Math.min(1, num(st.depth) / cap);
      set(tr, ".busy", pct(st.busy));
      tr.querySelector(".busybar meter").value = Math.min(1, num(st.busy));
      set(tr, ".workers", num(st.workers));
      set(tr, ".rate", fixed(st.items_per_s, 2));
      set(tr, ".audio", fixed(st.audio_s_per_s, 1));
      set(tr, ".latency", fixed(st.latency_s, 2));
      set(tr, ".done", num(st.done));
      set(tr, ".errors", num(st.errors));
    });
  }

  function duration(secs) {
    secs = Math.max(0, Math.round(secs));
    const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
    return (h ? h + "h" + String(m).padStart(2, "0") + "m" : m ? m + "m" : "") +
      (h ? "" : (m ? String(s).padStart(2, "0") : s) + "s");
  }

  // the engine's estimate: the audio left over the model's rate (or the videos left over the
  // run's video rate); "?" while neither is known, "-" once the run has ended
  function eta(snap, running) {
    if (!running) return "-";
    return typeof snap.eta_s === "number" && isFinite(snap.eta_s) ? duration(snap.eta_s) : "?";
  }

  function drawTotals(snap, knobs, running) {
    const totals = document.getElementById("totals");
    set(totals, ".done", num(snap.done));
    set(totals, ".failed", num(snap.failed));
    set(totals, ".in-model", Array.isArray(snap.in_model) ? snap.in_model.length : 0);
    set(totals, ".skipped", num(snap.skipped));
    set(totals, ".queued", num(snap.queued));
    set(totals, ".eta", eta(snap, running));
    set(totals, ".down", fixed(num(snap.download_bytes_per_s) / 1024, 0));
    const gpus = Array.isArray(snap.gpus) ? snap.gpus : [];
    const system = gpus.length
      ? gpus.map(function (g) {
          const vram = g.vram_total ? num(g.vram_used) / g.vram_total : 0;
          return "GPU" + g.index + " SM " + pct(g.sm) + " VRAM " + pct(vram);
        }).join(" · ")
      : "CPU " + fixed(snap.cpu_percent, 0) + "% · RSS " + fixed(num(snap.rss_bytes) / 1048576, 0) + " MiB";
    set(totals, ".system", system);
    set(totals, ".io-workers", (knobs.io_workers === undefined ? "?" : knobs.io_workers) +
        (knobs.autotune ? " (autotune)" : ""));
    set(totals, ".budget", budget(snap.budget));
  }

  // the run's request budget (DOWNLOAD_RATE_GLOBAL): rate, use in the last hour, the next turn
  function budget(b) {
    if (!b) return "none";
    const next = num(b.next_start_in_s) > 0 ? "next start in " + fixed(b.next_start_in_s, 0) + " s" : "next start now";
    return fixed(b.per_hour, 0) + "/h (" + (b.source || "DOWNLOAD_RATE_GLOBAL") + "), " +
      num(b.downloads_last_hour) + " downloads + " + num(b.listing_last_hour) + " listing in the last hour, " + next +
      (num(b.waiting) ? ", " + num(b.waiting) + " waiting" : "");
  }

  function drawVerdict(verdict) {
    const box = document.getElementById("verdict");
    const stage = (verdict && verdict.stage) || "none";
    box.dataset.stage = stage;
    set(box, ".stage", stage);
    set(box, ".advice", (verdict && verdict.advice) || "");
    box.querySelector(".stage").style.color = colour(stage, 0);
  }

  function remember(snap) {
    const last = history[history.length - 1];
    if (last && snap.t < last.t) history.length = 0; // a new run started
    if (last && snap.t === last.t) return;
    const stages = {};
    for (const [name, st] of Object.entries(snap.stages || {})) {
      stages[name] = { depth: num(st.depth), capacity: num(st.capacity), busy: num(st.busy) };
    }
    history.push({ t: num(snap.t), verdict: (snap.verdict && snap.verdict.stage) || "none", stages: stages });
    while (history.length > 1 && history[history.length - 1].t - history[0].t > WINDOW_S) history.shift();
  }

  function drawChart() {
    const canvas = document.getElementById("timeline");
    const ctx = canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 960, h = 320, padL = 48, padR = 12, gap = 28;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio); // draw at the element's size: crisp text and lines
      canvas.height = Math.round(h * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const panel = (h - 3 * gap) / 2;
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    const names = history.length ? Object.keys(history[history.length - 1].stages) : [];
    const t0 = history.length ? history[0].t : 0;
    const t1 = history.length ? Math.max(history[history.length - 1].t, t0 + 1) : 1;
    const x = function (t) { return padL + (w - padL - padR) * (t - t0) / (t1 - t0); };
    let peak = 1;
    for (const s of history) for (const n of names) if (s.stages[n]) peak = Math.max(peak, s.stages[n].depth);
    const panels = [
      { title: "queue depth (items)", top: gap, max: peak, key: "depth", label: String(peak) },
      { title: "busy", top: 2 * gap + panel, max: 1, key: "busy", label: "100%" },
    ];
    for (const p of panels) {
      ctx.fillStyle = "#222";
      ctx.fillText(p.title, padL, p.top - 8);
      ctx.fillStyle = "#666";
      ctx.fillText(p.label, 4, p.top + 10);
      ctx.fillText("0", 4, p.top + panel);
      ctx.strokeStyle = "#ddd";
      ctx.strokeRect(padL, p.top, w - padL - padR, panel);
      for (let i = 1; i < history.length; i++) { // the verdict of each interval, as a faint band
        const v = history[i].verdict;
        if (v === "none") continue;
        ctx.globalAlpha = 0.08;
        ctx.fillStyle = colour(v, 0);
        ctx.fillRect(x(history[i - 1].t), p.top, x(history[i].t) - x(history[i - 1].t), panel);
        ctx.globalAlpha = 1;
      }
      names.forEach(function (name, i) {
        ctx.strokeStyle = colour(name, i);
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        let started = false;
        for (const s of history) {
          const st = s.stages[name];
          if (!st) continue;
          const y = p.top + panel - panel * Math.min(1, st[p.key] / p.max);
          if (started) ctx.lineTo(x(s.t), y); else { ctx.moveTo(x(s.t), y); started = true; }
        }
        ctx.stroke();
      });
    }
    ctx.fillStyle = "#666";
    if (history.length) ctx.fillText(Math.round(t1) + " s", w - padR - 40, h - 6);
    const legend = document.getElementById("legend");
    if (legend.dataset.names !== names.join(",")) {
      legend.dataset.names = names.join(",");
      legend.replaceChildren();
      names.forEach(function (name, i) {
        const item = document.createElement("span");
        item.className = "key";
        item.textContent = "━ " + (labels[name] || name);
        item.style.color = colour(name, i);
        legend.appendChild(item);
      });
    }
  }

  function ended(doc) {
    const sum = doc.summary || (doc.snapshot ? { done: doc.snapshot.done, failed: doc.snapshot.failed } : {});
    let text = doc.state + ": " + num(sum.done) + " stored, " + num(sum.failed) + " failed";
    if (num(sum.skipped)) text += ", " + num(sum.skipped) + " skipped";
    if (typeof sum.wall_seconds === "number") text += " in " + duration(sum.wall_seconds);
    const at = doc.finished_at ? new Date(doc.finished_at) : null;
    if (at && !isNaN(at)) text += " (ended " + at.toLocaleString() + ")";
    return text;
  }

  // the badge, the headline and the hint for a document's state
  function headline(doc) {
    const none = doc.state === "unreachable" || doc.state === "unconfigured";
    const state = document.getElementById("state");
    const badge = none ? "none" : doc.state;
    state.textContent = none ? "no run" : doc.state === "idle" ? "starting" : doc.state;
    state.dataset.state = badge;
    let text = "";
    if (none) text = "No run is going.";
    else if (doc.state === "idle") text = "The stream is starting: its run begins once the models are loaded.";
    else if (doc.state === "finished" || doc.state === "failed") text = ended(doc);
    set(document, "#headline", text);
    const start = document.getElementById("start");
    start.hidden = doc.state === "running" || doc.state === "idle";
    if (doc.start) set(start, ".command", doc.start);
    const message = document.getElementById("message");
    message.textContent = doc.message || "";
    message.hidden = !doc.message;
  }

  function show(doc) {
    headline(doc);
    const snap = doc.snapshot;
    document.getElementById("live").hidden = !snap;
    if (!snap) { // no numbers to show: none of an earlier run's stay behind
      set(document, "#clock", "");
      document.querySelector("#stages tbody").replaceChildren();
      for (const b of document.querySelectorAll("#totals b")) b.textContent = "–";
      history.length = 0;
      return;
    }
    set(document, "#clock", "t=" + fixed(snap.t, 0) + " s");
    labels = {};
    stageColours = {};
    for (const [name, st] of Object.entries(snap.stages || {})) {
      labels[name] = st.label || name;
      if (typeof st.colour === "string" && st.colour) stageColours[name] = st.colour;
    }
    drawTable(snap.stages || {});
    drawVerdict(snap.verdict);
    drawTotals(snap, doc.knobs || {}, doc.state === "running");
    remember(snap);
    drawChart();
  }

  async function poll() {
    try {
      const resp = await fetch("/api/status", { cache: "no-store", headers: { Accept: "application/json" } });
      show(await resp.json());
    } catch (err) {
      show({ state: "unreachable", message: "this web app does not answer: " + err, snapshot: null });
    }
    polls += 1;
    document.body.dataset.polls = String(polls);
    window.setTimeout(poll, POLL_MS);
  }

  drawChart();
  window.addEventListener("resize", drawChart);
  poll();
})();
