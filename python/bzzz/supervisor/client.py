"""Talking to a running agent's control socket (what `bzzz ctl` uses)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import zmq

from bzzz.supervisor.rundir import private_ipc


class ControlError(Exception):
    """The agent answered with an error, or did not answer."""

    def __init__(self, reason: str, errno: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno = errno


class ControlClient:
    def __init__(self, run_dir: Path, timeout_s: float = 5.0) -> None:
        self.run_dir = run_dir
        self.timeout_s = timeout_s

    def call(self, command: str, **properties: Any) -> dict[str, Any]:
        endpoint, path = private_ipc(self.run_dir, "control.sock")
        if not path.exists():
            raise ControlError(
                f"no agent is running in {self.run_dir} (no control socket); start one with `bzzz agent run`"
            )
        context = zmq.Context.instance()
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(endpoint)
            request_id = uuid.uuid4().hex
            sock.send(json.dumps({"id": request_id, "command": command, "properties": properties}).encode())
            if not sock.poll(int(self.timeout_s * 1000)):
                raise ControlError(f"the agent in {self.run_dir} did not answer within {self.timeout_s:g}s")
            reply: dict[str, Any] = json.loads(sock.recv())
        finally:
            sock.close()
        if reply.get("status") != "ok":
            raise ControlError(str(reply.get("reason", "unknown error")), reply.get("errno"))
        return reply
