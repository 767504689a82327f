"""`bzzz ctl logs W [-n N] [-f]`: the worker's output (stdout and stderr), last N lines.

properties: `worker`, `lines` (default 50, at most 10,000). reply: `{"path": str, "lines": [str]}`.
`-f` is done by the client, which follows the file at `path` from there on.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands._worker import named_worker
from bzzz.supervisor.commands.errors import BAD_REQUEST, CommandError

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    worker = named_worker(supervisor, properties)
    count = properties.get("lines", 50)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10_000:
        raise CommandError(BAD_REQUEST, "'lines' must be an integer from 0 to 10000")
    lines: deque[str] = deque(maxlen=count)
    if worker.log_path.exists():
        with open(worker.log_path, errors="replace") as log:
            lines.extend(line.rstrip("\n") for line in log)
    return {"path": str(worker.log_path), "lines": list(lines)}
