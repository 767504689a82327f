"""Start `bzzz monitor` from Python (the demo, tests, benchmarks) and learn its page's URL.

with start_monitor(tmp / "monitor", bootstrap=[agent_addr]) as monitor:
    print(monitor.url)            # http://127.0.0.1:PORT/
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bzzz.paths import MONITOR_ADDR_FILE, DataDir


@dataclass
class MonitorProcess:
    process: subprocess.Popen[bytes]
    data_dir: Path
    url: str

    @property
    def run_dir(self) -> Path:
        return DataDir(self.data_dir).run

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (the supervisor stops its workers), then SIGKILL after `timeout_s`; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> MonitorProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_monitor(
    data_dir: Path,
    *,
    bootstrap: list[str] = (),  # type: ignore[assignment]
    http: str = "127.0.0.1:0",
    listen: str = "/ip4/127.0.0.1/tcp/0",
    node_id: str = "monitor",
    mesh: dict[str, Any] | None = None,
    output: Path | None = None,
    timeout_s: float = 60.0,
) -> MonitorProcess:
    """`bzzz monitor` in a process of its own, once its page answers at the returned URL.
    `mesh` is the mesh worker's settings (written to the monitor's config file; say
    `{"discovery": {"mdns": False, "dht": False}}` to meet only the `bootstrap` peers).
    Its output goes to `output` (default: <data_dir>/monitor.out). RuntimeError if it exits
    or does not bind in `timeout_s`."""
    data_dir = data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    addr = DataDir(data_dir).run / MONITOR_ADDR_FILE
    addr.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "bzzz.cli.main", "monitor", "--data-dir", str(data_dir), "--http", http]
    argv += ["--listen", listen]
    if mesh is not None:
        config = data_dir / "monitor.toml"
        config.write_text(f'[workers.mesh]\nmodule = "bzzz.workers.mesh"\nsettings = {_toml(mesh)}\n')
        argv += ["--config", str(config)]
    for peer in bootstrap:
        argv += ["--bootstrap", peer]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    env["BZZZ_NODE_ID"] = node_id
    out = output or data_dir / "monitor.out"
    with out.open("ab") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bzzz monitor exited with status {process.returncode}; see {out}")
        try:
            address = addr.read_text().strip()
        except OSError:
            address = ""
        if address:
            return MonitorProcess(process, data_dir, f"http://{address}/")
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"bzzz monitor did not serve its page within {timeout_s:g} s; see {out}")


def _toml(value: Any) -> str:
    """An inline TOML value (strings, numbers, booleans, lists and tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


__all__ = ["MonitorProcess", "start_monitor"]
