"""The capability detector against real stand-ins: an HTTP server answering as Ollama does,
sockets that refuse or never answer, executables on a PATH of our own, and the Rust core's
envelope check for the payload."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from pydantic import ValidationError

from bzzz._core import KeyPair, sign_envelope, verify_envelope
from bzzz.capabilities import (
    DEFAULT_OLLAMA_ENDPOINT,
    LIST_MAX,
    NAME_MAX_BYTES,
    CapabilityConfig,
    CapabilityDetector,
    Detected,
    Endpoint,
    Gpu,
    detect,
    detect_gpus,
)

# --------------------------------------------------------------------------- stand-ins


def ollama_tag(name: str) -> dict[str, Any]:
    """One entry of `GET /api/tags`, shaped as Ollama's API documentation shows it."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2023-11-04T14:56:49.277302595-07:00",
        "size": 4661224676,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_0",
        },
    }


class StandInOllama:
    """An HTTP server on 127.0.0.1 answering `GET /api/tags` as Ollama does.

    `models` and `mode` may be changed between calls: "ok" answers the list, "error" a 500
    as Ollama sends it, "garbage" a 200 that is not a model list.
    """

    def __init__(self, models: list[str]) -> None:
        self.models = list(models)
        self.mode = "ok"
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/api/tags":
                    self._send(404, b"404 page not found", "text/plain")
                elif stand_in.mode == "error":
                    self._send(500, json.dumps({"error": "something went wrong"}).encode(), "application/json")
                elif stand_in.mode == "garbage":
                    self._send(200, b"<html>not ollama</html>", "text/html")
                else:
                    body = json.dumps({"models": [ollama_tag(m) for m in stand_in.models]}).encode()
                    self._send(200, body, "application/json; charset=utf-8")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def ollama() -> Iterator[Callable[..., StandInOllama]]:
    servers: list[StandInOllama] = []

    def start(*models: str) -> StandInOllama:
        servers.append(StandInOllama(list(models)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A port held by a socket that is bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hanging() -> Iterator[Callable[[], str]]:
    """Listening sockets that are never accepted from: the kernel completes the handshake,
    takes the request, and nothing ever answers."""
    socks: list[socket.socket] = []

    def make() -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        socks.append(sock)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield make
    for sock in socks:
        sock.close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; the stand-ins are on 127.0.0.1 and must be reached directly."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def nothing_on_path(tmp_path: Path) -> Callable[[str], str | None]:
    """A `which` that finds nothing: tests about Ollama need no tools or GPU commands."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return functools.partial(shutil.which, path=str(empty))


def executable(directory: Path, name: str, script: str = "#!/bin/sh\nexit 0\n") -> Path:
    path = directory / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def config(*endpoints: str, **settings: Any) -> CapabilityConfig:
    return CapabilityConfig(ollama_endpoints=list(endpoints), tools=settings.pop("tools", []), **settings)


def sign_and_verify(payload: dict[str, Any]) -> dict[str, Any]:
    """What a receiving peer gets after the core's full check (default 64 KiB limit included)."""
    wire = sign_envelope(KeyPair.generate().secret_key, "capabilities", "bzzz/capabilities", "node-a", payload, seq=1)
    return verify_envelope(wire).payload


PAYLOAD_ARGS: dict[str, Any] = {
    "node_id": "node-a",
    "peer_id": "12D3KooWGzXQm6qyrZ7hSWdApWqzMn6hvUjDBMGbyEhzE7bDcbGE",
    "log_key_hex": "ab" * 32,
    "active_tasks": 0,
}


# --------------------------------------------------------------------------- Ollama endpoints


def test_the_models_of_two_endpoints_are_merged_sorted_and_unique(
    ollama: Callable[..., StandInOllama], nothing_on_path: Callable[[str], str | None]
) -> None:
    first = ollama("qwen2.5-coder:7b", "llama3:8b")
    second = ollama("llama3:8b", "codellama:13b", "all-minilm:latest")

    caps = detect(config(first.url, second.url), which=nothing_on_path)

    assert caps.models == ("all-minilm:latest", "codellama:13b", "llama3:8b", "qwen2.5-coder:7b")
    assert caps.endpoints == (
        Endpoint(url=first.url, reachable=True, models=("llama3:8b", "qwen2.5-coder:7b")),
        Endpoint(url=second.url, reachable=True, models=("all-minilm:latest", "codellama:13b", "llama3:8b")),
    )


def test_an_endpoint_that_refuses_connections_is_unreachable_and_the_others_still_count(
    ollama: Callable[..., StandInOllama], refusing_url: str, nothing_on_path: Callable[[str], str | None]
) -> None:
    up = ollama("llama3:8b")

    caps = detect(config(refusing_url, up.url), which=nothing_on_path)

    down, alive = caps.endpoints
    assert (down.url, down.reachable, down.models) == (refusing_url, False, ())
    assert down.error  # says why, for `bzzz ctl status`
    assert alive == Endpoint(url=up.url, reachable=True, models=("llama3:8b",))
    assert caps.models == ("llama3:8b",)


def test_an_endpoint_that_never_answers_is_given_up_on_after_the_timeout(
    ollama: Callable[..., StandInOllama], hanging: Callable[[], str], nothing_on_path: Callable[[str], str | None]
) -> None:
    up = ollama("llama3:8b")
    stuck = [hanging() for _ in range(4)]
    cfg = config(*stuck, up.url, probe_timeout_s=2.0)

    started = time.monotonic()
    caps = detect(cfg, which=nothing_on_path)
    elapsed = time.monotonic() - started

    assert [e.reachable for e in caps.endpoints] == [False, False, False, False, True]
    assert caps.models == ("llama3:8b",)
    # Probed together, not one after another: four hung endpoints cost one timeout, not four.
    assert elapsed < 6.0
    # Asked again while the first probes may still hang: still bounded, still unreachable.
    again = detect(cfg, which=nothing_on_path)
    assert [e.reachable for e in again.endpoints] == [False, False, False, False, True]


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_an_endpoint_that_answers_but_not_with_a_model_list_is_unreachable(
    ollama: Callable[..., StandInOllama], mode: str, nothing_on_path: Callable[[str], str | None]
) -> None:
    broken = ollama("llama3:8b")
    broken.mode = mode

    [endpoint] = detect(config(broken.url), which=nothing_on_path).endpoints

    assert not endpoint.reachable
    assert endpoint.models == ()


def test_a_change_of_reachability_is_logged_once_not_on_every_call(
    ollama: Callable[..., StandInOllama], nothing_on_path: Callable[[str], str | None]
) -> None:
    server = ollama("llama3:8b")
    server.mode = "error"
    detector = CapabilityDetector(config(server.url), which=nothing_on_path)

    def events_of(calls: int) -> list[tuple[str, str]]:
        with structlog.testing.capture_logs() as logs:
            for _ in range(calls):
                detector.detect()
        return [(e["event"], e["log_level"]) for e in logs if e.get("url") == server.url]

    assert events_of(3) == [("ollama endpoint unreachable", "info")]
    server.mode = "ok"
    assert events_of(3) == [("ollama endpoint reachable", "info")]
    server.mode = "error"  # one that answered and stops is a warning: its models are gone from the mesh
    assert events_of(2) == [("ollama endpoint went down; its models are no longer offered", "warning")]


def test_no_endpoints_means_no_models() -> None:
    caps = detect(config())
    assert (caps.models, caps.endpoints) == ((), ())


# --------------------------------------------------------------------------- tools


def test_tools_found_on_path_are_listed_and_missing_ones_are_not(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = executable(bin_dir, "git")
    fakecli = executable(bin_dir, "fakecli")
    (bin_dir / "notexec").write_text("#!/bin/sh\n")  # present, but not executable
    which = functools.partial(shutil.which, path=str(bin_dir))

    caps = detect(config(tools=["git", "notexec", "fakecli", "cargo"]), which=which)

    assert caps.tools == ("fakecli", "git")
    assert caps.tool_path("git") == str(git)
    assert caps.tool_path("fakecli") == str(fakecli)
    assert caps.tool_path("cargo") is None


def test_a_which_that_fails_counts_as_not_found() -> None:
    def broken_which(name: str) -> str | None:
        raise OSError("PATH unreadable")

    assert detect(config(tools=["git"]), which=broken_which).tools == ()


# --------------------------------------------------------------------------- machine


def test_the_machine_numbers_are_sane() -> None:
    caps = detect(config())

    assert caps.cpu_count >= 1
    assert caps.memory_total_bytes >= caps.memory_available_bytes > 0
    assert 0 <= caps.load_permille <= 100_000
    assert all(type(n) is int for n in (caps.cpu_count, caps.memory_total_bytes, caps.load_permille))
    assert caps.version == importlib.metadata.version("bzzz")


# --------------------------------------------------------------------------- GPUs


def test_nvidia_gpus_come_from_nvidia_smi(tmp_path: Path) -> None:
    executable(
        tmp_path,
        "nvidia-smi",
        '#!/bin/sh\n[ "$1" = --query-gpu=name,memory.total ] || exit 2\n'
        'printf "NVIDIA GeForce RTX 3090, 24576\\nNVIDIA A100-SXM4-80GB, 81920\\nTesla K80, [N/A]\\n"\n',
    )
    which = functools.partial(shutil.which, path=str(tmp_path))

    assert detect_gpus(which=which, nvidia_proc_dir=tmp_path / "none") == (
        Gpu(name="NVIDIA GeForce RTX 3090", memory_bytes=24576 * 2**20),
        Gpu(name="NVIDIA A100-SXM4-80GB", memory_bytes=81920 * 2**20),
        Gpu(name="Tesla K80", memory_bytes=None),
    )


def nvidia_proc(directory: Path, *models: str) -> Path:
    for i, model in enumerate(models):
        gpu = directory / f"0000:0{i + 1}:00.0"
        gpu.mkdir(parents=True)
        (gpu / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 42\nBus Type: \t PCIe\n")
    return directory


def test_without_a_working_nvidia_smi_the_driver_files_name_the_gpus(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir, "nvidia-smi", "#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n")
    proc = nvidia_proc(tmp_path / "gpus", "NVIDIA GeForce RTX 4090", "NVIDIA L4")

    for which in (functools.partial(shutil.which, path=str(bin_dir)), lambda name: None):
        assert detect_gpus(which=which, nvidia_proc_dir=proc) == (
            Gpu(name="NVIDIA GeForce RTX 4090"),
            Gpu(name="NVIDIA L4"),
        )


def test_a_hanging_gpu_command_is_bounded_by_its_timeout(tmp_path: Path) -> None:
    executable(tmp_path, "nvidia-smi", "#!/bin/sh\nexec sleep 60\n")
    which = functools.partial(shutil.which, path=str(tmp_path))

    started = time.monotonic()
    assert detect_gpus(which=which, timeout_s=0.5, nvidia_proc_dir=tmp_path / "none") == ()
    assert time.monotonic() - started < 30


def test_amd_gpus_come_from_rocm_smi_alongside_nvidia_ones(tmp_path: Path) -> None:
    report = {
        "card0": {
            "Card series": "Navi 21 [Radeon RX 6800 XT]",
            "Card model": "0x73bf",
            "VRAM Total Memory (B)": "17163091968",
        },
        "card1": {"Card Series": "Instinct MI210", "VRAM Total Memory (B)": "68702699520"},
        "system": {"Driver version": "6.7.0"},
    }
    executable(tmp_path, "rocm-smi", f"#!/bin/sh\necho 'WARNING: unlocked'\ncat <<'EOF'\n{json.dumps(report)}\nEOF\n")
    executable(tmp_path, "nvidia-smi", "#!/bin/sh\necho 'NVIDIA T4, 15360'\n")
    which = functools.partial(shutil.which, path=str(tmp_path))

    assert detect_gpus(which=which, nvidia_proc_dir=tmp_path / "none") == (
        Gpu(name="NVIDIA T4", memory_bytes=15360 * 2**20),
        Gpu(name="Navi 21 [Radeon RX 6800 XT]", memory_bytes=17163091968),
        Gpu(name="Instinct MI210", memory_bytes=68702699520),
    )


def test_no_gpu_tools_and_no_driver_files_means_no_gpus(tmp_path: Path) -> None:
    assert detect_gpus(which=lambda name: None, nvidia_proc_dir=tmp_path / "none") == ()


def test_gpu_commands_that_print_nonsense_give_no_gpus(tmp_path: Path) -> None:
    executable(tmp_path, "nvidia-smi", "#!/bin/sh\nprintf '\\n\\n'\n")
    executable(tmp_path, "rocm-smi", "#!/bin/sh\necho '{not json'\n")
    which = functools.partial(shutil.which, path=str(tmp_path))

    assert detect_gpus(which=which, nvidia_proc_dir=tmp_path / "none") == ()


# --------------------------------------------------------------------------- payload


def floats_in(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats_in(v)]
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in floats_in(v)]
    return []


def test_the_payload_passes_the_core_envelope_check(
    ollama: Callable[..., StandInOllama], refusing_url: str, tmp_path: Path
) -> None:
    server = ollama("llama3:8b", "qwen2.5-coder:7b")
    executable(tmp_path, "git")
    caps = detect(
        config(server.url, refusing_url, tools=["git", "cargo"], max_tasks=3),
        which=functools.partial(shutil.which, path=str(tmp_path)),
    )

    payload = caps.payload(**PAYLOAD_ARGS)
    received = sign_and_verify(payload)

    assert received == payload
    assert floats_in(received) == []
    assert received["models"] == ["llama3:8b", "qwen2.5-coder:7b"]
    assert received["tools"] == ["git"]
    assert received["max_tasks"] == 3
    assert received["log_key"] == "ab" * 32
    assert received["version"] == caps.version
    assert received["endpoints"] == [
        {"url": server.url, "reachable": True, "models": ["llama3:8b", "qwen2.5-coder:7b"]},
        {"url": refusing_url, "reachable": False, "models": []},
    ]
    assert received["cpu_count"] == caps.cpu_count
    assert received["memory_total_bytes"] == caps.memory_total_bytes
    assert "tool_paths" not in received and "error" not in json.dumps(received)


def test_the_payload_says_what_the_caller_says_about_tasks() -> None:
    caps = detect(config(max_tasks=2))

    assert caps.payload(**PAYLOAD_ARGS)["max_tasks"] == 2
    assert caps.payload(**{**PAYLOAD_ARGS, "active_tasks": 1}, max_tasks=0)["max_tasks"] == 0
    assert caps.payload(**{**PAYLOAD_ARGS, "active_tasks": 1})["active_tasks"] == 1


def hand_made(models: list[str], tools: Sequence[str] = (), **fields: Any) -> Detected:
    values: dict[str, Any] = {
        "models": tuple(models),
        "endpoints": (Endpoint(url=DEFAULT_OLLAMA_ENDPOINT, reachable=True, models=tuple(models)),),
        "tools": tuple(tools),
        "tool_paths": tuple((t, f"/usr/bin/{t}") for t in tools),
        "cpu_count": 8,
        "memory_total_bytes": 32 * 2**30,
        "memory_available_bytes": 20 * 2**30,
        "gpus": (Gpu(name="NVIDIA GeForce RTX 3090", memory_bytes=24 * 2**30), Gpu(name="NVIDIA L4")),
        "load_permille": 250,
        "max_tasks": 1,
        "version": "0.1.0",
    }
    return Detected(**{**values, **fields})


def test_names_the_schema_refuses_are_left_out_not_sent() -> None:
    too_long = "m" * (NAME_MAX_BYTES + 1)
    longest = "é" * (NAME_MAX_BYTES // 2)  # 256 bytes: still allowed
    caps = hand_made(["llama3:8b", too_long, "", "bad\ud800", longest], tools=["git", "t" * 300])

    received = sign_and_verify(caps.payload(**PAYLOAD_ARGS))

    assert received["models"] == sorted(["llama3:8b", longest])
    assert received["tools"] == ["git"]
    assert received["endpoints"][0]["models"] == sorted(["llama3:8b", longest])


def test_more_models_than_a_list_may_hold_are_cut_to_the_first_256_and_counted() -> None:
    models = [f"model-{i:03d}:latest" for i in range(300)]
    caps = hand_made(models)

    received = sign_and_verify(caps.payload(**PAYLOAD_ARGS))

    assert received["models"] == sorted(models)[:LIST_MAX]
    assert received["models_omitted"] == 300 - LIST_MAX
    assert received["endpoints"][0]["models"] == sorted(models)[:LIST_MAX]


def test_a_payload_too_big_for_an_envelope_sheds_names_but_stays_valid() -> None:
    # 300 names of 250 bytes, twice over (merged and per endpoint): far past 64 KiB.
    models = [f"{i:03d}-" + "x" * 246 for i in range(300)]
    tools = [f"{i:03d}-" + "t" * 246 for i in range(300)]
    caps = hand_made(models, tools)

    payload = caps.payload(**PAYLOAD_ARGS)
    received = sign_and_verify(payload)  # under the default 64 KiB limit

    assert received == payload
    assert received["endpoints"][0]["models"] == []
    assert received["endpoints"][0]["models_omitted"] == LIST_MAX
    kept = received["models"]
    assert kept == sorted(models)[: len(kept)] and len(kept) > 100  # neither list emptied for the other
    assert len(received["tools"]) > 100
    assert received["models_omitted"] == 300 - len(kept)
    assert len(received["tools"]) + received["tools_omitted"] == 300


def test_out_of_range_numbers_are_clamped_into_the_schema() -> None:
    caps = hand_made(["llama3:8b"], load_permille=5_000_000, version="")

    received = sign_and_verify(caps.payload(**PAYLOAD_ARGS))

    assert received["load_permille"] == 100_000
    assert received["version"] == "0+unknown"


@pytest.mark.parametrize(
    "override",
    [
        {"node_id": ""},
        {"peer_id": "p" * 257},
        {"log_key_hex": "AB" * 32},
        {"log_key_hex": "ab" * 31},
        {"active_tasks": -1},
        {"active_tasks": 2**32},
        {"max_tasks": 2**32},
    ],
)
def test_arguments_the_schema_would_refuse_are_refused_at_once(override: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        hand_made([]).payload(**{**PAYLOAD_ARGS, **override})


# --------------------------------------------------------------------------- fingerprint


def test_the_fingerprint_changes_when_a_model_appears_and_not_with_the_load(
    ollama: Callable[..., StandInOllama], nothing_on_path: Callable[[str], str | None]
) -> None:
    server = ollama("llama3:8b")
    detector = CapabilityDetector(config(server.url), which=nothing_on_path)
    before = detector.detect()

    busier = msgspec.structs.replace(
        before, load_permille=before.load_permille + 3000, memory_available_bytes=before.memory_available_bytes // 2
    )
    assert busier.fingerprint() == before.fingerprint()
    assert busier != before  # equality is exact; the fingerprint is what "changed" means

    assert detector.detect().fingerprint() == before.fingerprint()
    server.models.append("phi3:mini")
    assert detector.detect().fingerprint() != before.fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"max_tasks": 2},
        {"tools": ("git",)},
        {"gpus": ()},
        {"endpoints": (Endpoint(url=DEFAULT_OLLAMA_ENDPOINT, reachable=False, error="refused"),)},
    ],
)
def test_the_fingerprint_changes_with_what_peers_schedule_on(change: dict[str, Any]) -> None:
    caps = hand_made(["llama3:8b"])
    assert msgspec.structs.replace(caps, **change).fingerprint() != caps.fingerprint()


def test_an_error_message_alone_is_no_change() -> None:
    down = hand_made([], endpoints=(Endpoint(url=DEFAULT_OLLAMA_ENDPOINT, reachable=False, error="refused"),))
    other = msgspec.structs.replace(
        down, endpoints=(Endpoint(url=DEFAULT_OLLAMA_ENDPOINT, reachable=False, error="reset"),)
    )
    assert other.fingerprint() == down.fingerprint()


# --------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    cfg = CapabilityConfig()
    assert cfg.ollama_endpoints == ["http://127.0.0.1:11434"]
    assert {"git", "gh", "python3", "cargo", "docker", "ollama", "claude", "aider"} <= set(cfg.tools)
    assert (cfg.probe_timeout_s, cfg.max_tasks) == (2.0, 1)


def test_endpoints_are_normalized_and_deduplicated() -> None:
    cfg = CapabilityConfig(
        ollama_endpoints=["http://gpu-box:11434/", "HTTP://gpu-box:11434", "https://ollama.example.com/api-root/"]
    )
    assert cfg.ollama_endpoints == ["http://gpu-box:11434", "https://ollama.example.com/api-root"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "localhost:11434",
        "ftp://gpu-box:11434",
        "http://",
        "http://user:secret@gpu-box:11434",
        "http://gpu-box:99999",
        "http://gpu-box:11434/?x=1",
    ],
)
def test_endpoints_that_are_no_http_url_are_refused(endpoint: str) -> None:
    with pytest.raises(ValidationError):
        CapabilityConfig(ollama_endpoints=[endpoint])


@pytest.mark.parametrize(
    "settings",
    [
        {"tools": ["/usr/bin/git"]},
        {"tools": [""]},
        {"probe_timeout_s": 0},
        {"probe_timeout_s": float("inf")},
        {"max_tasks": -1},
        {"unknown_key": 1},
    ],
)
def test_settings_out_of_range_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CapabilityConfig(**settings)


def test_the_value_survives_msgspec_for_the_bus() -> None:
    caps = hand_made(["llama3:8b"], tools=["git"])
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(caps), type=Detected) == caps
    assert hash(caps) == hash(msgspec.structs.replace(caps))
    assert caps.tool_path("git") == "/usr/bin/git"
