// The agentpolicy operator console: reads /console/api/state every two seconds (with
// its ETag, so an unchanged state costs a 304), shows pending escalations, recent
// resolutions and agents, and sends approvals, rejections and the kill switch with the
// session's CSRF token. No framework, no build step; every text from the server is
// placed with textContent, never parsed as HTML.
"use strict";

const POLL_MS = 2000;
let me = null;
let etag = null;
let clockOffset = 0; // server time minus this browser's
let lastState = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

function announce(text) {
  $("live").textContent = text;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = me ? me.csrf : "";
  }
  const r = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    window.location.assign("/console/login");
    throw new Error("the session ended");
  }
  let data = null;
  const text = await r.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!r.ok) {
    const msg = data && data.error ? data.error.message : `${r.status} ${r.statusText}`;
    throw new Error(msg);
  }
  return data;
}

function duration(ms) {
  if (ms <= 0) return "now";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${sec} s`;
  return `${sec} s`;
}

function timeLeft(e) {
  if (e.deadline_ms === null || e.deadline_ms === undefined) return "no timeout: waits until answered";
  const left = e.deadline_ms - (Date.now() + clockOffset);
  const then = e.timeout_outcome === "allow" ? "then allowed" : "then denied";
  return left > 0 ? `${duration(left)} left, ${then}` : `timing out now (${then})`;
}

function when(ms) {
  return new Date(ms).toLocaleString();
}

function dl(pairs) {
  const list = el("dl", { class: "facts" });
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    list.append(el("dt", { text: k }), el("dd", {}, v));
  }
  return list;
}

function argsView(args) {
  if (!args || Object.keys(args).length === 0) return el("span", { class: "muted", text: "none" });
  const t = el("table", { class: "args" });
  const body = el("tbody");
  for (const [k, v] of Object.entries(args)) {
    body.append(el("tr", {}, el("th", { scope: "row", text: k }),
      el("td", {}, el("code", { text: typeof v === "string" ? v : JSON.stringify(v) }))));
  }
  t.append(el("caption", { class: "sr-only", text: "Arguments" }), body);
  return t;
}

// ---- escalations ----

function escalationCard(e) {
  const id = e.id;
  const safe = id.replace(/[^a-z0-9]/gi, "-");
  const card = el("li", { class: "card", id: `esc-${safe}`, "data-id": id, "aria-labelledby": `esc-${safe}-title` });
  const head = el("div", { class: "card-head" },
    el("h3", { id: `esc-${safe}-title` }, el("span", { class: "agent", text: e.agent }), " wants ",
      el("code", { class: "tool", text: e.tool })),
    el("p", { class: "deadline", "data-role": "left", text: timeLeft(e) }));
  const st = e.session_state;
  const bound = st ? Object.entries(st.bound || {}).map(([k, v]) => `${k} = ${v}`).join(", ") : null;
  const facts = dl([
    ["Escalation", `${id} · raised ${when(e.raised_ms)}`],
    ["Route", e.routes.join(", ")],
    ["Rule", e.rule || "—"],
    ["Why", e.explanation || (lastState && lastState.audit ? "—" : "not available without an audit log")],
    ["Session", st ? `${e.session_id} · task ${st.task} · ${st.calls} call${st.calls === 1 ? "" : "s"}` : `${e.session_id} (not held by this service)`],
    ["Bound keys", st ? bound || "none" : null],
    ["Tier · taint", st ? `${st.tier || "nothing read yet"} · ${st.tainted ? "tainted (read untrusted data)" : "clean"}` : null],
    ["Context", e.context || "—"],
  ]);
  const reasoning = el("blockquote", { class: "reasoning", text: e.reasoning || "no reasoning given" });
  const trailButton = el("button", { type: "button", class: "quiet small", text: `Audit trail of ${e.session_id}`,
    onclick: () => { $("trail-session").value = e.session_id; loadTrail(e.session_id); } });
  const parts = [head, facts,
    el("h4", { text: "Arguments (as the audit log holds them, redacted by the policy)" }), argsView(e.args),
    el("h4", { text: "Agent's reasoning" }), reasoning, el("p", { class: "trail-link" }, trailButton)];
  if (me && me.can_act) {
    const reasonId = `reason-${safe}`;
    const status = el("p", { class: "result", role: "status", "data-role": "result" });
    const form = el("form", { class: "resolve", "aria-label": `Answer escalation ${id}` },
      el("label", { for: reasonId, text: "Reason (required, recorded in the audit log)" }),
      el("textarea", { id: reasonId, name: "reason", required: true, maxlength: "2048", rows: "2" }),
      el("div", { class: "buttons" },
        el("button", { type: "submit", value: "approve", class: "approve", text: "Approve" }),
        el("button", { type: "submit", value: "reject", class: "danger", text: "Reject" })),
      status);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); resolve(form, id, ev.submitter, status); });
    parts.push(form);
  }
  card.append(...parts);
  return card;
}

async function resolve(form, id, submitter, status) {
  const action = submitter && submitter.value === "reject" ? "reject" : "approve";
  const reason = form.reason.value.trim();
  if (!reason) {
    status.textContent = "Give a reason first: it is recorded with your name.";
    form.reason.focus();
    return;
  }
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  try {
    const r = await api("POST", `/console/api/escalations/${encodeURIComponent(id)}/${action}`, { reason });
    const text = `${id} ${r.resolution === "approve" ? "approved" : "rejected"} by ${r.by}: the waiting call resumes with ${r.outcome}.`;
    status.textContent = text;
    form.closest(".card").classList.add("done");
    announce(text);
    poll(true);
  } catch (err) {
    status.textContent = `Not done: ${err.message}`;
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
}

function renderEscalations(list) {
  const ol = $("esc-list");
  const keep = new Map();
  for (const li of ol.children) keep.set(li.dataset.id, li);
  const wanted = new Set(list.map((e) => e.id));
  for (const [id, li] of keep) {
    if (!wanted.has(id) && !li.classList.contains("done")) li.remove();
    else if (!wanted.has(id)) setTimeout(() => li.remove(), 4000);
  }
  let prev = null;
  for (const e of list) {
    let li = keep.get(e.id);
    if (!li) li = escalationCard(e);
    li._escalation = e;
    if (prev) prev.after(li); else ol.prepend(li);
    prev = li;
  }
  $("esc-count").textContent = `(${list.length})`;
  $("esc-empty").hidden = list.length > 0;
}

function renderResolved(list) {
  const ol = $("resolved");
  ol.replaceChildren(...list.slice(0, 10).map((r) => el("li", {},
    el("strong", { text: `${r.id} ${r.agent} · ${r.tool}` }), " ",
    el("span", { class: `badge ${r.outcome}`, text: r.outcome }),
    el("div", { text: r.why || `${r.resolution === "timeout" ? "timed out" : r.resolution}${r.by ? ` by ${r.by}` : ""}` }),
    el("div", { class: "muted", text: r.time }))));
  $("resolved-empty").hidden = list.length > 0;
}

function tick() {
  for (const li of $("esc-list").children) {
    if (!li._escalation) continue;
    const p = li.querySelector('[data-role="left"]');
    if (p) p.textContent = timeLeft(li._escalation);
  }
}

// ---- agents ----

function confirmThen(title, text, ok, action) {
  const d = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  d.returnValue = "";
  d.addEventListener("close", function once() {
    d.removeEventListener("close", once);
    if (d.returnValue === "ok") action();
  });
  d.showModal();
  $("confirm-cancel").focus();
}

async function control(kill, agent) {
  try {
    const r = await api("POST", kill ? "/console/api/kill" : "/console/api/resume", agent ? { agent } : {});
    announce(`${agent ? `Agent ${agent}` : "Every agent"} ${kill ? "stopped" : "resumed"} by ${r.by}.`);
    poll(true);
  } catch (err) {
    notice(`Not done: ${err.message}`);
  }
}

function whatStops(a) {
  return `${a.open_sessions} open session${a.open_sessions === 1 ? "" : "s"}, ${a.pending} pending escalation${a.pending === 1 ? "" : "s"}`;
}

function agentItem(a) {
  const state = a.killed ? "stopped (kill switch)" : a.tripped ? `suspended: ${a.tripped}`
    : a.suspended ? "stopped (every agent)" : "running";
  const li = el("li", { class: `agent-card ${a.suspended ? "stopped" : ""}`, "data-name": a.name });
  li.append(el("h3", {}, a.name, " ", el("span", { class: `badge ${a.suspended ? "deny" : "allow"}`, text: state })));
  const limits = a.limits.length
    ? el("ul", { class: "plain" }, ...a.limits.map((l) => el("li", { text: `${l.limit}: ${l.most_used} used` })))
    : "none";
  const trips = a.trips.length
    ? el("ul", { class: "plain" }, ...a.trips.map((t) => el("li", { text: `${t.time}: ${t.detail}` })))
    : null;
  li.append(dl([
    ["Mode", `${a.mode}${a.owner ? ` · ${a.owner}` : ""}`],
    ["Breakers", a.breakers.length ? el("ul", { class: "plain" }, ...a.breakers.map((b) => el("li", { text: b }))) : "none"],
    ["Last trips", trips],
    ["Limits (most used by one open session)", limits],
    ["Now", whatStops(a)],
  ]));
  if (a.can_control) {
    const b = a.killed
      ? el("button", { type: "button", text: `Resume ${a.name}`,
          onclick: () => confirmThen(`Resume ${a.name}?`, `Calls of ${a.name} will be decided by the policy again.`, `Resume ${a.name}`, () => control(false, a.name)) })
      : el("button", { type: "button", class: "danger", text: `Stop ${a.name}`,
          onclick: () => confirmThen(`Stop ${a.name}?`,
            `Every next call of agent ${a.name} is denied until it is resumed (${whatStops(a)}). Other agents keep running.`,
            `Stop ${a.name}`, () => control(true, a.name)) });
    li.append(el("div", { class: "buttons" }, b));
  }
  return li;
}

function renderAgents(agents) {
  const ul = $("agent-list");
  const old = new Map();
  for (const li of ul.children) old.set(li.dataset.name, li);
  const items = agents.list.map((a) => {
    const json = JSON.stringify(a);
    const prev = old.get(a.name);
    if (prev && prev.dataset.json === json) return prev;
    const li = agentItem(a);
    li.dataset.json = json;
    return li;
  });
  ul.replaceChildren(...items);
  const all = $("all-controls");
  const names = agents.list.map((a) => a.name).join(", ");
  const key = `${agents.can_control_all}/${agents.kill_all}/${names}`;
  if (all.dataset.key === key) return;
  all.dataset.key = key;
  all.replaceChildren();
  if (agents.kill_all) all.append(el("p", { class: "badge deny", text: "Every agent is stopped" }));
  if (agents.can_control_all) {
    all.append(agents.kill_all
      ? el("button", { type: "button", text: "Resume every agent",
          onclick: () => confirmThen("Resume every agent?", `Calls of ${names} will be decided by the policy again.`, "Resume every agent", () => control(false, null)) })
      : el("button", { type: "button", class: "danger", text: "Stop every agent",
          onclick: () => confirmThen("Stop every agent?", `Every next call of every agent (${names}) is denied until they are resumed.`, "Stop every agent", () => control(true, null)) }));
  }
}

// ---- trail ----

async function loadTrail(session) {
  const out = $("trail-out");
  out.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  try {
    const r = await api("GET", `/console/api/sessions/${encodeURIComponent(session)}/audit`);
    const rows = r.records.map((x) => el("tr", {},
      el("td", { text: String(x.seq) }), el("td", { text: x.time }), el("td", { text: x.kind }),
      el("td", { text: x.call === undefined ? "" : String(x.call) }), el("td", {}, x.tool ? el("code", { text: x.tool }) : ""),
      el("td", {}, x.outcome ? el("span", { class: `badge ${x.outcome}`, text: x.outcome }) : ""),
      el("td", { text: [x.why || (x.resolution && `${x.resolution} by ${x.by}`), x.detail].filter(Boolean).join(" — ") })));
    const table = el("table", { class: "trail" },
      el("caption", { text: `Session ${r.session.id} of ${r.agent}: ${r.total} records${r.total > r.records.length ? `, the latest ${r.records.length} shown` : ""}` }),
      el("thead", {}, el("tr", {}, ...["#", "Time", "Kind", "Call", "Tool", "Outcome", "What"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows));
    out.replaceChildren(el("div", { class: "scroll" }, table));
    $("trail").scrollIntoView({ block: "start" });
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

// ---- state ----

function renderState(s) {
  lastState = s;
  const p = s.policy;
  $("policy").textContent = `${p.name}${p.version ? ` ${p.version}` : ""} · ${p.source_hash.slice(0, 19)}…`;
  $("no-audit").hidden = s.audit;
  renderEscalations(s.escalations);
  renderResolved(s.resolved);
  renderAgents(s.agents);
  $("matrix-text").replaceChildren(
    `Policy ${p.name}${p.version ? ` version ${p.version}` : ""}, source hash `, el("code", { class: "hash", text: p.source_hash }), ". ",
    ...(p.matrix
      ? [el("a", { href: "/console/matrix", target: "_blank", rel: "noopener", text: "Open its signed access-control matrix" }),
         " (the page the service was started with, signing this hash)."]
      : ["Its signed access-control matrix is made with ", el("code", { text: "agentpolicy matrix POLICY --format html" }),
         " and carries this hash in its header; start the service with ", el("code", { text: "--matrix FILE" }),
         " to link it here (it is linked only while it signs the table in force)."]));
}

let polling = false;
async function poll(force) {
  if (polling && !force) return;
  polling = true;
  try {
    const route = $("route").value;
    const headers = { "Accept": "application/json" };
    if (etag && !force) headers["If-None-Match"] = etag;
    const r = await fetch(`/console/api/state${route ? `?route=${encodeURIComponent(route)}` : ""}`,
      { headers, credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { window.location.assign("/console/login"); return; }
    const server = Number(r.headers.get("x-server-time-ms"));
    if (server) clockOffset = server - Date.now();
    if (r.status === 304) { notice(""); return; }
    if (!r.ok) { notice(`The service answered ${r.status}; retrying.`); return; }
    etag = r.headers.get("etag");
    renderState(await r.json());
    notice("");
  } catch (err) {
    notice(`Cannot reach the service (${err.message}); retrying.`);
  } finally {
    polling = false;
  }
}

async function start() {
  try {
    me = await api("GET", "/console/api/me");
  } catch (err) {
    notice(err.message);
    return;
  }
  $("who").textContent = `${me.name} (${me.role})`;
  const sel = $("route");
  if (me.role === "auditor") sel.options[0].textContent = "All routes";
  for (const r of me.routes) {
    sel.append(el("option", { value: r, text: r }));
  }
  sel.addEventListener("change", () => { etag = null; poll(true); });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/console/logout"); } catch (_) { /* the session is gone either way */ }
    window.location.assign("/console/login");
  });
  $("trail-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadTrail($("trail-session").value.trim());
  });
  await poll(true);
  setInterval(poll, POLL_MS);
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", start);
