"""The `worker` property most commands take."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands.errors import BAD_REQUEST, UNKNOWN_WORKER, CommandError

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor
    from bzzz.supervisor.worker import Worker


def named_worker(supervisor: Supervisor, properties: dict[str, Any]) -> Worker:
    name = properties.get("worker")
    if not isinstance(name, str) or not name:
        raise CommandError(BAD_REQUEST, "this command needs the property 'worker' (a worker name)")
    worker = supervisor.workers.get(name)
    if worker is None:
        known = ", ".join(sorted(supervisor.workers)) or "none"
        raise CommandError(UNKNOWN_WORKER, f"no worker named {name!r} (workers: {known})")
    return worker
