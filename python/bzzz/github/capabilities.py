"""What the github worker claims with: what the agent's mesh worker advertises (one source).

Peers schedule on what the mesh advertises (`bzzz.capabilities.advertised`); an agent that claimed on
GitHub with a list of its own could take work it told its peers it cannot do. So an agent that
runs a mesh worker claims with the models and tools that worker advertised in this run, and
with nothing until it has; its `models` / `tools` settings are not used (said once in the
log). An agent without a mesh worker claims with those settings. Languages are not detected:
they always come from the settings.

    capabilities = ClaimCapabilities(run_dir, own=settings.capabilities, mesh_runs="mesh" in workers)
    GithubAgent(..., capabilities=capabilities)    # called at each poll: Capabilities, or None
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from bzzz.capabilities import Capabilities, advertised
from bzzz.paths import PID_FILE

log = structlog.get_logger("bzzz.github.capabilities")


class ClaimCapabilities:
    """What to claim with, read afresh at each call: `Capabilities`, or None while not known yet."""

    def __init__(self, run_dir: Path, *, own: Capabilities, mesh_runs: bool) -> None:
        self.run_dir, self.own, self.mesh_runs = run_dir, own, mesh_runs
        try:  # the agent's start: a file an earlier run's mesh worker wrote says nothing of this one
            self.started = (run_dir / PID_FILE).stat().st_mtime
        except OSError:
            self.started = time.time()
        self._told = False

    def __call__(self) -> Capabilities | None:
        seen = advertised.read(self.run_dir, since=self.started)
        if seen is None:
            return None if self.mesh_runs else self.own
        if (self.own.models or self.own.tools) and not self._told:
            self._told = True
            log.warning(
                "the models and tools settings are not used: this agent claims with what its mesh worker advertises"
            )
        return Capabilities(models=seen[0], tools=seen[1], languages=self.own.languages)


__all__ = ["ClaimCapabilities"]
