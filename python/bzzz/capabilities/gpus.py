"""GPUs: NVIDIA from `nvidia-smi` (else the driver's /proc files), AMD from `rocm-smi`.

Both vendors are asked, because a machine may hold both. Each command is bounded by a
timeout (`nvidia-smi` can take seconds when the driver is not kept loaded). Never raises:
no GPU found is an empty tuple.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import msgspec
import structlog

from bzzz.capabilities.machine import Which, describe
from bzzz.capabilities.schema import NAME_MAX_BYTES, clip_utf8

__all__ = ["Gpu", "detect_gpus"]

log = structlog.get_logger("bzzz.capabilities")

_MIB = 1024 * 1024
_DIGITS = re.compile(r"[0-9]+")
_NVIDIA_PROC_DIR = Path("/proc/driver/nvidia/gpus")


class Gpu(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU. `memory_bytes` is None where the source does not say (the /proc fallback)."""

    name: str
    memory_bytes: int | None = None


def detect_gpus(
    *, which: Which = shutil.which, timeout_s: float = 10.0, nvidia_proc_dir: Path = _NVIDIA_PROC_DIR
) -> tuple[Gpu, ...]:
    """NVIDIA GPUs (nvidia-smi, else the driver's /proc files), then AMD ones (rocm-smi). Never raises.

    Each command runs at most `timeout_s`; one that is missing, fails, hangs or prints
    nonsense gives no GPUs.
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
            log.debug("gpu detection failed", error=describe(exc))
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
        log.debug("gpu query failed", command=command, error=describe(exc))
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
            gpus.append(Gpu(name=clip_utf8(name, NAME_MAX_BYTES), memory_bytes=None if mib is None else mib * _MIB))
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
                gpus.append(Gpu(name=clip_utf8(value.strip(), NAME_MAX_BYTES)))
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
        gpus.append(Gpu(name=clip_utf8(name, NAME_MAX_BYTES), memory_bytes=memory))
    return gpus
