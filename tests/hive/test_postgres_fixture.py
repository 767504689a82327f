"""The real PostgreSQL the Hive-migration tests read: started fresh, holding Hive's schema and
the seeded rows (messy ones as intended), independent per test, gone afterwards."""

import os
import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.hive import seed as rows
from tests.hive.postgres import NOT_INSTALLED, Postgres, binaries, load_schema, postgres

HIVE_TABLES = {
    "agents": len(rows.AGENTS) - 1,  # DELETED_AGENT is removed after seeding
    "agent_metrics": len(rows.LIVE_AGENTS) * rows.METRICS_PER_AGENT,
    "tasks": len(rows.TASKS),
    "workflows": len(rows.WORKFLOWS),
    "executions": len(rows.EXECUTIONS),
    "projects": len(rows.PROJECTS),
    "alerts": len(rows.ALERTS),
}


def _one(server: Postgres, sql: str, *params: Any) -> Any:
    with server.connect() as conn:
        row = conn.execute(sql, params).fetchone()
        assert row is not None, sql
        return row[0] if len(row) == 1 else row


def test_the_server_is_a_real_postgresql_15_on_loopback_with_an_empty_hive_database(hive_postgres: Postgres) -> None:
    assert hive_postgres.url == f"postgresql://hive@127.0.0.1:{hive_postgres.port}/hive"
    assert _one(hive_postgres, "SHOW server_version_num").startswith("15")
    assert _one(hive_postgres, "SELECT current_database()") == "hive"
    assert _one(hive_postgres, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_the_server_never_runs_as_root(hive_postgres: Postgres) -> None:
    pid = int((hive_postgres.data / "postmaster.pid").read_text().split()[0])
    server_uid = os.stat(f"/proc/{pid}").st_uid
    assert server_uid != 0
    assert server_uid == os.stat(hive_postgres.data).st_uid
    if os.geteuid() != 0:
        assert server_uid == os.geteuid()


def test_the_schema_creates_every_hive_table_with_hives_columns(hive_postgres: Postgres) -> None:
    load_schema(hive_postgres.url)
    with hive_postgres.connect() as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        columns = {
            (r[0], r[1]): r[2]
            for r in conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns")
        }
    assert set(HIVE_TABLES) <= tables
    assert columns[("agents", "capabilities")] == "jsonb"
    assert columns[("tasks", "metadata")] == "jsonb"
    assert columns[("tasks", "id")] == "uuid"
    assert columns[("workflows", "n8n_data")] == "jsonb"
    assert columns[("projects", "id")] == "integer"
    for github_column in ("github_repo", "git_url", "git_owner", "git_repository", "git_branch",
                          "bzzz_enabled", "ready_to_claim", "private_repo", "github_token_required"):  # fmt: skip
        assert ("projects", github_column) in columns


def test_every_table_holds_the_seeded_rows(hive_db: Postgres) -> None:
    for table, count in HIVE_TABLES.items():
        assert _one(hive_db, f"SELECT count(*) FROM {table}") == count, table
    assert all(count > 0 for count in HIVE_TABLES.values())


def test_agents_read_back_as_hive_wrote_them(hive_db: Postgres) -> None:
    model, capabilities, hardware, targets = _one(
        hive_db, "SELECT model, capabilities, hardware_config, performance_targets FROM agents WHERE id = %s",
        "acacia-deepseek",
    )  # fmt: skip
    assert model == "deepseek-r1:7b"
    assert "infrastructure_design" in capabilities
    assert hardware["gpu_type"] == "NVIDIA GTX 1070"
    assert targets["min_tokens_per_second"] == 3.0
    with hive_db.connect() as conn:
        hosts = {r[0].split()[0] for r in conn.execute("SELECT name FROM agents")}
    assert {"ACACIA", "WALNUT", "IRONWOOD", "ROSEWOOD", "FORSTEINET"} <= hosts


def test_null_jsonb_reads_back_as_none_both_sql_null_and_json_null(hive_db: Postgres) -> None:
    sql_null = _one(hive_db, "SELECT capabilities IS NULL, capabilities, hardware_config, performance_targets"
                    " FROM agents WHERE id = %s", rows.NULL_JSONB_AGENT)  # fmt: skip
    assert sql_null == (True, None, None, None)
    json_null = _one(hive_db, "SELECT capabilities IS NULL, jsonb_typeof(capabilities), capabilities"
                     " FROM agents WHERE id = %s", rows.JSON_NULL_AGENT)  # fmt: skip
    assert json_null == (False, "null", None)
    assert isinstance(
        _one(hive_db, "SELECT capabilities FROM agents WHERE id = %s", rows.OBJECT_CAPABILITIES_AGENT), dict
    )


def test_an_unknown_specialty_and_a_duplicate_name_are_present(hive_db: Postgres) -> None:
    specialty = _one(hive_db, "SELECT specialty FROM agents WHERE id = %s", rows.UNKNOWN_SPECIALTY_AGENT)
    assert specialty == rows.UNKNOWN_SPECIALTY and specialty not in rows.SPECIALTIES
    assert _one(hive_db, "SELECT count(*) FROM agents WHERE name = %s", rows.DUPLICATE_NAME) == 2
    assert _one(hive_db, "SELECT count(DISTINCT id) FROM agents WHERE name = %s", rows.DUPLICATE_NAME) == 2


def test_tasks_cover_every_status_and_an_unknown_one_assigned_or_not_every_metadata_shape(
    hive_db: Postgres,
) -> None:
    with hive_db.connect() as conn:
        tasks = conn.execute("SELECT status, assigned_agent_id, metadata FROM tasks").fetchall()
    assert {t[0] for t in tasks} == {*rows.TASK_STATUSES, rows.UNKNOWN_STATUS}
    assert any(t[1] is None for t in tasks) and any(t[1] is not None for t in tasks)
    metadata = [t[2] for t in tasks]
    assert None in metadata and {} in metadata
    assert any(m and {"context", "payload", "type"} <= m.keys() for m in metadata)
    # The task of the deleted agent survived it, unassigned.
    assert _one(hive_db, "SELECT assigned_agent_id IS NULL FROM tasks WHERE id = %s", rows.GHOST_TASK) is True
    assert _one(hive_db, "SELECT count(*) FROM agents WHERE id = %s", rows.DELETED_AGENT) == 0


def test_workflows_carry_n8n_exports_and_executions_point_at_them(hive_db: Postgres) -> None:
    data = _one(hive_db, "SELECT n8n_data FROM workflows WHERE id = %s", rows.WORKFLOW_ISSUE)
    assert data["nodes"][0]["type"] == "n8n-nodes-base.webhook"
    assert set(data["connections"]) == {n["name"] for n in data["nodes"][:-1]}
    assert _one(hive_db, "SELECT count(*) FROM workflows WHERE NOT active") == 1
    statuses = _one(hive_db, "SELECT array_agg(DISTINCT status) FROM executions")
    assert {"completed", "failed", "running", "pending"} <= set(statuses)
    assert _one(hive_db, "SELECT count(*) FROM executions WHERE workflow_id IS NULL") == 1
    assert _one(hive_db, "SELECT error_message FROM executions WHERE status = 'failed'").startswith("agent walnut")


def test_projects_have_github_and_bzzz_columns_in_every_combination(hive_db: Postgres) -> None:
    with hive_db.connect() as conn:
        projects = conn.execute(
            "SELECT name, github_repo, git_url, git_owner, git_repository, git_branch, bzzz_enabled, ready_to_claim,"
            " private_repo FROM projects"
        ).fetchall()
    by_name = {p[0]: p for p in projects}
    assert by_name["hive"][1:8] == ("deepblackcloud/hive", "https://github.com/deepblackcloud/hive.git",
                                    "deepblackcloud", "hive", "main", True, True)  # fmt: skip
    assert by_name["bzzz"][5:8] == ("develop", True, False)
    assert by_name["secret-infra"][8] is True
    assert by_name["Default Project"][1:5] == (None, None, None, None)
    assert {p[6] for p in projects} == {True, False}
    assert sorted(p[0] for p in projects if p[6]) == sorted(rows.BZZZ_PROJECTS)


def test_alerts_are_resolved_and_not_with_and_without_an_agent(hive_db: Postgres) -> None:
    with hive_db.connect() as conn:
        alerts = conn.execute("SELECT agent_id, resolved, resolved_at FROM alerts").fetchall()
    assert {a[1] for a in alerts} == {True, False}
    assert any(a[0] is None for a in alerts)
    assert all((a[2] is not None) == a[1] for a in alerts)


def test_the_schema_rejects_what_hive_rejects(hive_db: Postgres) -> None:
    """Positive control of the constraints the seed relies on: the DDL is not a loose copy."""
    with hive_db.connect() as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO agents (id, name, endpoint) VALUES ('acacia-deepseek', 'x', 'http://x')")
    with hive_db.connect() as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO tasks (title, assigned_agent_id) VALUES ('t', 'no-such-agent')")
    with hive_db.connect() as conn, pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("INSERT INTO workflows (name) VALUES ('no n8n data')")


def test_two_servers_are_independent(hive_db: Postgres) -> None:
    with postgres() as other:
        assert other.port != hive_db.port and other.data != hive_db.data
        load_schema(other.url)
        assert _one(other, "SELECT count(*) FROM agents") == 0
        with other.connect() as conn:
            conn.execute("INSERT INTO agents (id, name, endpoint) VALUES ('only-here', 'x', 'http://x')")
        assert _one(other, "SELECT count(*) FROM agents") == 1
    assert _one(hive_db, "SELECT count(*) FROM agents WHERE id = 'only-here'") == 0
    assert _one(hive_db, "SELECT count(*) FROM agents") == HIVE_TABLES["agents"]


def test_the_server_is_stopped_and_its_files_removed_afterwards() -> None:
    if binaries() is None:
        pytest.skip(NOT_INSTALLED)
    with postgres() as server:
        root: Path = server.data.parent
        url = server.url
        assert root.exists()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)


def test_without_debians_binaries_the_server_refuses_in_one_line_naming_make_sysdeps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("tests.hive.postgres.BIN", tmp_path / "no-postgresql")
    assert binaries() is None
    with pytest.raises(FileNotFoundError, match=r"^no PostgreSQL 15 installed \(make sysdeps\)$"), postgres():
        pass


def test_a_server_that_cannot_start_fails_at_once_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    if binaries() is None:
        pytest.skip(NOT_INSTALLED)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr("tests.hive.postgres.free_port", lambda: taken.getsockname()[1])
        with pytest.raises(RuntimeError, match=r"^postgres exited with 1: .*(could not|address already in use)"):
            with postgres():
                pass
