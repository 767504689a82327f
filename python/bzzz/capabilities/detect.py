"""Capability detection: what this machine offers now, as a `Detected`.

Pure detection: it looks at the machine and answers; it does not broadcast, schedule or
remember peers (the mesh's broadcaster and peer table do that).

```python
config = CapabilityConfig(ollama_endpoints=["http://127.0.0.1:11434"], max_tasks=2)
detector = CapabilityDetector(config)          # or detect(config) for a one-off
detected = detector.detect()                   # never raises for a dead Ollama or GPU tool
if detected.fingerprint() != last_fingerprint:  # models, tools, GPUs, reachability, max_tasks
    publish(detected.payload(node_id=..., peer_id=..., log_key_hex=..., active_tasks=n))
```

What is detected, and from where:

* **models**: every model of every configured Ollama endpoint (`bzzz.capabilities.endpoints`),
  merged, sorted and made unique; `endpoints` keeps which endpoint has which. Endpoints are
  probed concurrently, and `detect` waits at most `probe_timeout_s` for all of them together:
  an endpoint that refuses, hangs, or answers anything but a model list is `reachable=False`
  (with the reason in `error`) and the others still count.
* **tools**: each configured CLI name looked up on PATH (`shutil.which`, injectable).
* **cpu_count, memory_*:** `psutil` (logical CPUs; `MemTotal`/`MemAvailable` on Linux).
* **gpus**: `bzzz.capabilities.gpus`, each command bounded by `gpu_timeout_s` (not
  `probe_timeout_s`: `nvidia-smi` can take seconds when the driver is not kept loaded).
* **load_permille**: the 1-minute load average per logical CPU, times 1000, clamped to
  the envelope's 0..=100000.
* **version**: the installed `bzzz` distribution's version, else `0+unknown`.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import wait

from bzzz.capabilities.config import CapabilityConfig
from bzzz.capabilities.endpoints import Endpoint, Probes
from bzzz.capabilities.gpus import detect_gpus
from bzzz.capabilities.machine import Which, bzzz_version, describe, find_tools, load_permille, memory_and_cpus
from bzzz.capabilities.types import Detected

__all__ = ["CapabilityDetector", "detect"]


def detect(config: CapabilityConfig, *, which: Which = shutil.which) -> Detected:
    """What this machine offers now, under `config`. Never raises for a broken Ollama or GPU tool.

    Remembers endpoint states (for logging changes once) across calls in this process; a
    `CapabilityDetector` keeps its own.
    """
    return _detect(config, which, _SHARED_PROBES)


class CapabilityDetector:
    """`detect` with its own memory of endpoint states: what a long-running broadcaster holds."""

    def __init__(self, config: CapabilityConfig, *, which: Which = shutil.which) -> None:
        self.config = config
        self._which = which
        self._probes = Probes()

    def detect(self) -> Detected:
        return _detect(self.config, self._which, self._probes)


_SHARED_PROBES = Probes()


def _detect(config: CapabilityConfig, which: Which, probes: Probes) -> Detected:
    timeout_s = config.probe_timeout_s
    deadline = time.monotonic() + timeout_s
    futures = {url: probes.start(url, timeout_s) for url in config.ollama_endpoints}

    # The rest runs while the probes are out.
    tools = find_tools(config.tools, which)
    gpus = detect_gpus(which=which, timeout_s=config.gpu_timeout_s)
    cpu_count, memory_total, memory_available = memory_and_cpus()
    load = load_permille(cpu_count)

    if futures:
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    endpoints: list[Endpoint] = []
    for url, future in futures.items():
        if not future.done():
            endpoint = Endpoint(url=url, reachable=False, error=f"no answer within {timeout_s:g} s")
        elif (exc := future.exception()) is not None:
            endpoint = Endpoint(url=url, reachable=False, error=describe(exc))
        else:
            endpoint = Endpoint(url=url, reachable=True, models=tuple(sorted(set(future.result()))))
        probes.note(endpoint)
        endpoints.append(endpoint)

    return Detected(
        models=tuple(sorted({m for e in endpoints for m in e.models})),
        endpoints=tuple(endpoints),
        tools=tuple(name for name, _ in tools),
        tool_paths=tools,
        cpu_count=cpu_count,
        memory_total_bytes=memory_total,
        memory_available_bytes=memory_available,
        gpus=gpus,
        load_permille=load,
        max_tasks=config.max_tasks,
        version=bzzz_version(),
    )
