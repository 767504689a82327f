// The Mesh Visualizer's page. Vanilla JS, no build step. Every string that came from a peer or a
// log is put on the page with textContent or setAttribute only, never as HTML: with the page's
// CSP (default-src 'self') even a mistake here could not run a peer's script.
"use strict";

const ROW = 24; // px: the log view's fixed row height (virtual list)
const PAGE = 200; // log entries fetched at once
const PAGES_KEPT = 40;
const ZERO_KEY = "0".repeat(64);
const SVG = "http://www.w3.org/2000/svg";

const state = {
  agents: new Map(), // peer_id -> row
  topology: { nodes: [], edges: [] },
  tasks: new Map(), // task -> item
  discussions: new Map(), // task -> {topic, messages: Map(msg_id -> message)}
  log: { key: null, length: 0, pages: new Map(), pending: new Set(), refetched: new Map(), follow: true },
};

// --- DOM helpers: text and attributes only ---------------------------------------------------

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

function short(text, n) {
  text = String(text ?? "");
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? "" : d.toISOString().replace("T", " ").slice(0, 19);
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

// --- tabs -------------------------------------------------------------------------------

const TABS = ["topology", "agents", "tasks", "discussions", "logs"];

function showTab(name) {
  if (!TABS.includes(name)) name = "topology";
  for (const tab of TABS) {
    document.getElementById(tab).hidden = tab !== name;
    document.querySelector(`a[data-tab="${tab}"]`).classList.toggle("active", tab === name);
  }
  if (name === "logs") renderLog();
}

function route() {
  const [tab, key] = location.hash.replace(/^#/, "").split("/");
  if (tab === "logs" && /^[0-9a-f]{64}$/.test(key || "")) selectLog(key);
  showTab(tab);
}

// --- topology ---------------------------------------------------------------------------

function renderTopology() {
  const { nodes, edges } = state.topology;
  const edgeLayer = document.getElementById("topology-edges");
  const nodeLayer = document.getElementById("topology-nodes");
  // A ring, the monitor first: no three nodes in a line, so no edge hides behind a node.
  const ring = [...nodes].sort((a, b) => b.monitor - a.monitor || (a.peer_id < b.peer_id ? -1 : 1));
  const where = new Map();
  const radius = ring.length > 1 ? 230 : 0;
  ring.forEach((n, i) => {
    const angle = (2 * Math.PI * i) / ring.length + Math.PI / 2;
    where.set(n.peer_id, [radius * Math.cos(angle), radius * Math.sin(angle)]);
  });
  edgeLayer.replaceChildren(
    ...edges
      .filter(([a, b]) => where.has(a) && where.has(b))
      .map(([a, b]) => {
        const [x1, y1] = where.get(a);
        const [x2, y2] = where.get(b);
        return svg("line", { x1, y1, x2, y2, "data-edge": `${a} ${b}` });
      }),
  );
  nodeLayer.replaceChildren(
    ...nodes.map((n) => {
      const [x, y] = where.get(n.peer_id);
      const g = svg("g", {
        class: "node",
        transform: `translate(${x},${y})`,
        "data-peer-id": n.peer_id,
        "data-node-id": n.node_id,
        "data-live": n.live ? "true" : "false",
        "data-monitor": n.monitor ? "true" : "false",
      });
      const title = svg("title");
      title.textContent = `${n.node_id} (${n.peer_id})${n.monitor ? " — this monitor" : ""}${n.live ? "" : " — gone"}`;
      const label = svg("text", { x: 12, y: 4 });
      label.textContent = short(n.node_id || n.peer_id, 28) + (n.live ? "" : " (gone)");
      g.append(title, svg("circle", { r: n.monitor ? 9 : 11 }), label);
      return g;
    }),
  );
}

// --- agents -----------------------------------------------------------------------------

function agentRow(a) {
  const tr = el("tr", { "data-node-id": a.node_id, "data-peer-id": a.peer_id, "data-live": a.live ? "true" : "false" });
  const cell = (text, title) => el("td", title ? { title } : {}, text);
  const key = el("td", {});
  if (a.log_key && a.log_key !== ZERO_KEY) {
    const link = el("span", { class: "key", "data-log-key": a.log_key, title: a.log_key }, a.log_key.slice(0, 16));
    link.addEventListener("click", () => openLog(a.log_key));
    key.append(link);
  }
  tr.append(
    cell(a.node_id, a.node_id),
    cell(short(a.peer_id, 20), a.peer_id),
    cell(a.models.join(", "), a.models.join(", ")),
    cell(a.tools.join(", "), a.tools.join(", ")),
    cell((a.load_permille / 1000).toFixed(2)),
    cell(`${a.active_tasks}/${a.max_tasks}`),
    key,
    cell(a.log_length),
    cell(a.replica_length),
    cell(a.lag),
    cell(`${a.last_seen_s}s ago`),
    cell(a.version),
    cell(a.live ? "live" : "gone"),
  );
  return tr;
}

function agentOrder(a, b) {
  return a.node_id + a.peer_id < b.node_id + b.peer_id ? -1 : 1;
}

function renderAgents() {
  const rows = [...state.agents.values()].sort(agentOrder);
  document.getElementById("agents-rows").replaceChildren(...rows.map(agentRow));
  renderLogChoices();
}

// A live update replaces the changed rows only (the stream sends deltas; the page patches rows).
function patchAgents(peerIds) {
  const body = document.getElementById("agents-rows");
  for (const peerId of peerIds) {
    const a = state.agents.get(peerId);
    const old = [...body.children].find((tr) => tr.getAttribute("data-peer-id") === peerId);
    if (old) {
      old.replaceWith(agentRow(a));
      continue;
    }
    const after = [...state.agents.values()].sort(agentOrder).findIndex((x) => x.peer_id === peerId);
    body.insertBefore(agentRow(a), body.children[after] || null);
  }
  renderLogChoices();
}

// --- tasks ------------------------------------------------------------------------------

function taskItem(t) {
  const box = el("div", { class: "task", "data-task": t.task, "data-state": t.state });
  const head = el("h3", {}, t.task);
  head.append(el("span", { class: "state" }, t.state));
  box.append(head);
  const facts = el("div", { class: "facts" });
  if (t.claimant) facts.append(el("span", {}, `claimed by ${t.claimant} `));
  if (t.pr_url && /^https?:\/\//.test(t.pr_url)) {
    facts.append(el("a", { href: t.pr_url, rel: "noopener noreferrer", target: "_blank", class: "pr" }, t.pr_url));
  }
  box.append(facts);
  const list = el("ul", { class: "timeline" });
  for (const e of t.events) {
    const li = el("li", { "data-kind": e.kind, "data-log-key": e.log_key, "data-index": e.index });
    li.append(
      el("span", { class: "when" }, when(e.ts) + " "),
      el("span", { class: "kind" }, e.kind),
      el("span", { class: "who" }, `${e.node_id} `),
      el("span", { class: "where", title: `entry ${e.index} of log ${e.log_key}` }, `#${e.index} `),
      el("span", { class: "detail" }, short(e.detail, 300)),
    );
    list.append(li);
  }
  box.append(list);
  return box;
}

function lastTs(t) {
  return t.events.length ? t.events[t.events.length - 1].ts : 0;
}

const TASKS_SHOWN = 500;

function renderTasks() {
  const tasks = [...state.tasks.values()].sort((a, b) => lastTs(b) - lastTs(a) || (a.task < b.task ? -1 : 1));
  document.getElementById("tasks-list").replaceChildren(...tasks.slice(0, TASKS_SHOWN).map(taskItem));
}

// A changed task is redrawn alone and moves to the top (it is now the most recently active).
function patchTasks(names) {
  const list = document.getElementById("tasks-list");
  for (const name of names) {
    const old = [...list.children].find((box) => box.getAttribute("data-task") === name);
    const item = taskItem(state.tasks.get(name));
    if (old) old.remove();
    list.prepend(item);
  }
  while (list.children.length > TASKS_SHOWN) list.lastChild.remove();
}

// --- discussions ------------------------------------------------------------------------

function threaded(messages) {
  const byId = new Map(messages.map((m) => [m.msg_id, m]));
  const children = new Map();
  for (const m of messages) {
    const parent = m.parent_id && byId.has(m.parent_id) ? m.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(m);
  }
  const order = (list) => [...list].sort((a, b) => a.ts - b.ts || (a.msg_id < b.msg_id ? -1 : 1));
  const out = [];
  const seen = new Set();
  const walk = (m, depth) => {
    if (seen.has(m.msg_id)) return;
    seen.add(m.msg_id);
    out.push([m, depth]);
    for (const reply of order(children.get(m.msg_id) || [])) walk(reply, Math.min(depth + 1, 16));
  };
  for (const root of order(children.get(null) || [])) walk(root, 0);
  for (const m of order(messages)) if (!seen.has(m.msg_id)) out.push([m, 0]);
  return out;
}

function discussionItem(task, d) {
  const box = el("div", { class: "discussion", "data-discussion": task });
  const head = el("h3", {}, task);
  box.append(head, el("div", { class: "topic" }, d.topic));
  for (const [m, depth] of threaded([...d.messages.values()])) {
    const item = el("div", {
      class: "message",
      "data-msg-id": m.msg_id,
      "data-log-key": m.log_key,
      "data-index": m.index,
      "data-verified": m.verified ? "true" : "false",
    });
    item.style.marginLeft = `${depth * 1.5}em`;
    const mark = m.verified ? "✔ verified: entry " : "unverified (a peer's copy): entry ";
    item.append(
      el("div", { class: "meta" }, `${m.node_id} · ${m.query_type} · ${when(m.ts)} · ${mark}${m.index} of ${m.log_key.slice(0, 16)}`),
      el("div", { class: "text" }, m.text + (m.truncated ? " …(cut)" : "")),
    );
    box.append(item);
  }
  return box;
}

function takeDiscussion(d) {
  let known = state.discussions.get(d.task);
  if (!known) state.discussions.set(d.task, (known = { topic: d.topic, messages: new Map() }));
  for (const m of d.messages) known.messages.set(m.msg_id, m);
}

function patchDiscussions(names) {
  const list = document.getElementById("discussions-list");
  for (const name of names) {
    const old = [...list.children].find((box) => box.getAttribute("data-discussion") === name);
    const item = discussionItem(name, state.discussions.get(name));
    if (old) {
      old.replaceWith(item);
      continue;
    }
    const after = [...list.children].find((box) => box.getAttribute("data-discussion") > name);
    list.insertBefore(item, after || null);
  }
}

function renderDiscussions() {
  const list = [...state.discussions.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  document.getElementById("discussions-list").replaceChildren(...list.map(([task, d]) => discussionItem(task, d)));
}

// --- logs: a virtual list ---------------------------------------------------------------

function renderLogChoices() {
  const select = document.getElementById("log-select");
  const keys = [...state.agents.values()].filter((a) => a.log_key && a.log_key !== ZERO_KEY);
  const current = state.log.key;
  const options = keys.map((a) => el("option", { value: a.log_key }, `${short(a.node_id, 40)} — ${a.log_key.slice(0, 16)}`));
  if (current && !keys.some((a) => a.log_key === current)) options.push(el("option", { value: current }, current.slice(0, 16)));
  select.replaceChildren(el("option", { value: "" }, "choose a log"), ...options);
  select.value = current || "";
}

function openLog(key) {
  location.hash = `#logs/${key}`;
}

function selectLog(key) {
  if (state.log.key === key) return;
  state.log = { key, length: 0, pages: new Map(), pending: new Set(), refetched: new Map(), follow: false };
  renderLogChoices();
  document.getElementById("log-viewport").scrollTop = 0;
  document.querySelector(".proof")?.remove();
  fetchPage(0);
}

async function fetchPage(page) {
  const log = state.log;
  if (!log.key || log.pending.has(page)) return;
  log.pending.add(page);
  try {
    const data = await getJSON(`/api/logs/${log.key}?start=${page * PAGE}&limit=${PAGE}`);
    if (state.log !== log) return;
    log.length = Math.max(log.length, data.length);
    document.getElementById("log-summary").textContent = `${data.node_id} · ${log.length} entries, each verified against the writer's signed tree`;
    log.pages.set(page, data.entries);
    if (log.pages.size > PAGES_KEPT) {
      const visible = Math.floor(document.getElementById("log-viewport").scrollTop / ROW / PAGE);
      const far = [...log.pages.keys()].sort((a, b) => Math.abs(b - visible) - Math.abs(a - visible));
      for (const p of far.slice(0, log.pages.size - PAGES_KEPT)) log.pages.delete(p);
    }
  } catch (err) {
    document.getElementById("log-summary").textContent = String(err);
  } finally {
    log.pending.delete(page);
  }
  renderLog();
}

function renderLog() {
  const log = state.log;
  const viewport = document.getElementById("log-viewport");
  const rows = document.getElementById("log-rows");
  document.getElementById("log-spacer").style.height = `${log.length * ROW}px`;
  if (!log.key || document.getElementById("logs").hidden) return;
  if (log.follow) viewport.scrollTop = viewport.scrollHeight;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 5);
  const last = Math.min(log.length, first + Math.ceil(viewport.clientHeight / ROW) + 10);
  rows.style.transform = `translateY(${first * ROW}px)`;
  const shown = [];
  for (let i = first; i < last; i++) {
    const page = Math.floor(i / PAGE);
    const entries = log.pages.get(page);
    if (!entries) {
      fetchPage(page);
      shown.push(el("div", { class: "entry loading" }, `${i} …`));
      continue;
    }
    const e = entries[i - page * PAGE];
    if (!e) {
      // The log grew since this page was fetched: fetch it again, at most once a second.
      const now = Date.now();
      if (now - (log.refetched.get(page) || 0) > 1000) {
        log.refetched.set(page, now);
        log.pages.delete(page);
        fetchPage(page);
      } else {
        setTimeout(() => redraw("log"), 1000);
      }
      shown.push(el("div", { class: "entry loading" }, `${i} …`));
      continue;
    }
    const row = el("div", { class: "entry", "data-log-entry": e.index, title: `${e.size} bytes${e.truncated ? " (cut)" : ""}` });
    const button = el("button", { type: "button", "data-proof": e.index }, "proof");
    button.addEventListener("click", () => showProof(log.key, e.index));
    row.append(
      button,
      el("span", { class: "idx" }, e.index),
      el("span", { class: "type" }, e.type),
      el("span", { class: "text" }, e.text + (e.truncated ? " …(cut)" : "")),
    );
    shown.push(row);
  }
  rows.replaceChildren(...shown);
}

async function showProof(key, index) {
  document.querySelector(".proof")?.remove();
  const box = el("div", { class: "proof", "data-index": index }, "checking…");
  document.body.append(box);
  try {
    const p = await getJSON(`/api/logs/${key}/${index}/proof`);
    box.setAttribute("data-verified", p.verified ? "true" : "false");
    box.textContent = [
      `${p.verified ? "✔ verified" : "✘ NOT verified"}: ${p.why}`,
      `entry ${p.index} (${p.value_size} bytes) of log ${p.key}`,
      `writer's public key ${p.public_key}`,
      `signed head: length ${p.length}, fork ${p.fork}`,
      `signature ${p.signature}`,
      p.manifest ? `manifest ${p.manifest}` : "compat mode (no manifest)",
      "nodes (leaf up to its root):",
      ...p.nodes.map((n) => `  ${n.index} (${n.size} bytes) ${n.hash}`),
      "other roots of the signed tree:",
      ...p.roots.map((n) => `  ${n.index} (${n.size} bytes) ${n.hash}`),
    ].join("\n");
  } catch (err) {
    box.setAttribute("data-verified", "false");
    box.textContent = String(err);
  }
  const close = el("button", { type: "button", class: "close" }, "close");
  close.addEventListener("click", () => box.remove());
  box.prepend(close, document.createTextNode(" "));
}

// --- loading and the live stream --------------------------------------------------------

async function loadAll() {
  const [agents, topology, tasks, discussions] = await Promise.all([
    getJSON("/api/agents"),
    getJSON("/api/topology"),
    getJSON("/api/tasks?limit=500"),
    getJSON("/api/discussions"),
  ]);
  state.agents = new Map(agents.agents.map((a) => [a.peer_id, a]));
  state.topology = topology;
  state.tasks = new Map(tasks.tasks.map((t) => [t.task, t]));
  state.discussions = new Map();
  for (const d of discussions.discussions) takeDiscussion(d);
  renderAgents();
  renderTopology();
  renderTasks();
  renderDiscussions();
  if (state.log.key) {
    state.log.pages.clear();
    renderLog();
  }
}

// Many events can arrive at once (an agent catching up): patch each view at most once a frame,
// only the items that changed.
const dirty = new Map(); // view -> Set of changed keys (null: redraw the whole view)
function redraw(view, key) {
  if (dirty.size === 0) requestAnimationFrame(flush);
  if (key === undefined) dirty.set(view, null);
  else if (!dirty.has(view)) dirty.set(view, new Set([key]));
  else if (dirty.get(view) !== null) dirty.get(view).add(key);
}
function flush() {
  const views = [...dirty];
  dirty.clear();
  const whole = { agents: renderAgents, topology: renderTopology, tasks: renderTasks, discussions: renderDiscussions, log: renderLog };
  const patch = { agents: patchAgents, tasks: patchTasks, discussions: patchDiscussions };
  for (const [view, keys] of views) {
    if (keys === null || !patch[view]) whole[view]();
    else patch[view]([...keys]);
  }
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("hello", () => {
    document.body.setAttribute("data-connected", "true");
    document.getElementById("live-state").textContent = "live";
    loadAll().catch((err) => console.warn(err));
  });
  source.addEventListener("error", () => {
    document.body.setAttribute("data-connected", "false");
    document.getElementById("live-state").textContent = "offline: reconnecting";
  });
  source.addEventListener("agents", (e) => {
    const a = JSON.parse(e.data);
    state.agents.set(a.peer_id, a);
    redraw("agents", a.peer_id);
  });
  source.addEventListener("topology", (e) => {
    state.topology = JSON.parse(e.data);
    redraw("topology");
  });
  source.addEventListener("task", (e) => {
    const t = JSON.parse(e.data);
    state.tasks.set(t.task, t);
    redraw("tasks", t.task);
  });
  source.addEventListener("discussion", (e) => {
    const d = JSON.parse(e.data);
    takeDiscussion(d);
    redraw("discussions", d.task);
  });
  source.addEventListener("log", (e) => {
    const { key, length } = JSON.parse(e.data);
    if (key === state.log.key && length > state.log.length) {
      state.log.length = length;
      redraw("log");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of TABS) {
    document.querySelector(`a[data-tab="${tab}"]`).addEventListener("click", (event) => {
      event.preventDefault();
      location.hash = tab === "logs" && state.log.key ? `#logs/${state.log.key}` : `#${tab}`;
    });
  }
  window.addEventListener("hashchange", route);
  document.getElementById("log-select").addEventListener("change", (e) => {
    if (e.target.value) openLog(e.target.value);
  });
  const viewport = document.getElementById("log-viewport");
  viewport.addEventListener("scroll", () => {
    state.log.follow = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
    redraw("log");
  });
  route();
  connect();
});
