"""A real PostgreSQL 15 for the tests: Debian's binaries, a throwaway cluster, Hive's schema.

- `binaries()`: the directory of Debian's postgresql-15 server programs, or None;
- `postgres()`: a fresh cluster in a temp dir on a free 127.0.0.1 port with an empty `hive`
  database, stopped and removed at the end; `Postgres.url` is `postgresql://hive@127.0.0.1:PORT/hive`;
- `load_schema(url)`: Hive's tables (tests/hive/hive_schema.sql) into that database;
- `python -m tests.hive.postgres`: one seeded with tests/hive/seed.py, its URL printed, until Ctrl-C.

`initdb` and `postgres` refuse to run as root, so under root both run as `nobody` in a temp dir
that user owns; otherwise as the current user. Authentication is `trust`: the server listens on
loopback and on a socket in its own 0700 dir, and lives only as long as the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.agents import free_port, wait_until

BIN = Path("/usr/lib/postgresql/15/bin")
NOT_INSTALLED = "no PostgreSQL 15 installed (make sysdeps)"
SCHEMA = Path(__file__).with_name("hive_schema.sql")
USER = "hive"  # the cluster's superuser, as Hive's compose file names its role
DATABASE = "hive"
UNPRIVILEGED = "nobody"
STARTUP = 120.0  # seconds; about 3 s idle, far more on a loaded 2-core machine
SHUTDOWN = 60.0


def binaries() -> Path | None:
    wanted = ("initdb", "postgres")
    return BIN if all(os.access(BIN / name, os.X_OK) for name in wanted) else None


@dataclass(frozen=True)
class Postgres:
    url: str
    port: int
    data: Path

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, **kwargs)


def _owner() -> tuple[dict[str, Any], int | None, int | None]:
    """Popen keyword arguments that drop root to `nobody`, and that user's ids (None when not root)."""
    if os.geteuid() != 0:
        return {}, None, None
    import pwd

    entry = pwd.getpwnam(UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}, entry.pw_uid, entry.pw_gid


def _accepting(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def _ready(server: subprocess.Popen[bytes], url: str, root: Path) -> bool:
    if server.poll() is not None:  # fail now, with the server's reason, not at the deadline
        log = (root / "server.log").read_text(errors="replace").strip().splitlines()
        reasons = [line.split("  ", 1)[-1] for line in log if "FATAL:" in line or "ERROR:" in line]
        raise RuntimeError(f"postgres exited with {server.returncode}: {'; '.join(reasons or log[-1:])}")
    return _accepting(url)


@contextmanager
def postgres() -> Iterator[Postgres]:
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError(NOT_INSTALLED)
    drop, uid, gid = _owner()
    # Not under pytest's tmp_path: its parents are root's 0700 dirs, which `nobody` cannot enter.
    root = Path(tempfile.mkdtemp(prefix="bzzz-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir(mode=0o700)
    if uid is not None and gid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid)
    # The server must not inherit a cwd or HOME it cannot read, nor the caller's PG* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"HOME": str(root), "LC_ALL": "C"}
    server: subprocess.Popen[bytes] | None = None
    try:
        initdb = subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
            cwd=root, env=env, capture_output=True, **drop,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.decode(errors='replace').strip()}")
        port = free_port()
        # Durability off: the cluster is thrown away, and fsyncs are slow on a shared machine.
        with open(root / "server.log", "wb") as log:
            server = subprocess.Popen(
                [bin_dir / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", sockets,
                 "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, **drop,
            )  # fmt: skip
        started = server
        admin = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
        wait_until(lambda: _ready(started, admin, root), STARTUP, f"PostgreSQL on port {port}")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield Postgres(url=f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}", port=port, data=data)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, then exits cleanly
            try:
                server.wait(SHUTDOWN)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)


def load_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())


def main() -> None:
    """`python -m tests.hive.postgres`: a seeded Hive database to develop against, until Ctrl-C."""
    from tests.hive.seed import seed

    if binaries() is None:
        raise SystemExit(NOT_INSTALLED)
    with postgres() as server:
        load_schema(server.url)
        with server.connect() as conn:
            seed(conn)
        print(server.url, flush=True)
        # SIGTERM too (and SIGINT, which a shell ignores in background jobs) must stop the server.
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()


if __name__ == "__main__":
    main()
