"""The agent's worker processes: each a short entry point that reads its typed settings, wires
them to its concern's bus service (`bzzz.log.service`, `bzzz.mesh.service`, ...) and serves it
under the supervisor (`bzzz.runtime`).

`SETTINGS` names each built-in worker's settings model, so the agent's config is checked, and
shown by `bzzz config show`, before any worker starts. A worker module of your own takes what
it needs from `[workers.NAME.settings]` (unchecked) or its `args`.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

# module -> "package.module:Class". Imported on demand: reading a config must not load libp2p.
SETTINGS: dict[str, str] = {
    "bzzz.workers.log": "bzzz.log.service:LogWorkerSettings",
    "bzzz.workers.mesh": "bzzz.mesh.settings:MeshSettings",
    "bzzz.workers.hmmm": "bzzz.hmmm.settings:HmmmWorkerSettings",
    "bzzz.workers.executor": "bzzz.executor.settings:ExecutorWorkerSettings",
    "bzzz.workers.github": "bzzz.github.settings:GithubWorkerSettings",
}


def settings_model(module: str) -> type[BaseModel] | None:
    """The settings model of built-in worker `module`, or None for any other module."""
    where = SETTINGS.get(module)
    if where is None:
        return None
    module_name, _, attribute = where.partition(":")
    model: Any = getattr(importlib.import_module(module_name), attribute)
    return model  # type: ignore[no-any-return]


__all__ = ["SETTINGS", "settings_model"]
