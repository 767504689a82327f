"""Realistic Hive rows, messy ones included, for a database that holds Hive's schema.

The agents follow Hive's config/hive.yaml (`hive.agents.<key>{name, endpoint, model,
capabilities[], hardware{}, performance_targets{}}`) as Hive's registration wrote them into
`agents`; the rest is what a year of use leaves behind. What the migration must cope with is
named in the constants below, so the tests of the migration can refer to it:

- `NULL_JSONB_AGENT`: every jsonb column SQL NULL; `JSON_NULL_AGENT`: capabilities is the JSON
  value `null` (not SQL NULL); `OBJECT_CAPABILITIES_AGENT`: capabilities an object, not a list;
- `UNKNOWN_SPECIALTY_AGENT`: a specialty outside Hive's enum, a legacy `specialization` beside it;
- `DUPLICATE_NAME`: carried by two agents with different ids;
- `DELETED_AGENT`: removed after its task was assigned, so that task's agent went NULL;
- tasks in every status of `TASK_STATUSES` and one in `UNKNOWN_STATUS`, assigned and not,
  with metadata SQL NULL, `{}`, or `{context, payload, type}`;
- projects with and without Bzzz, ready to claim or not, private, and one with no git columns.

Rows are dicts of column → value: None is SQL NULL, `JSON_NULL` the JSON value null, and a dict
or list goes into a jsonb column.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

T0 = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
Row = dict[str, Any]

# Hive's specialties and task statuses: the AgentType and TaskStatus enums of
# backend/app/core/hive_coordinator.py. `UNKNOWN_STATUS` is outside that enum: a row cancelled by hand.
SPECIALTIES = (
    "kernel_dev", "pytorch_dev", "profiler", "docs_writer", "tester", "cli_gemini", "general_ai", "reasoning",
)  # fmt: skip
TASK_STATUSES = ("pending", "in_progress", "completed", "failed")
UNKNOWN_STATUS = "cancelled"

JSON_NULL = object()
NULL_JSONB_AGENT = "tully-mistral"
UNKNOWN_SPECIALTY_AGENT = NULL_JSONB_AGENT
UNKNOWN_SPECIALTY = "mobile_dev"
JSON_NULL_AGENT = "oak-gemini"
OBJECT_CAPABILITIES_AGENT = "forsteinet-gemma"
DUPLICATE_NAME = "WALNUT Senior Full-Stack Developer"
DELETED_AGENT = "ghost-llama"


def _ollama_agent(id: str, name: str, endpoint: str, model: str, specialty: str, capabilities: Any,
                  hardware: tuple[str, float, int, int, str] | None,
                  targets: tuple[float, int, float] | None, **rest: Any) -> Row:  # fmt: skip
    gpu, vram, cores, ram, role = hardware or (None, None, None, None, None)
    tps, ms, availability = targets or (None, None, None)
    row: Row = {
        "id": id, "name": name, "endpoint": endpoint, "model": model, "specialty": specialty,
        "agent_type": "ollama", "capabilities": capabilities,
        "hardware_config": hardware and {"gpu_type": gpu, "vram_gb": vram, "cpu_cores": cores, "ram_gb": ram,
                                         "network_role": role},
        "performance_targets": targets and {"min_tokens_per_second": tps, "max_response_time_ms": ms,
                                            "target_availability": availability},
        "max_concurrent": 2, "current_tasks": 0, "status": "available", "last_seen": T0 + timedelta(days=30),
    }  # fmt: skip
    return row | rest


WALNUT_HARDWARE = ("AMD RX 9060 XT (RDNA 4)", 16, 16, 64, "Docker Swarm Manager")
AGENTS: list[Row] = [
    _ollama_agent("acacia-deepseek", "ACACIA Infrastructure Specialist", "http://192.168.1.72:11434",
                  "deepseek-r1:7b", "reasoning",
                  ["infrastructure_design", "devops_automation", "system_architecture", "database_design"],
                  ("NVIDIA GTX 1070", 8, 56, 128, "NAS + Services Host"), (3.0, 30000, 0.99)),
    _ollama_agent("walnut-starcoder", DUPLICATE_NAME, "http://192.168.1.27:11434", "starcoder2:15b", "kernel_dev",
                  ["full_stack_development", "backend_apis", "react_development", "typescript_expertise"],
                  WALNUT_HARDWARE, (8.0, 20000, 0.99), max_concurrent=3, current_tasks=1, status="busy"),
    # Re-registered under a new id with the same name when its model changed; the old row stayed.
    _ollama_agent("walnut-codellama", DUPLICATE_NAME, "http://192.168.1.27:11434", "codellama:13b", "pytorch_dev",
                  ["code_generation"], WALNUT_HARDWARE, (6.0, 25000, 0.95), status="offline",
                  last_seen=T0 - timedelta(days=60)),
    _ollama_agent("ironwood-deepseek-coder", "IRONWOOD Backend Development Specialist",
                  "http://192.168.1.113:11434", "deepseek-coder-v2", "profiler",
                  ["backend_development", "api_design", "code_analysis", "debugging", "database_optimization"],
                  ("NVIDIA RTX 3070", 8, 24, 128, "Development Workstation"), (6.0, 25000, 0.95),
                  current_tasks=2, status="busy"),
    _ollama_agent("rosewood-deepseek", "ROSEWOOD Quality Assurance & Testing Specialist",
                  "http://192.168.1.132:11434", "deepseek-r1:8b", "tester",
                  ["quality_assurance", "automated_testing", "code_review", "regression_testing"],
                  ("NVIDIA RTX 2080 Super", 8, 12, 64, "QA Testing Environment"), (4.0, 30000, 0.95)),
    _ollama_agent(OBJECT_CAPABILITIES_AGENT, "FORSTEINET Documentation Writer", "http://192.168.1.106:11434",
                  "gemma3:12b", "docs_writer", {"languages": ["en", "de"], "formats": ["markdown", "rst"]},
                  ("NVIDIA RTX 3060", 12, 8, 32, "Docs Host"), (5.0, 40000, 0.9), max_concurrent=1),
    # A CLI agent as Hive's /api/cli-agents registered it; its request body carried capabilities: null.
    {"id": JSON_NULL_AGENT, "name": "OAK Gemini CLI", "endpoint": "cli://oak.local", "model": "gemini-2.5-pro",
     "specialty": "cli_gemini", "agent_type": "cli", "status": "available", "capabilities": JSON_NULL,
     "cli_config": {"host": "oak.local", "node_version": "v22.14.0", "model": "gemini-2.5-pro",
                    "command_timeout": 60, "ssh_user": "tony", "agent_id": JSON_NULL_AGENT}},
    # Registered by hand long ago: a legacy specialization, a specialty Hive never defined, no jsonb.
    {"id": NULL_JSONB_AGENT, "name": "TULLY MacBook Air Development Specialist",
     "endpoint": "http://Tullys-MacBook-Air.local:11434", "model": "mistral-nemo:latest",
     "specialty": UNKNOWN_SPECIALTY, "specialization": "Mobile Development & Apple Ecosystem",
     "max_concurrent": 1, "status": "offline"},
    _ollama_agent(DELETED_AGENT, "GHOST retired box", "http://192.168.1.99:11434", "llama2:7b", "general_ai",
                  ["general"], None, None, status="offline", last_seen=T0 - timedelta(days=200)),
]  # fmt: skip
LIVE_AGENTS = [agent["id"] for agent in AGENTS if agent["id"] != DELETED_AGENT]
METRICS_PER_AGENT = 3
METRICS: list[Row] = [
    {"agent_id": agent, "timestamp": T0 + timedelta(minutes=5 * i), "cpu_usage": 20.0 + 7 * i,
     "memory_usage": 41.5 + i, "gpu_usage": None if n % 2 else 55.0 + i, "tokens_per_second": 4.0 + n,
     "response_time": 1.2 + i / 10, "active_tasks": i, "status": "available"}
    for n, agent in enumerate(LIVE_AGENTS)
    for i in range(METRICS_PER_AGENT)
]  # fmt: skip

ADMIN = uuid.UUID("00000000-0000-4000-8000-000000000001")
USERS: list[Row] = [
    {"id": ADMIN, "username": "admin", "email": "admin@hive.local", "hashed_password": "!",
     "full_name": "Hive Administrator", "role": "admin", "is_superuser": True, "is_verified": True},
]  # fmt: skip


def _n8n(name: str, *node_types: str) -> Row:
    """An n8n 1.x export body: nodes in a chain and their connections."""
    nodes = [
        {"id": f"n{i}", "name": f"{kind.split('.')[-1]} {i}", "type": kind, "typeVersion": 1,
         "position": [250 * i, 300], "parameters": {}}
        for i, kind in enumerate(node_types)
    ]  # fmt: skip
    connections = {
        a["name"]: {"main": [[{"node": b["name"], "type": "main", "index": 0}]]}
        for a, b in zip(nodes, nodes[1:], strict=False)
    }
    return {"name": name, "nodes": nodes, "connections": connections, "settings": {"executionOrder": "v1"}}


WORKFLOW_ISSUE = uuid.UUID("10000000-0000-4000-8000-000000000001")
WORKFLOW_REVIEW = uuid.UUID("10000000-0000-4000-8000-000000000002")
WORKFLOW_OLD = uuid.UUID("10000000-0000-4000-8000-000000000003")
WORKFLOWS: list[Row] = [
    {"id": WORKFLOW_ISSUE, "name": "Bug report to agent", "created_by": ADMIN, "version": 3,
     "description": "Webhook in, task to the best agent, result to Slack",
     "n8n_data": _n8n("Bug report to agent", "n8n-nodes-base.webhook", "n8n-nodes-base.httpRequest",
                      "n8n-nodes-base.slack")},
    {"id": WORKFLOW_REVIEW, "name": "Nightly code review",
     "n8n_data": _n8n("Nightly code review", "n8n-nodes-base.scheduleTrigger", "n8n-nodes-base.httpRequest"),
     "mcp_tools": [{"name": "code_review", "server": "http://localhost:8000/mcp"}]},
    {"id": WORKFLOW_OLD, "name": "Old escalation (disabled)", "description": "Superseded", "created_by": ADMIN,
     "version": 7, "active": False, "n8n_data": {"nodes": [], "connections": {}}},
]  # fmt: skip

EXEC_DONE, EXEC_FAILED, EXEC_RUNNING, EXEC_PENDING, EXEC_ORPHAN = (
    uuid.UUID(f"20000000-0000-4000-8000-00000000000{n}") for n in range(1, 6)
)
PR_URL = "https://github.com/deepblackcloud/hive/pull/42"
EXECUTIONS: list[Row] = [
    {"id": EXEC_DONE, "workflow_id": WORKFLOW_ISSUE, "status": "completed", "progress": 100,
     "input_data": {"issue": "login page 500s"}, "output_data": {"pull_request_url": PR_URL},
     "started_at": T0 + timedelta(hours=1), "completed_at": T0 + timedelta(hours=1, minutes=12)},
    {"id": EXEC_FAILED, "workflow_id": WORKFLOW_ISSUE, "status": "failed", "progress": 60,
     "input_data": {"issue": "flaky test"}, "error_message": "agent walnut-starcoder timed out after 300s",
     "started_at": T0 + timedelta(hours=2), "completed_at": T0 + timedelta(hours=2, minutes=5)},
    {"id": EXEC_RUNNING, "workflow_id": WORKFLOW_REVIEW, "status": "running", "progress": 40,
     "input_data": {"repo": "deepblackcloud/bzzz"}, "started_at": T0 + timedelta(days=30)},
    {"id": EXEC_PENDING, "workflow_id": WORKFLOW_REVIEW},
    # Its workflow was deleted: workflow_id went NULL (ON DELETE SET NULL).
    {"id": EXEC_ORPHAN, "workflow_id": None, "status": "completed", "progress": 100, "input_data": {},
     "output_data": {"ok": True}, "started_at": T0 - timedelta(days=90), "completed_at": T0 - timedelta(days=90)},
]  # fmt: skip


def _meta(kind: str, context: Row, payload: Row | None = None) -> Row:
    return {"type": kind, "context": context, "payload": payload or {}}


GHOST_TASK = uuid.UUID("30000000-0000-4000-8000-000000000009")
TASKS: list[Row] = [
    {"title": "Optimise the FlashAttention kernel for RDNA 4", "priority": 1, "status": "pending",
     "description": "Profile and tune the fused attention kernel",
     "metadata": _meta("kernel_dev", {"objective": "2x on RX 9060 XT", "files": ["kernels/attn.hip"]})},
    {"title": "Write the API reference for /api/tasks", "priority": 4, "status": "pending", "metadata": None},
    {"title": "Fix the login 500", "description": "Stack trace attached", "priority": 2, "status": "in_progress",
     "assigned_agent_id": "walnut-starcoder", "workflow_id": WORKFLOW_ISSUE, "execution_id": EXEC_RUNNING,
     "metadata": _meta("general_ai", {"stack": "KeyError: 'user'"},
                       {"issue_url": "https://github.com/deepblackcloud/hive/issues/41"}),
     "started_at": T0 + timedelta(days=30)},
    {"title": "Profile the tokenizer hot path", "priority": 3, "status": "in_progress",
     "assigned_agent_id": "ironwood-deepseek-coder", "metadata": {}, "started_at": T0 + timedelta(days=30)},
    {"title": "Login page returns 500", "description": "Reported by n8n", "priority": 2, "status": "completed",
     "assigned_agent_id": "walnut-starcoder", "workflow_id": WORKFLOW_ISSUE, "execution_id": EXEC_DONE,
     "metadata": _meta("general_ai", {"issue": "login page 500s"}, {"result": {"pull_request_url": PR_URL}}),
     "started_at": T0 + timedelta(hours=1), "completed_at": T0 + timedelta(hours=1, minutes=12)},
    {"title": "Regression suite for the auth refactor", "priority": 3, "status": "completed",
     "assigned_agent_id": "rosewood-deepseek", "metadata": None,
     "started_at": T0 + timedelta(days=3), "completed_at": T0 + timedelta(days=3, hours=2)},
    {"title": "Fix the flaky test", "priority": 2, "status": "failed", "assigned_agent_id": "walnut-starcoder",
     "workflow_id": WORKFLOW_ISSUE, "execution_id": EXEC_FAILED,
     "metadata": _meta("tester", {"test": "tests/test_auth.py::test_refresh"}, {"error": "timed out after 300s"}),
     "started_at": T0 + timedelta(hours=2), "completed_at": T0 + timedelta(hours=2, minutes=5)},
    {"title": "Port the dashboard to Svelte", "description": "Dropped", "priority": 5, "status": UNKNOWN_STATUS,
     "metadata": _meta("general_ai", {})},
    {"id": GHOST_TASK, "title": "Summarise the Q2 incidents", "priority": 4, "status": "pending",
     "assigned_agent_id": DELETED_AGENT, "metadata": _meta("docs_writer", {"quarter": "2025Q2"})},
]  # fmt: skip


def _project(name: str, owner: str, repo: str, **rest: Any) -> Row:
    return {"name": name, "github_repo": f"{owner}/{repo}", "git_url": f"https://github.com/{owner}/{repo}.git",
            "git_owner": owner, "git_repository": repo} | rest  # fmt: skip


PROJECTS: list[Row] = [
    _project("hive", "deepblackcloud", "hive", description="The coordinator itself", bzzz_enabled=True,
             ready_to_claim=True, metadata={"language": "python"}, tags=["coordinator", "fastapi"]),
    _project("bzzz", "deepblackcloud", "bzzz", description="P2P task coordination", git_branch="develop",
             bzzz_enabled=True, ready_to_claim=False, tags=["p2p"]),
    _project("secret-infra", "deepblackcloud", "infra", description="Ansible and Swarm stacks",
             git_url="git@github.com:deepblackcloud/infra.git", bzzz_enabled=True, ready_to_claim=True,
             private_repo=True, github_token_required=True, metadata={"notes": "needs a token"}),
    _project("distributed-ai-dev", "anthonyrawlins", "distributed-ai-dev", description="Old experiment",
             status="archived"),
    # Hive's schema inserts it; it never had a repository.
    {"name": "Default Project", "description": "Default project for general tasks and workflows"},
]  # fmt: skip
BZZZ_PROJECTS = [p["name"] for p in PROJECTS if p.get("bzzz_enabled")]

ALERTS: list[Row] = [
    {"type": "agent_offline", "severity": "warning", "message": "walnut-codellama has not reported for 60 days",
     "agent_id": "walnut-codellama", "created_at": T0},
    {"type": "high_gpu_usage", "severity": "critical", "message": "GPU at 97% on ironwood",
     "agent_id": "ironwood-deepseek-coder", "resolved": True, "created_at": T0 + timedelta(days=1),
     "resolved_at": T0 + timedelta(days=1, minutes=20)},
    {"type": "response_time", "severity": "info", "message": "p95 response time above 60 s",
     "created_at": T0 + timedelta(days=2)},
]  # fmt: skip

# Parents before children, as the foreign keys need.
TABLES: dict[str, list[Row]] = {
    "users": USERS, "agents": AGENTS, "agent_metrics": METRICS, "workflows": WORKFLOWS,
    "executions": EXECUTIONS, "tasks": TASKS, "projects": PROJECTS, "alerts": ALERTS,
}  # fmt: skip


def _value(value: Any) -> Any:
    if value is JSON_NULL:
        return Jsonb(None)
    return Jsonb(value) if isinstance(value, dict | list) else value


def seed(conn: psycopg.Connection[Any]) -> None:
    """Insert every row above (columns left out take Hive's defaults), then delete
    `DELETED_AGENT` the way Hive's DELETE /api/agents/{id} did."""
    with conn.transaction(), conn.cursor() as cur:
        for table, table_rows in TABLES.items():
            for row in table_rows:
                query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                )
                cur.execute(query, [_value(v) for v in row.values()])
        cur.execute("DELETE FROM agents WHERE id = %s", (DELETED_AGENT,))
