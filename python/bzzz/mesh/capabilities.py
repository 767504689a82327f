"""What this agent can do, as it tells the mesh on `bzzz/capabilities`.

Pure detection: this module looks at the machine and answers with a `Capabilities` value; it
does not broadcast, schedule or remember peers (the broadcaster and the peer table do that).

```python
config = CapabilityConfig(ollama_endpoints=["http://127.0.0.1:11434"], max_tasks=2)
detector = CapabilityDetector(config)          # or detect(config) for a one-off
caps = detector.detect()                       # never raises for a dead Ollama or GPU tool
if caps.fingerprint() != last_fingerprint:     # models, tools, GPUs, reachability, max_tasks
    publish(caps.payload(node_id=..., peer_id=..., log_key_hex=..., active_tasks=n))
```

What is detected, and from where:

* **models**: every model of every configured Ollama endpoint, listed with the `ollama`
  client (`GET /api/tags`), merged, sorted and made unique; `endpoints` keeps which endpoint
  has which. Endpoints are probed concurrently, each in its own thread, and `detect` waits at
  most `probe_timeout_s` for all of them together: an endpoint that refuses, hangs, or
  answers anything but a model list is `reachable=False` (with the reason in `error`) and
  the others still count. An endpoint's change of state (reachable <-> not) is logged once,
  at info, not on every call. A probe still running from an earlier call is waited for
  again rather than started twice, so a hung endpoint costs one thread, not one per call.
* **tools**: each configured CLI name looked up on PATH (`shutil.which`, injectable).
* **cpu_count, memory_*:** `psutil` (logical CPUs; `MemTotal`/`MemAvailable` on Linux).
* **gpus**: NVIDIA from `nvidia-smi` (name and memory), else from
  `/proc/driver/nvidia/gpus/*/information` (name only, when `nvidia-smi` is missing or
  fails); plus AMD from `rocm-smi --json` when it is installed. Each command is bounded by
  `gpu_timeout_s` (`nvidia-smi` can take seconds when the driver is not kept loaded, which
  is why this is not `probe_timeout_s`). Never raises: no GPU found is an empty tuple.
* **load_permille**: the 1-minute load average per logical CPU, times 1000, clamped to
  the envelope's 0..=100000.
* **version**: the installed `bzzz` distribution's version, else `0+unknown`.

### Changed or not: `fingerprint()`

The broadcaster sends on every period and *also* as soon as something changes. What counts
as a change is what a peer would schedule differently on: models, per-endpoint models and
reachability, tool names, GPUs, `max_tasks`, CPU count, total memory and version. Load and
available memory move all the time and ride along on the periodic broadcast instead; they
are not in the fingerprint. `==` on two `Capabilities` compares every field, load included.
Active tasks are not detected here at all (the executor knows them; `payload` takes them).

### The payload

`Capabilities.payload` is the `capabilities` envelope payload (schema in the module doc of
rust/core/src/envelope/mod.rs): the required fields, plus `endpoints`, `cpu_count`,
`memory_total_bytes`, `memory_available_bytes` and `gpus`. Integers only. A model or tool
name the schema would refuse (empty, over 256 UTF-8 bytes, not valid Unicode) is left out
with a warning rather than cut short: a truncated model name names a model nobody has.
Lists keep their first 256 names (sorted), and the whole payload is kept under
`PAYLOAD_MAX_BYTES` so that the signed envelope fits a receiver's default 64 KiB limit:
first the per-endpoint model lists go (the merged list still has every model), then names
from the end of `models` and `tools`, from whichever is larger at the time. Whatever is left
out is counted in `models_omitted` / `tools_omitted` (present only when not zero), and
warned about once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import httpx
import msgspec
import ollama
import psutil  # type: ignore[import-untyped]  # psutil ships no type information
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_OLLAMA_ENDPOINT",
    "DEFAULT_TOOLS",
    "LIST_MAX",
    "LOAD_PERMILLE_MAX",
    "NAME_MAX_BYTES",
    "PAYLOAD_MAX_BYTES",
    "Capabilities",
    "CapabilityConfig",
    "CapabilityDetector",
    "Endpoint",
    "Gpu",
    "Which",
    "bzzz_version",
    "detect",
    "detect_gpus",
]

log = structlog.get_logger("bzzz.mesh")

Which: TypeAlias = Callable[[str], str | None]
"""Where a command is, or None: `shutil.which`, or one bound to another PATH."""

DEFAULT_OLLAMA_ENDPOINT = "http://127.0.0.1:11434"
DEFAULT_TOOLS = (
    "git", "gh", "python3", "pytest", "make", "cargo", "go", "node", "npm",
    "docker", "podman", "ollama", "claude", "aider",
)  # fmt: skip

NAME_MAX_BYTES = 256
"""A model or tool name, and an id string (node_id, version), in UTF-8 bytes: the envelope schema's limit."""

LIST_MAX = 256
"""Most items in a payload list: the envelope schema's limit."""

LOAD_PERMILLE_MAX = 100_000
"""The schema's ceiling on `load_permille` (a load of 100 per CPU)."""

PAYLOAD_MAX_BYTES = 60 * 1024
"""Largest canonical payload `payload()` builds by default: 64 KiB (what a receiver accepts by
default, `bzzz._core.Limits().max_size`) less 4 KiB for the envelope's own fields."""

_U32_MAX = 2**32 - 1
_I64_MAX = 2**63 - 1
_MIB = 1024 * 1024
_ERROR_MAX_CHARS = 200
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]+")
_NVIDIA_PROC_DIR = Path("/proc/driver/nvidia/gpus")
_UNKNOWN_VERSION = "0+unknown"


# --------------------------------------------------------------------------- config


class CapabilityConfig(BaseModel):
    """Where to look. Unknown keys are refused, so a typo does not silently drop a setting."""

    model_config = ConfigDict(extra="forbid")

    ollama_endpoints: list[str] = Field(
        default_factory=lambda: [DEFAULT_OLLAMA_ENDPOINT],
        description="Ollama servers whose models this agent offers: http(s)://host[:port][/path]. "
        "No port means the scheme's (80/443), not Ollama's 11434.",
    )
    tools: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TOOLS), description="CLI tools to look up on PATH, by name."
    )
    probe_timeout_s: float = Field(
        default=2.0, gt=0, allow_inf_nan=False, description="Longest wait for all Ollama endpoints together."
    )
    gpu_timeout_s: float = Field(
        default=10.0, gt=0, allow_inf_nan=False, description="Longest run of each GPU query command."
    )
    max_tasks: int = Field(default=1, ge=0, le=_U32_MAX, description="Tasks this agent runs at once.")

    @field_validator("ollama_endpoints")
    @classmethod
    def _endpoints_are_http_urls(cls, endpoints: list[str]) -> list[str]:
        out: list[str] = []
        for endpoint in endpoints:
            url = _normalize_endpoint(endpoint)
            if url not in out:
                out.append(url)
        return out

    @field_validator("tools")
    @classmethod
    def _tools_are_plain_names(cls, tools: list[str]) -> list[str]:
        out: list[str] = []
        for tool in tools:
            name = tool.strip()
            if not _is_name(name) or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
                raise ValueError(f"tool {tool!r} must be a command name (no path), 1..={NAME_MAX_BYTES} bytes")
            if name not in out:
                out.append(name)
        return out


def _normalize_endpoint(endpoint: str) -> str:
    """`endpoint` without a trailing slash, or ValueError saying why it is no Ollama URL.

    Credentials in the URL are refused: the ollama client would drop them, and endpoint URLs
    are advertised to every peer.
    """
    text = endpoint.strip()
    if not _is_utf8(text):
        raise ValueError(f"endpoint {endpoint!r} is not valid Unicode")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {endpoint!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint {endpoint!r}: no credentials in the URL (use OLLAMA_API_KEY)")
    if parts.query or parts.fragment:
        raise ValueError(f"endpoint {endpoint!r}: no query or fragment")
    try:
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"endpoint {endpoint!r}: {exc}") from None
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


# --------------------------------------------------------------------------- values


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One Ollama endpoint as last probed. `reachable` means it answered with a model list."""

    url: str
    reachable: bool
    models: tuple[str, ...] = ()
    error: str | None = None  # why not reachable; for this agent's own status, never advertised


class Gpu(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU. `memory_bytes` is None where the source does not say (the /proc fallback)."""

    name: str
    memory_bytes: int | None = None


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What this agent has, at one moment. Sequences are tuples, so the value is hashable."""

    models: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    tools: tuple[str, ...]
    tool_paths: tuple[tuple[str, str], ...]  # (name, resolved path), sorted by name; never advertised
    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    gpus: tuple[Gpu, ...]
    load_permille: int
    max_tasks: int
    version: str

    def tool_path(self, name: str) -> str | None:
        """Where the tool `name` was found, or None."""
        return dict(self.tool_paths).get(name)

    def fingerprint(self) -> str:
        """32 hex digits that change when a peer would schedule differently (see the module doc).

        Load and available memory are left out: they change on every call.
        """
        stable = {
            "models": self.models,
            "endpoints": [[e.url, e.reachable, e.models] for e in self.endpoints],
            "tools": self.tools,
            "gpus": [[g.name, g.memory_bytes] for g in self.gpus],
            "max_tasks": self.max_tasks,
            "cpu_count": self.cpu_count,
            "memory_total_bytes": self.memory_total_bytes,
            "version": self.version,
        }
        encoded = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()

    def payload(
        self,
        *,
        node_id: str,
        peer_id: str,
        log_key_hex: str,
        active_tasks: int,
        max_tasks: int | None = None,
        max_bytes: int = PAYLOAD_MAX_BYTES,
    ) -> dict[str, Any]:
        """The `capabilities` envelope payload, valid under the core's schema (module doc).

        `max_tasks` defaults to the configured one this value was detected with. Raises
        ValueError for arguments the schema would refuse (an empty or over-long id, a
        log key that is not 64 lowercase hex digits, counts outside u32) and for a
        `max_bytes` too small for the required fields; detected data never makes it raise.
        """
        _require_id("node_id", node_id)
        _require_id("peer_id", peer_id)
        if not isinstance(log_key_hex, str) or not _HEX64.fullmatch(log_key_hex):
            raise ValueError("log_key_hex must be 64 lowercase hex digits")
        max_tasks = self.max_tasks if max_tasks is None else max_tasks
        _require_u32("active_tasks", active_tasks)
        _require_u32("max_tasks", max_tasks)

        models = _advertised_names("model", self.models)
        tools = _advertised_names("tool", self.tools)
        body: dict[str, Any] = {
            "node_id": node_id,
            "peer_id": peer_id,
            "models": models[:LIST_MAX],
            "tools": tools[:LIST_MAX],
            "load_permille": _clamp(self.load_permille, 0, LOAD_PERMILLE_MAX),
            "active_tasks": active_tasks,
            "max_tasks": max_tasks,
            "log_key": log_key_hex,
            "version": self.version if _is_name(self.version) else _UNKNOWN_VERSION,
            "endpoints": [
                {"url": e.url, "reachable": bool(e.reachable), "models": _advertised_names("model", e.models)[:LIST_MAX]}
                for e in self.endpoints[:LIST_MAX]
                if _is_utf8(e.url)
            ],
            "cpu_count": _clamp(self.cpu_count, 0, _I64_MAX),
            "memory_total_bytes": _clamp(self.memory_total_bytes, 0, _I64_MAX),
            "memory_available_bytes": _clamp(self.memory_available_bytes, 0, _I64_MAX),
            "gpus": [_gpu_payload(g) for g in self.gpus[:LIST_MAX] if _is_utf8(g.name)],
        }
        omitted = {"models": len(models) - len(body["models"]), "tools": len(tools) - len(body["tools"])}
        _fit(body, omitted, max_bytes)
        for kind, count in omitted.items():
            if count:
                body[f"{kind}_omitted"] = count
        if any(omitted.values()):
            _warn_once(
                ("omitted", omitted["models"], omitted["tools"]),
                "capabilities payload leaves names out",
                models_omitted=omitted["models"],
                tools_omitted=omitted["tools"],
            )
        return body


def _gpu_payload(gpu: Gpu) -> dict[str, Any]:
    out: dict[str, Any] = {"name": _clip_utf8(gpu.name, NAME_MAX_BYTES)}
    if isinstance(gpu.memory_bytes, int) and not isinstance(gpu.memory_bytes, bool):
        out["memory_bytes"] = _clamp(gpu.memory_bytes, 0, _I64_MAX)
    return out


def _canonical_size(value: Any) -> int:
    """Bytes of `value` in the envelope's canonical encoding (see the core's module doc)."""
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def _fit(body: dict[str, Any], omitted: dict[str, int], max_bytes: int) -> None:
    """Shrink `body` in place until it and its omitted counts fit `max_bytes`.

    First the per-endpoint model lists (the merged `models` still names every model), then
    names from the end of `models` and `tools` (from the larger of the two first), then GPUs,
    then endpoints.
    """

    def size() -> int:
        counts = {f"{kind}_omitted": n for kind, n in omitted.items() if n}
        return _canonical_size({**body, **counts})

    while (over := size() - max_bytes) > 0:
        listed = [e for e in body["endpoints"] if e.get("models")]
        if listed:
            for entry in listed:
                entry["models_omitted"] = len(entry["models"])
                entry["models"] = []
            continue
        if body["models"] or body["tools"]:
            # From whichever of the two lists is larger at the moment, so that neither is
            # emptied to keep the other whole.
            sizes = {key: _canonical_size(body[key]) for key in ("models", "tools")}
            freed = 0
            while freed < over and (body["models"] or body["tools"]):
                key = max(("models", "tools"), key=lambda k: sizes[k] if body[k] else -1)
                cost = _canonical_size(body[key].pop()) + 1
                sizes[key] -= cost
                freed += cost
                omitted[key] += 1
            continue
        for key in ("gpus", "endpoints"):
            if body[key]:
                body[key].pop()
                break
        else:
            raise ValueError(f"max_bytes={max_bytes} is too small for the required payload fields")


# --------------------------------------------------------------------------- detection


def detect(config: CapabilityConfig, *, which: Which = shutil.which) -> Capabilities:
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
        self._probes = _Probes()

    def detect(self) -> Capabilities:
        return _detect(self.config, self._which, self._probes)


class _Probes:
    """Ollama probes in flight, and the last state seen of each endpoint (to log changes once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[tuple[str, ...]]] = {}
        self._reachable: dict[str, bool] = {}

    def start(self, url: str, timeout_s: float) -> Future[tuple[str, ...]]:
        """The running probe of `url`, or a new one: a hung endpoint holds one thread, not one per call."""
        with self._lock:
            future = self._inflight.get(url)
            if future is None or future.done():
                future = Future()
                self._inflight[url] = future
                # A daemon thread, not a pool: a probe stuck past its deadline must not hold up
                # the interpreter's exit (httpx's own timeout ends it soon after anyway).
                thread = threading.Thread(
                    target=_probe_into, args=(future, url, timeout_s), name="bzzz-ollama-probe", daemon=True
                )
                thread.start()
            return future

    def note(self, endpoint: Endpoint) -> None:
        with self._lock:
            before = self._reachable.get(endpoint.url)
            self._reachable[endpoint.url] = endpoint.reachable
        if before == endpoint.reachable:
            return
        if endpoint.reachable:
            log.info("ollama endpoint reachable", url=endpoint.url, models=len(endpoint.models))
        else:
            log.info("ollama endpoint unreachable", url=endpoint.url, error=endpoint.error)


_SHARED_PROBES = _Probes()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """What httpx would build for each client (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once.

    Building it reads the whole CA bundle, about 50 ms of CPU under the GIL: per probe and
    per endpoint, that alone could eat a short probe timeout on a busy machine.
    """
    return httpx.create_ssl_context(verify=True, trust_env=True)


def _probe_into(future: Future[tuple[str, ...]], url: str, timeout_s: float) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        client = ollama.Client(host=url, timeout=timeout_s, verify=_tls_context())
        try:
            listing = client.list()
        finally:
            client.close()  # type: ignore[no-untyped-call]  # ollama leaves close() unannotated
        names = tuple(m.model for m in listing.models if isinstance(m.model, str) and m.model)
    except Exception as exc:  # anything an endpoint can do wrong: refuse, reset, time out, answer nonsense
        future.set_exception(exc)
    else:
        future.set_result(names)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_MAX_CHARS else text[: _ERROR_MAX_CHARS - 3] + "..."


def _detect(config: CapabilityConfig, which: Which, probes: _Probes) -> Capabilities:
    timeout_s = config.probe_timeout_s
    deadline = time.monotonic() + timeout_s
    futures = {url: probes.start(url, timeout_s) for url in config.ollama_endpoints}

    # The rest runs while the probes are out.
    tools = _find_tools(config.tools, which)
    gpus = detect_gpus(which=which, timeout_s=config.gpu_timeout_s)
    cpu_count, memory_total, memory_available = _machine()
    load_permille = _load_permille(cpu_count)

    if futures:
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    endpoints: list[Endpoint] = []
    for url, future in futures.items():
        if not future.done():
            endpoint = Endpoint(url=url, reachable=False, error=f"no answer within {timeout_s:g} s")
        elif (exc := future.exception()) is not None:
            endpoint = Endpoint(url=url, reachable=False, error=_describe(exc))
        else:
            endpoint = Endpoint(url=url, reachable=True, models=tuple(sorted(set(future.result()))))
        probes.note(endpoint)
        endpoints.append(endpoint)

    return Capabilities(
        models=tuple(sorted({m for e in endpoints for m in e.models})),
        endpoints=tuple(endpoints),
        tools=tuple(name for name, _ in tools),
        tool_paths=tools,
        cpu_count=cpu_count,
        memory_total_bytes=memory_total,
        memory_available_bytes=memory_available,
        gpus=gpus,
        load_permille=load_permille,
        max_tasks=config.max_tasks,
        version=bzzz_version(),
    )


def _find_tools(names: Iterable[str], which: Which) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for name in names:
        try:
            path = which(name)
        except Exception as exc:  # an injected lookup that fails counts as "not found"
            log.debug("tool lookup failed", tool=name, error=_describe(exc))
            path = None
        if path:
            found[name] = str(path)
    return tuple(sorted(found.items()))


def _machine() -> tuple[int, int, int]:
    """(logical CPUs, total memory, available memory). psutil failing (no /proc) is not fatal."""
    try:
        cpu_count = int(psutil.cpu_count(logical=True) or 0)
    except Exception:
        cpu_count = 0
    cpu_count = cpu_count or os.cpu_count() or 1
    try:
        memory = psutil.virtual_memory()
        total, available = int(memory.total), int(memory.available)
    except Exception as exc:
        log.warning("memory not readable", error=_describe(exc))
        total = available = 0
    return cpu_count, total, available


def _load_permille(cpu_count: int) -> int:
    try:
        load1 = float(psutil.getloadavg()[0])
    except Exception:
        return 0
    if load1 != load1:  # NaN
        return 0
    return _clamp(round(load1 / max(cpu_count, 1) * 1000), 0, LOAD_PERMILLE_MAX)


@functools.cache
def bzzz_version() -> str:
    """The installed bzzz distribution's version, or `0+unknown` (running from a bare source tree)."""
    try:
        version = importlib.metadata.version("bzzz")
    except importlib.metadata.PackageNotFoundError:
        return _UNKNOWN_VERSION
    return version if _is_name(version) else _UNKNOWN_VERSION


# --------------------------------------------------------------------------- GPUs


def detect_gpus(
    *, which: Which = shutil.which, timeout_s: float = 10.0, nvidia_proc_dir: Path = _NVIDIA_PROC_DIR
) -> tuple[Gpu, ...]:
    """NVIDIA GPUs (nvidia-smi, else the driver's /proc files), then AMD ones (rocm-smi). Never raises.

    Both vendors are asked, because a machine may hold both. Each command runs at most
    `timeout_s`; one that is missing, fails, hangs or prints nonsense gives no GPUs.
    """

    def nvidia() -> list[Gpu]:
        return _nvidia_smi(which, timeout_s) or _nvidia_proc(nvidia_proc_dir)

    def amd() -> list[Gpu]:
        return _rocm_smi(which, timeout_s)

    gpus: list[Gpu] = []
    for source in (nvidia, amd):
        try:
            gpus.extend(source())
        except Exception as exc:
            log.debug("gpu detection failed", error=_describe(exc))
    return tuple(gpus)


def _run(which: Which, command: str, args: Sequence[str], timeout_s: float) -> str | None:
    """The command's stdout if it ran and exited 0 within the timeout, else None."""
    try:
        path = which(command)
        if not path:
            return None
        done = subprocess.run(
            [str(path), *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("gpu query failed", command=command, error=_describe(exc))
        return None
    if done.returncode != 0:
        log.debug("gpu query failed", command=command, status=done.returncode)
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _nvidia_smi(which: Which, timeout_s: float) -> list[Gpu]:
    out = _run(which, "nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], timeout_s)
    gpus: list[Gpu] = []
    for line in (out or "").splitlines():
        name, comma, memory = line.rpartition(",")
        if not comma:
            name, memory = line, ""
        name, memory = name.strip(), memory.strip()
        if name:
            mib = int(memory) if _DIGITS.fullmatch(memory) else None  # "[N/A]" on some boards
            gpus.append(Gpu(name=_clip_utf8(name, NAME_MAX_BYTES), memory_bytes=None if mib is None else mib * _MIB))
    return gpus


def _nvidia_proc(directory: Path) -> list[Gpu]:
    """One `information` file per GPU (directories named by PCI address); it has the model, not the memory."""
    if not directory.is_dir():
        return []
    gpus: list[Gpu] = []
    for gpu_dir in sorted(directory.iterdir()):
        try:
            text = (gpu_dir / "information").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, colon, value = line.partition(":")
            if colon and key.strip() == "Model" and value.strip():
                gpus.append(Gpu(name=_clip_utf8(value.strip(), NAME_MAX_BYTES)))
                break
    return gpus


_ROCM_NAME_KEYS = ("card series", "marketing name", "card model", "card sku")
_ROCM_VRAM_KEY = "vram total memory (b)"


def _rocm_smi(which: Which, timeout_s: float) -> list[Gpu]:
    """rocm-smi's JSON: {"card0": {"Card series": ..., "VRAM Total Memory (B)": "..."}, ...}.

    Key spellings differ between ROCm releases ("Card series" / "Card Series"), so keys are
    compared without case; warnings some releases print before the JSON are skipped.
    """
    out = _run(which, "rocm-smi", ["--showproductname", "--showmeminfo", "vram", "--json"], timeout_s)
    if not out or "{" not in out:
        return []
    data, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    if not isinstance(data, dict):
        return []
    cards = [(key, value) for key, value in data.items() if key.lower().startswith("card") and isinstance(value, dict)]
    cards.sort(key=lambda item: (len(item[0]), item[0]))  # card2 before card10
    gpus: list[Gpu] = []
    for key, fields in cards:
        lowered = {str(k).strip().lower(): v for k, v in fields.items()}
        name = next((str(lowered[k]).strip() for k in _ROCM_NAME_KEYS if str(lowered.get(k, "")).strip()), key)
        vram = str(lowered.get(_ROCM_VRAM_KEY, "")).strip()
        memory = int(vram) if _DIGITS.fullmatch(vram) else None
        gpus.append(Gpu(name=_clip_utf8(name, NAME_MAX_BYTES), memory_bytes=memory))
    return gpus


# --------------------------------------------------------------------------- helpers


def _is_utf8(text: str) -> bool:
    """False for strings holding lone surrogates, which JSON cannot carry as Unicode scalars."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_name(value: object) -> bool:
    """A name or id string the envelope schema accepts: 1..=256 UTF-8 bytes of valid Unicode."""
    if not isinstance(value, str) or not _is_utf8(value):
        return False
    return 1 <= len(value.encode("utf-8")) <= NAME_MAX_BYTES


def _clip_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 at a character boundary (for free-text labels only)."""
    encoded = text.encode("utf-8", errors="replace")
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(int(value), low), high)


def _require_id(field: str, value: object) -> None:
    if not _is_name(value):
        raise ValueError(f"{field} must be a string of 1..={NAME_MAX_BYTES} UTF-8 bytes")


def _require_u32(field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U32_MAX:
        raise ValueError(f"{field} must be an integer in 0..={_U32_MAX}")


def _advertised_names(kind: str, names: Iterable[str]) -> list[str]:
    """`names` sorted and unique, without those the schema refuses (each warned about once)."""
    out: set[str] = set()
    for name in names:
        if _is_name(name):
            out.add(name)
        else:
            shown = repr(name)
            _warn_once(
                ("name", kind, shown),
                f"{kind} name left out of the capabilities payload",
                name=shown if len(shown) <= 80 else shown[:77] + "...",
                reason=f"not 1..={NAME_MAX_BYTES} bytes of valid UTF-8",
            )
    return sorted(out)


_warned: set[tuple[object, ...]] = set()
_warned_lock = threading.Lock()
_WARNED_MAX = 1024


def _warn_once(key: tuple[object, ...], event: str, **fields: Any) -> None:
    """Warn about `key` once per process: payloads are rebuilt every few seconds."""
    with _warned_lock:
        if key in _warned:
            return
        if len(_warned) >= _WARNED_MAX:
            _warned.clear()
        _warned.add(key)
    log.warning(event, **fields)
