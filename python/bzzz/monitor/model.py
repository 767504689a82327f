"""What the monitor knows of the mesh, built incrementally from two inputs and nothing else:

- the mesh worker's status (`bzzz.mesh.client.MeshClient.status`): our peer id, whom we are
  connected to, and the live peer table (each agent's last signed capability broadcast);
- entries of the agents' logs, each read from a replica that only ever holds entries its
  writer's signature covers (`bzzz.log.replica`), so every entry here is verified.

Out come the views the API serves (agents, topology, tasks, discussions) and, after each step,
the changes it made (`take_changes`), one per changed item, for the live stream. Every string
from a peer or a log is capped (`bzzz.monitor.text`) before it is kept. No network, no files:
the tests drive it with plain data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bzzz.monitor.settings import MonitorSettings
from bzzz.monitor.text import as_int, cap, capped, capped_list

# Events the agents journal about a task (github worker, executor), with `repo` and `issue`.
TASK_EVENTS = frozenset(
    {
        "claim_won",
        "claim_lost",
        "task_started",
        "task_discussed",
        "task_executed",
        "task_finished",
        "task_failed",
        "task_help",
        "lease_reaped",
    }
)
STATES = ("discovered", "contended", "claimed", "discussing", "executing", "pr", "failed", "released", "escalated")
_ISSUE = re.compile(r"^([A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100})#([1-9][0-9]{0,18})$")
_PR_URL = re.compile(r"Opened (https?://\S+?)(?: with|\s|$)")
_MSG_ID = re.compile(r"^[0-9a-f]{32}$")
ZERO_KEY = "0" * 64  # what a node without a log of its own advertises


@dataclass(frozen=True)
class Change:
    """One changed item for the live stream: `event` names the SSE event, `data` is its JSON."""

    event: str  # agents | topology | task | discussion | log
    key: str
    data: dict[str, Any]


@dataclass
class _Agent:
    peer_id: str
    row: dict[str, Any]
    last_seen: float  # wall clock
    live: bool = True


@dataclass
class _Log:
    node_id: str
    length: int = 0  # entries in our verified replica
    indexed: int = 0  # entries the model has taken in


@dataclass
class _Task:
    task: str
    repo: str
    issue: int
    events: list[dict[str, Any]] = field(default_factory=list)
    seen: set[tuple[str, int]] = field(default_factory=set)
    state: str = "discovered"
    claimant: str | None = None
    pr_url: str | None = None
    last_ts: int = 0


def task_key(repo: Any, issue: Any) -> str | None:
    """ "owner/repo#N", or None when the fields do not name an issue."""
    if not isinstance(repo, str) or isinstance(issue, bool) or not isinstance(issue, int) or issue <= 0:
        return None
    key = f"{repo}#{issue}"
    return key if _ISSUE.match(key) else None


def parse_task(key: Any) -> tuple[str, int] | None:
    if not isinstance(key, str):
        return None
    match = _ISSUE.match(key)
    return (match.group(1), int(match.group(2))) if match else None


def task_state(events: list[dict[str, Any]]) -> tuple[str, str | None, str | None]:
    """(state, claimant, pr_url) after `events` (sorted by time): the task's state machine.

    A lost claim only says the issue was contended; a win makes the winner the claimant; a plan
    put to the mesh before execution is the discussion; a finished task is a PR or, given back,
    released; a failure or an escalation ends it until a new claim starts it again."""
    state, claimant, pr_url = "discovered", None, None
    executed = False
    for event in events:
        kind = event["kind"]
        if kind == "claim_lost":
            if state in ("discovered", "contended"):
                state = "contended"
        elif kind == "claim_won":
            state, claimant, pr_url, executed = "claimed", event["node_id"], None, False
        elif kind == "task_started":
            state, claimant = "executing", claimant or event["node_id"]
        elif kind == "hmmm_message" and event.get("query_type") == "plan":
            if state in ("claimed", "executing") and not executed:
                state = "discussing"
        elif kind == "task_discussed":
            state = "executing" if event.get("proceed") else "discussing"
        elif kind == "task_executed":
            state, executed = "executing", True
        elif kind == "task_finished":
            if event.get("ok"):
                state, pr_url = "pr", event.get("pr_url") or pr_url
            else:
                state = "released" if event.get("status") == "released" else "failed"
        elif kind == "task_failed":
            state = "failed"
        elif kind == "lease_reaped":
            state = "released"
        elif kind == "escalation":
            state = "escalated"
    return state, claimant, pr_url


def entry_view(index: int, raw: bytes, max_bytes: int) -> dict[str, Any]:
    """One log entry for the API: its type, time, text (capped) and size. `raw` is dropped here:
    an entry of megabytes is never kept."""
    size = len(raw)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        shown, truncated = cap(raw[: max_bytes // 2].hex(), max_bytes)
        return {
            "index": index,
            "type": "binary",
            "ts": None,
            "text": shown,
            "size": size,
            "truncated": size * 2 > len(shown),
        }
    kind, ts = "text", None
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            kind = capped(value.get("type", "event"), 64)
            ts = as_int(value.get("ts"), 0) or None
    shown, truncated = cap(text, max_bytes)
    return {"index": index, "type": kind, "ts": ts, "text": shown, "size": size, "truncated": truncated}


class MonitorModel:
    def __init__(self, settings: MonitorSettings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or MonitorSettings()
        self._clock = clock
        self.me: dict[str, Any] = {"peer_id": None, "node_id": None, "connected": []}
        self.agents: dict[str, _Agent] = {}
        self.logs: dict[str, _Log] = {}
        self.tasks: dict[str, _Task] = {}
        self.discussions: dict[str, dict[str, Any]] = {}  # task -> {topic, messages: {msg_id: message}}
        self.messages = 0
        self.indexed_total = 0
        self._topology: dict[str, Any] = {"nodes": [], "edges": []}
        self._changes: dict[tuple[str, str], Change] = {}

    # --- input --------------------------------------------------------------------------

    def _cap(self, value: Any) -> str:
        return capped(value, self.settings.text_max_bytes)

    def observe_mesh(self, status: dict[str, Any]) -> None:
        """Take in the mesh worker's status: our own identity and connections, and the live peers."""
        now = self._clock()
        self.me = {
            "peer_id": self._cap(status.get("peer_id")),
            "node_id": self._cap(status.get("node_id")),
            "connected": capped_list(status.get("connected"), self.settings.text_max_bytes, 1024),
        }
        live = set()
        for peer in status.get("peers") or []:
            caps = peer.get("capabilities") or {}
            peer_id = self._cap(peer.get("peer_id"))
            if not peer_id or peer_id == self.me["peer_id"]:
                continue
            live.add(peer_id)
            age = peer.get("age_s")
            seen = now - (float(age) if isinstance(age, int | float) and not isinstance(age, bool) else 0.0)
            row = self._row(peer_id, peer, caps)
            agent = self.agents.get(peer_id)
            if agent is None:
                agent = self.agents[peer_id] = _Agent(peer_id, row, seen)
                self._agent_changed(agent)
            else:
                changed = agent.row != row or not agent.live
                agent.row, agent.last_seen, agent.live = row, seen, True
                if changed:
                    self._agent_changed(agent)
            key = row["log_key"]
            if key != ZERO_KEY and key not in self.logs:
                self.logs[key] = _Log(row["node_id"])
        for agent in self.agents.values():
            if agent.live and agent.peer_id not in live:
                agent.live = False
                self._agent_changed(agent)
        # Peer ids cost a peer nothing to make: the gone ones seen longest ago are forgotten.
        gone = sorted((a for a in self.agents.values() if not a.live), key=lambda a: a.last_seen)
        for agent in gone[: max(0, len(self.agents) - self.settings.agents_max)]:
            del self.agents[agent.peer_id]
            self._changes.pop(("agents", agent.peer_id), None)
        for agent in self.agents.values():
            log = self.logs.get(agent.row["log_key"])
            if log is not None and log.node_id != agent.row["node_id"]:
                log.node_id = agent.row["node_id"]
        self._update_topology()

    def _row(self, peer_id: str, peer: dict[str, Any], caps: dict[str, Any]) -> dict[str, Any]:
        limit = self.settings.text_max_bytes
        node_id, node_id_cut = cap(str(peer.get("node_id") or caps.get("node_id") or ""), limit)
        key = caps.get("log_key")
        models, tools = capped_list(caps.get("models"), limit), capped_list(caps.get("tools"), limit)
        version, version_cut = cap(str(caps.get("version") or ""), limit)
        cut = node_id_cut or version_cut or models != caps.get("models") or tools != caps.get("tools")
        return {
            "node_id": node_id,
            "node_id_truncated": node_id_cut,
            "peer_id": peer_id,
            "models": models,
            "tools": tools,
            "load_permille": as_int(caps.get("load_permille")),
            "active_tasks": as_int(caps.get("active_tasks")),
            "max_tasks": as_int(caps.get("max_tasks")),
            "log_key": key if isinstance(key, str) and re.fullmatch(r"[0-9a-f]{64}", key) else ZERO_KEY,
            "log_length": as_int(caps.get("log_length")),
            "version": version,
            "connected": capped_list(caps.get("connected"), limit, 64),
            "truncated": bool(cut),  # some string of this row was cut (or a list left items out)
        }

    def observe_log(self, key: str, length: int) -> None:
        """Our verified replica of `key` now holds `length` entries."""
        log = self.logs.setdefault(key, _Log(self._node_of(key)))
        if length != log.length:
            log.length = length
            self._changes[("log", key)] = Change("log", key, {"key": key, "length": length})
            for agent in self.agents.values():
                if agent.row["log_key"] == key:
                    self._agent_changed(agent)

    def index(self, key: str, index: int, entry: dict[str, Any] | str | bytes) -> None:
        """Take in entry `index` of log `key` (decoded: `bzzz.log.events.decode_entry`), in order."""
        log = self.logs.setdefault(key, _Log(self._node_of(key)))
        if index < log.indexed:
            return  # seen already: indexing is incremental, never twice
        log.indexed = index + 1
        self.indexed_total += 1
        if not isinstance(entry, dict):
            return
        kind = entry.get("type")
        if kind in TASK_EVENTS:
            self._task_event(key, index, entry, str(kind))
        elif kind == "hmmm_message":
            self._hmmm(key, index, entry)

    # --- tasks and discussions ------------------------------------------------------------

    def _event(self, key: str, index: int, entry: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            "ts": as_int(entry.get("ts")),
            "kind": kind,
            "node_id": self._cap(entry.get("node_id") or self._node_of(key)),
            "log_key": key,
            "index": index,
        }

    def _task_event(self, key: str, index: int, entry: dict[str, Any], kind: str) -> None:
        name = task_key(entry.get("repo"), entry.get("issue"))
        if name is None:
            return
        event = self._event(key, index, entry, kind)
        limit = self.settings.text_max_bytes
        rest = {k: v for k, v in entry.items() if k not in ("type", "ts", "agent", "node_id", "repo", "issue")}
        event["detail"] = capped(json.dumps(rest, ensure_ascii=False, sort_keys=True), limit)
        if kind == "task_finished":
            event["ok"] = entry.get("ok") is True
            event["status"] = self._cap(entry.get("status"))
            found = _PR_URL.search(str(entry.get("summary") or ""))
            if found:
                event["pr_url"] = capped(found.group(1), limit)
        elif kind == "task_discussed":
            event["proceed"] = entry.get("proceed") is True
        self._add_to_task(name, event)

    def _hmmm(self, key: str, index: int, entry: dict[str, Any]) -> None:
        sent = entry.get("direction") == "sent"
        message_type = entry.get("message_type")
        if message_type == "escalation":
            raw = entry.get("payload")
            payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
            parsed = parse_task(payload.get("issue_id"))
            if sent and parsed is not None:
                event = self._event(key, index, entry, "escalation")
                event["detail"] = self._cap(payload.get("reason"))
                self._add_to_task(f"{parsed[0]}#{parsed[1]}", event)
            return
        if message_type != "meta_msg":
            return
        parsed = parse_task(entry.get("issue_id"))
        msg_id = entry.get("msg_id")
        if parsed is None or not isinstance(msg_id, str) or not _MSG_ID.match(msg_id):
            return
        name = f"{parsed[0]}#{parsed[1]}"
        discussion = self.discussions.get(name)
        known = discussion["messages"].get(msg_id) if discussion is not None else None
        if known is not None and (known["verified"] or not sent):
            return  # the writer's own copy is kept over any peer's account of it
        parent = entry.get("parent_id")
        text, truncated = cap(str(entry.get("text") or ""), self.settings.text_max_bytes)
        message = {
            "msg_id": msg_id,
            "parent_id": parent if isinstance(parent, str) and _MSG_ID.match(parent) else None,
            "node_id": self._cap(entry.get("from_node")),
            "query_type": self._cap(entry.get("query_type")),
            "text": text,
            "truncated": truncated,
            "ts": as_int(entry.get("sent_ts")) or as_int(entry.get("ts")),
            "log_key": key,
            "index": index,
            # In the writer's own log (`sent`): the entry, and so the message, is signed by its
            # writer. A `received` copy is only what another agent says it heard.
            "verified": sent,
        }
        if discussion is None:
            if self.messages >= self.settings.messages_max:
                self._forget_oldest_discussion()
            discussion = self.discussions[name] = {"topic": self._cap(entry.get("topic")), "messages": {}}
        if known is None:
            self.messages += 1
        discussion["messages"][msg_id] = message
        self._changes[("discussion", f"{name} {msg_id}")] = Change(
            "discussion", f"{name} {msg_id}", {"task": name, "topic": discussion["topic"], "messages": [message]}
        )
        if sent:
            event = self._event(key, index, entry, "hmmm_message")
            event["query_type"] = message["query_type"]
            event["detail"] = capped(f"{message['query_type']}: {text}", 300)
            self._add_to_task(name, event)

    def _forget_oldest_discussion(self) -> None:
        def newest(item: tuple[str, dict[str, Any]]) -> int:
            return max((m["ts"] for m in item[1]["messages"].values()), default=0)

        name, oldest = min(self.discussions.items(), key=newest)
        self.messages -= len(oldest["messages"])
        del self.discussions[name]

    def _add_to_task(self, name: str, event: dict[str, Any]) -> None:
        task = self.tasks.get(name)
        if task is None:
            if len(self.tasks) >= self.settings.tasks_max:
                del self.tasks[min(self.tasks.values(), key=lambda t: t.last_ts).task]
            repo, issue = name.rsplit("#", 1)
            task = self.tasks[name] = _Task(name, repo, int(issue))
        where = (event["log_key"], event["index"])
        if where in task.seen:
            return
        task.seen.add(where)
        task.events.append(event)
        task.events.sort(key=lambda e: (e["ts"], e["log_key"], e["index"]))
        if len(task.events) > self.settings.events_per_task_max:
            del task.events[1]  # keep the first (discovery) and the newest
        task.last_ts = max(task.last_ts, event["ts"])
        task.state, task.claimant, task.pr_url = task_state(task.events)
        self._changes[("task", name)] = Change("task", name, self._task_view(task))

    # --- views --------------------------------------------------------------------------

    def _node_of(self, key: str) -> str:
        for agent in self.agents.values():
            if agent.row["log_key"] == key:
                return str(agent.row["node_id"])
        return ""

    def agent_view(self, agent: _Agent) -> dict[str, Any]:
        log = self.logs.get(agent.row["log_key"])
        replica = log.length if log is not None else 0
        return {
            **agent.row,
            "replica_length": replica,
            "lag": max(0, agent.row["log_length"] - replica),
            "last_seen_s": round(max(0.0, self._clock() - agent.last_seen), 1),
            "live": agent.live,
        }

    def _agent_changed(self, agent: _Agent) -> None:
        self._changes[("agents", agent.peer_id)] = Change("agents", agent.peer_id, {})  # filled when taken

    def agents_view(self) -> list[dict[str, Any]]:
        return [self.agent_view(a) for a in sorted(self.agents.values(), key=lambda a: (a.row["node_id"], a.peer_id))]

    def topology(self) -> dict[str, Any]:
        return self._topology

    def _update_topology(self) -> None:
        nodes = [
            {"peer_id": a.peer_id, "node_id": a.row["node_id"], "live": a.live, "monitor": False}
            for a in sorted(self.agents.values(), key=lambda a: a.peer_id)
        ]
        if self.me["peer_id"]:
            nodes.append({"peer_id": self.me["peer_id"], "node_id": self.me["node_id"], "live": True, "monitor": True})
        known = {n["peer_id"] for n in nodes}
        edges: set[tuple[str, str]] = set()
        links = [(a.peer_id, a.row["connected"]) for a in self.agents.values() if a.live]
        if self.me["peer_id"]:
            links.append((self.me["peer_id"], self.me["connected"]))
        for source, connected in links:
            for other in connected:
                if other in known and other != source:
                    edges.add((min(source, other), max(source, other)))
        topology = {"nodes": nodes, "edges": [list(e) for e in sorted(edges)]}
        if topology != self._topology:
            self._topology = topology
            self._changes[("topology", "")] = Change("topology", "", topology)

    def _task_view(self, task: _Task) -> dict[str, Any]:
        return {
            "task": task.task,
            "repo": task.repo,
            "issue": task.issue,
            "state": task.state,
            "claimant": task.claimant,
            "pr_url": task.pr_url,
            "events": list(task.events),
        }

    def tasks_page(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """Tasks, most recently active first."""
        ordered = sorted(self.tasks.values(), key=lambda t: (-t.last_ts, t.task))
        return {"total": len(ordered), "tasks": [self._task_view(t) for t in ordered[offset : offset + limit]]}

    def discussions_view(self) -> list[dict[str, Any]]:
        """Each discussion with its messages in thread order (a reply after its parent), with `depth`."""
        out = []
        for name, discussion in sorted(self.discussions.items()):
            out.append({"task": name, "topic": discussion["topic"], "messages": threaded(discussion["messages"])})
        return out

    def log_info(self, key: str) -> dict[str, Any] | None:
        log = self.logs.get(key)
        return None if log is None else {"key": key, "node_id": log.node_id or self._node_of(key), "length": log.length}

    def take_changes(self) -> list[Change]:
        """What changed since the last call, one change per item (the latest state of each)."""
        changes = []
        for change in self._changes.values():
            if change.event == "agents":
                agent = self.agents[change.key]
                changes.append(Change("agents", change.key, self.agent_view(agent)))
            else:
                changes.append(change)
        self._changes.clear()
        return changes


def threaded(messages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages in thread order: each reply right after its parent's subtree starts, siblings by time.
    A reply whose parent is unknown starts a thread of its own."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for message in messages.values():
        parent = message["parent_id"] if message["parent_id"] in messages else None
        children.setdefault(parent, []).append(message)
    out: list[dict[str, Any]] = []
    stack = [(m, 0) for m in sorted(children.get(None, []), key=lambda m: (m["ts"], m["msg_id"]), reverse=True)]
    seen: set[str] = set()
    while stack:
        message, depth = stack.pop()
        if message["msg_id"] in seen:
            continue
        seen.add(message["msg_id"])
        out.append({**message, "depth": depth})
        replies = sorted(children.get(message["msg_id"], []), key=lambda m: (m["ts"], m["msg_id"]), reverse=True)
        stack.extend((reply, min(depth + 1, 16)) for reply in replies)
    # Replies that only reach each other (a cycle of parent ids) are shown too, unthreaded.
    out.extend({**m, "depth": 0} for m in sorted(messages.values(), key=lambda m: m["ts"]) if m["msg_id"] not in seen)
    return out


__all__ = [
    "STATES",
    "TASK_EVENTS",
    "Change",
    "MonitorModel",
    "entry_view",
    "parse_task",
    "task_key",
    "task_state",
    "threaded",
]
