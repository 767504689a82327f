"""What this agent advertises to the mesh, for its other workers: one source of capabilities.

The mesh worker detects what the agent can do (`bzzz.capabilities.detect`) and broadcasts it;
peers schedule on that. If the github worker claimed with another list (its own flags), the
agent could advertise one thing and take work for another. So the mesh worker writes what it
broadcast to `<run dir>/capabilities.json` (atomically: a reader never sees half a file), and
the github worker claims with what it reads there (as `Capabilities`, with its languages). An
agent without a mesh worker advertises nothing; its github worker then claims with its flags.

    write(run_dir, payload)            # the mesh worker, whenever its broadcast changes
    read(run_dir, since=started)       # the github worker: (models, tools), or None
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["path", "read", "write"]


def path(run_dir: Path) -> Path:
    return run_dir / "capabilities.json"


def write(run_dir: Path, payload: dict[str, Any]) -> None:
    """Replace the advertised capabilities with `payload`'s models and tools."""
    body = json.dumps({"models": sorted(payload.get("models") or []), "tools": sorted(payload.get("tools") or [])})
    fd, temp = tempfile.mkstemp(dir=run_dir, prefix=".capabilities-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(body)
        os.replace(temp, path(run_dir))
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read(run_dir: Path, since: float = 0.0) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(models, tools) as last advertised, or None if this agent advertises nothing: nothing
    written since `since` (epoch; the agent's start) counts, a file a past run left behind."""
    try:
        if path(run_dir).stat().st_mtime < since:
            return None
        data = json.loads(path(run_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # being replaced, or damaged: the next read will tell
    if not isinstance(data, dict):
        return None
    models = tuple(str(m) for m in data.get("models") or [] if isinstance(m, str))
    tools = tuple(str(t) for t in data.get("tools") or [] if isinstance(t, str))
    return models, tools
