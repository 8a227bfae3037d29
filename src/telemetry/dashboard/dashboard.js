// berth's read-only dashboard: polls /api/v1/status and /api/v1/events (same origin) and
// renders them with textContent only (no HTML from the server is ever interpreted).
"use strict";

const POLL_MS = 2000;
const EVENTS_KEPT = 200;
const ROLLOUT_KINDS = new Set(["rollout_started", "rollout_succeeded", "rollout_failed",
  "rollout_paused", "reverted", "degraded"]);
let events = [];
let lastSeq = 0; // the highest event number seen; the API returns those above it

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

// The reason, then the image update berth run found for the service, when there is one.
function reasonWithUpdate(s) {
  const u = s.update;
  if (!u || u.state === "up_to_date") return s.reason;
  const text = "update " + u.state + (u.to ? " → " + u.to : "") + ": " + u.message;
  return s.reason ? s.reason + "; " + text : text;
}

function scope(p, s) { return p ? (s ? p + "/" + s : p) : "berth"; }
function rev(r) { return r === undefined || r === null ? "" : "r" + r; }

function renderStatus(st) {
  const src = st.source || {};
  const where = document.getElementById("source");
  where.textContent = (src.kind || "") + " " + (src.location || "") +
    (src.revision ? " @ " + src.revision : "") + " — " +
    (src.valid ? "valid" : "INVALID") + " (" + (src.errors || 0) + " errors, " +
    (src.warnings || 0) + " warnings)";
  where.className = src.valid ? "ok" : "bad";
  where.id = "source";
  const diags = document.getElementById("diagnostics");
  diags.replaceChildren(...(src.diagnostics || []).map(d =>
    el("li", d.location + ": " + d.severity + ": " + d.message, "mono sev-" + d.severity)));
  const conds = document.getElementById("conditions");
  conds.replaceChildren(...(st.conditions || []).map(c =>
    el("li", c.kind + " " + c.status + (c.reason ? " (" + c.reason + ")" : "") +
      (c.message ? ": " + c.message : ""), c.status === "True" ? "ok" : "bad")));
  const r = st.round;
  document.getElementById("round").textContent = r
    ? "round " + r.number + " at " + r.at + ": " + r.result + (r.error ? " — " + r.error : "")
    : "";
  const body = document.querySelector("#services tbody");
  const services = st.services || [];
  body.replaceChildren(...services.map(s => {
    const running = (s.running || []).map(x =>
      (x.revision ? "r" + x.revision : (x.hash || "").slice(0, 12)) + " " + x.ready + "/" + x.containers).join(", ");
    const tr = row([
      scope(s.project, s.service) + (s.job ? " (job)" : ""),
      el("span", s.phase, "phase-" + s.phase),
      s.ready + "/" + s.replicas,
      rev(s.desired && s.desired.revision) + " " + ((s.desired && s.desired.image) || ""),
      running,
      s.since,
      reasonWithUpdate(s),
    ]);
    tr.dataset.service = scope(s.project, s.service);
    tr.dataset.phase = s.phase;
    return tr;
  }));
  document.getElementById("no-services").hidden = services.length > 0;
  document.getElementById("orphans").replaceChildren(...(st.orphans || []).map(o =>
    el("li", "orphaned project " + o.project + ": " + o.containers + " container(s) (berth prune " + o.project + ")")));
}

function renderEvents() {
  const body = document.querySelector("#events tbody");
  const newest = events.slice(-50).reverse();
  body.replaceChildren(...newest.map(e => {
    const tr = row([e.time, e.seq, scope(e.project, e.service),
      el("span", e.kind, "sev-" + e.severity), e.message]);
    tr.dataset.kind = e.kind;
    return tr;
  }));
  // The timeline: each service's rollout events in order, oldest first.
  const lanes = new Map();
  for (const e of events) {
    if (!ROLLOUT_KINDS.has(e.kind)) continue;
    const k = scope(e.project, e.service);
    if (!lanes.has(k)) lanes.set(k, []);
    lanes.get(k).push(e);
  }
  const tl = document.getElementById("timeline");
  if (lanes.size === 0) {
    tl.replaceChildren(el("p", "no rollouts in the recent events", "muted"));
    return;
  }
  tl.replaceChildren(...[...lanes.entries()].sort().map(([name, list]) => {
    const lane = el("div", null, "lane");
    lane.dataset.service = name;
    lane.appendChild(el("span", name, "lane-name"));
    for (const e of list.slice(-12)) {
      const step = el("span", rev(e.revision) + " " + e.kind.replace(/_/g, " "), "step sev-" + e.severity);
      step.title = e.time + ": " + e.message;
      lane.appendChild(step);
    }
    return lane;
  }));
}

async function poll() {
  const live = document.getElementById("live");
  try {
    const st = await fetch("api/v1/status", { cache: "no-store" });
    if (st.ok) renderStatus(await st.json());
    const ev = await fetch("api/v1/events?since=" + lastSeq + "&limit=" + EVENTS_KEPT, { cache: "no-store" });
    if (ev.ok) {
      const page = await ev.json();
      const known = new Set(events.map(e => e.seq));
      for (const e of page.events || []) {
        if (!known.has(e.seq)) events.push(e);
        lastSeq = Math.max(lastSeq, e.seq);
      }
      events = events.slice(-EVENTS_KEPT);
      renderEvents();
    }
    live.textContent = st.ok ? "live" : "waiting for the first round";
    live.className = "pill " + (st.ok ? "ok" : "warn");
  } catch (err) {
    live.textContent = "berth does not answer";
    live.className = "pill bad";
  }
  document.body.dataset.polled = String(Number(document.body.dataset.polled || 0) + 1);
  setTimeout(poll, POLL_MS);
}

poll();
