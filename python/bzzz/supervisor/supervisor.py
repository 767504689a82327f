"""The supervisor: starts every configured worker, watches it, restarts it as its policy says.

Restarts follow OTP (linkdd/triotp, Erlang's supervisor): a `permanent` worker is always
restarted, a `transient` one only after an abnormal exit, a `temporary` one never. More than
`max_restarts` restarts within `max_seconds` means something is wrong that restarting will not
fix, so the supervisor stops every worker and the agent exits with status 3 and a clear error
(rather than flapping forever, hiding the fault).

A worker that crashes after running for `stable_after_s` is restarted at once; one that keeps
crashing quickly waits `backoff_initial_s * 2^k`, capped at `backoff_max_s`, times a random
factor in [0.5, 1) so that workers failing together do not retry in lock step ("equal jitter",
AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).

The event bus (`bzzz.bus.BusProxy`) runs in a thread of the supervisor: it is up before the
first worker starts and goes down after the last one stopped, and if it ever fails it is
started again on the next tick (ZeroMQ reconnects the workers by itself).

Everything else happens on one thread: a ZeroMQ poll over the control socket and the heartbeat
socket, with a short timeout, then a tick that reaps exits, kills the hung, sends the
overdue SIGKILLs and starts what is due. No locks, no races between a restart and a command.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import sys
import time
from collections import deque
from types import FrameType
from typing import Any

import msgspec
import structlog
import zmq

from bzzz.bus import BusError, BusProxy
from bzzz.config import AgentConfig, Restart, WorkerConfig
from bzzz.paths import DataDir
from bzzz.runtime import HEARTBEAT_SOCKET, Heartbeat
from bzzz.secrets.settings import SETTINGS_ENV as TOKEN_SOURCE_ENV
from bzzz.supervisor import rundir
from bzzz.supervisor.commands import COMMANDS
from bzzz.supervisor.commands.errors import BAD_REQUEST, UNKNOWN_COMMAND, WRONG_STATE, CommandError
from bzzz.supervisor.datadir import DataDirLock
from bzzz.supervisor.errors import StartError
from bzzz.supervisor.metrics import MetricsEndpoint
from bzzz.supervisor.worker import State, Worker, WorkerStartError, describe_exit, last_words

CONTROL_SOCKET = "control.sock"
TICK_S = 0.02

log = structlog.get_logger("bzzz.supervisor")


def _module_missing(module: str, config: WorkerConfig) -> str | None:
    """Why `python -m module` would not run here, or None (also when this process cannot tell)."""
    if "PYTHONPATH" in config.env:
        return None  # found, or not, on a path this process does not search
    # `python -m` searches the working directory first; a supervisor started as the `bzzz`
    # script does not, so look there too.
    try:
        here = [os.getcwd()]
    except OSError:  # started in a directory since removed: the worker will not search it either
        here = []
    sys.path[:0] = here
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{module}.__main__")
            if spec is None:
                return f"{module} is a package without __main__"
    except (ImportError, ValueError) as err:
        return str(err) or f"No module named {module!r}"
    finally:
        del sys.path[: len(here)]
    return f"No module named {module!r}" if spec is None else None


def _preflight(config: AgentConfig) -> None:
    """A worker that cannot run at all is a mistake in the config: said now, in one line, before
    anything starts (rather than as crashes until the restart limit stops the agent)."""
    for name, worker in config.workers.items():
        missing = _module_missing(worker.module, worker)
        if missing is not None:
            raise StartError(f"worker {name!r}: module {worker.module!r} cannot be run: {missing}")


class Supervisor:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.run_dir = config.runtime_dir
        self.workers = {
            name: Worker(name, worker_config, DataDir(config.data_dir).worker_output(name))
            for name, worker_config in config.workers.items()
        }
        self.restart_times: deque[float] = deque()
        self.exit_status: int | None = None
        self.exit_reason = ""
        self.started_at = time.monotonic()
        self._heartbeat_decoder = msgspec.msgpack.Decoder(Heartbeat)
        self.bus: BusProxy | None = None
        self.metrics = MetricsEndpoint(self.run_dir, config.metrics.address)

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until shutdown; the agent's exit status. StartError (before any worker
        started) if another agent holds the data dir or run dir, or either cannot be used."""
        lock = DataDirLock(self.config.data_dir)
        lock.acquire()  # for the whole life of this process; the kernel lets go if it dies
        try:
            _preflight(self.config)
            return self._run()
        finally:
            lock.release()

    def _run(self) -> int:
        run_dir = rundir.RunDir(self.run_dir)
        removed = run_dir.claim()  # held, as the data dir's lock is, until this process ends or lets go
        if removed:
            log.info("cleaned stale files of a previous supervisor", files=[p.name for p in removed])
        self.metrics.prepare()
        context = zmq.Context()
        sockets: list[zmq.Socket[bytes]] = []
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            # First: an address that cannot be served stops the agent before anything started.
            if (address := self.metrics.start(self)) is not None:
                log.info("metrics served", address=address, path="/metrics")
            self.bus = BusProxy(self.run_dir, context=context).start()
            control = self._bind(context, zmq.ROUTER, CONTROL_SOCKET)
            sockets.append(control)
            heartbeats = self._bind(context, zmq.PULL, HEARTBEAT_SOCKET)
            sockets.append(heartbeats)
            poller = zmq.Poller()
            poller.register(control, zmq.POLLIN)
            poller.register(heartbeats, zmq.POLLIN)
            now = time.monotonic()
            for worker in self.workers.values():
                self._start(worker, now)
            log.info("agent running", run_dir=str(self.run_dir), workers=list(self.workers), pid=os.getpid())
            while self.exit_status is None:
                ready = dict(poller.poll(int(TICK_S * 1000)))
                if control in ready:
                    self._serve_control(control)
                if heartbeats in ready:
                    self._take_heartbeats(heartbeats)
                self.tick(time.monotonic())
            # A last word for whoever asked for the shutdown is already sent; now stop and close.
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in sockets:
                sock.close(linger=0)
            if self.bus is not None:
                self.bus.stop()  # after the workers: their last events still go through
            self.metrics.stop()
            context.term()
            run_dir.release()
        level = log.info if self.exit_status == 0 else log.error
        level("agent stopped", status=self.exit_status, reason=self.exit_reason)
        return self.exit_status

    def _bind(self, context: zmq.Context[zmq.Socket[bytes]], kind: int, name: str) -> zmq.Socket[bytes]:
        endpoint, path = rundir.private_ipc(self.run_dir, name)
        sock = context.socket(kind)
        sock.bind(endpoint)
        path.chmod(0o600)
        return sock

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_shutdown(0, f"received {signal.Signals(signum).name}")

    def request_shutdown(self, status: int, reason: str) -> None:
        if self.exit_status is None:
            self.exit_status, self.exit_reason = status, reason

    def _stop_all(self) -> None:
        """SIGTERM every worker, then SIGKILL whoever is still there past its timeout."""
        now = time.monotonic()
        for worker in self.workers.values():
            worker.then = "stop"
            worker.terminate(now)
        deadline = max((w.kill_at or now) for w in self.workers.values()) if self.workers else now
        while any(w.process is not None for w in self.workers.values()):
            now = time.monotonic()
            for worker in self.workers.values():
                status = self._reap(worker)
                if status is not None:
                    worker.state, worker.last_exit = State.STOPPED, describe_exit(status)
                elif worker.process is not None and now >= (worker.kill_at or deadline):
                    worker.kill()
            time.sleep(TICK_S)

    # --- the tick ----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        if self.bus is not None and not self.bus.running:
            log.error("the bus proxy stopped; starting it again", error=repr(self.bus.failure))
            self.bus.stop()
            self.bus.start()
        for worker in self.workers.values():
            status = self._reap(worker)
            if status is not None:
                self._on_exit(worker, status, now)
            elif worker.process is not None:
                timeout = worker.config.heartbeat_timeout_s
                alive = worker.state in (State.STARTING, State.RUNNING)
                if alive and timeout is not None and now - worker.last_heartbeat > timeout:
                    log.warning(
                        "worker is hung: killing it", worker=worker.name, silent_s=round(now - worker.last_heartbeat, 2)
                    )
                    worker.hung = True
                    worker.kill()
                elif worker.kill_at is not None and now >= worker.kill_at:
                    log.warning("worker ignored SIGTERM: killing it", worker=worker.name)
                    worker.kill()
            if worker.state is State.BACKOFF and worker.restart_at is not None and now >= worker.restart_at:
                self._start(worker, now)

    def _reap(self, worker: Worker) -> int | None:
        """`worker.reap()`, and its process's live gauges gone before anything starts in its place."""
        pid = worker.pid
        status = worker.reap()
        if status is not None:
            self.metrics.process_gone(pid)
        return status

    def _start(self, worker: Worker, now: float) -> None:
        try:
            worker.start(
                {
                    "BZZZ_WORKER": worker.name,
                    "BZZZ_RUN_DIR": str(self.run_dir),
                    "BZZZ_DATA_DIR": str(self.config.data_dir),
                    "BZZZ_NODE_ID": self.config.node_id,
                    "BZZZ_HEARTBEAT_INTERVAL_S": str(self.config.supervisor.heartbeat_interval_s),
                    "BZZZ_WORKERS": ",".join(sorted(self.workers)),
                    "BZZZ_WORKER_SETTINGS": json.dumps(worker.config.settings),
                    TOKEN_SOURCE_ENV: self.config.github_token.model_dump_json(),  # where, never a secret
                    **self.metrics.worker_env(),
                },
                now,
            )
        except WorkerStartError as err:
            # As good as a crash at once: restarted by its policy, counted against the restart
            # intensity, so a Python that stays unrunnable ends the agent with this reason.
            log.error("worker could not be started", worker=worker.name, error=str(err))
            self._on_exit(worker, None, now, failure=f"could not start: {err}")
            return
        log.info("worker started", worker=worker.name, pid=worker.pid)

    def _on_exit(self, worker: Worker, status: int | None, now: float, failure: str | None = None) -> None:
        """`status` of the exited process, or None with `failure` when it could not be started."""
        uptime = 0.0 if failure is not None else now - (worker.started_at or now)
        if failure is not None:
            reason = failure
        elif worker.hung:
            reason = f"hung: no heartbeat for {worker.config.heartbeat_timeout_s}s, killed"
        else:
            reason = describe_exit(status or 0)
        worker.last_exit = reason
        then, worker.then = worker.then, None
        if then == "stop":
            worker.state = State.STOPPED
            log.info("worker stopped", worker=worker.name, exit=reason)
            return
        if then == "restart":  # the operator's: immediate, and not counted against intensity
            self._start(worker, now)
            return
        abnormal = failure is not None or worker.hung or status != 0
        policy = worker.config.restart
        if policy is Restart.TEMPORARY or (policy is Restart.TRANSIENT and not abnormal):
            worker.state = State.EXITED
            log.info("worker exited; its policy keeps it down", worker=worker.name, exit=reason, policy=policy.value)
            return
        self.restart_times.append(now)
        window = self.config.supervisor.max_seconds
        while self.restart_times and self.restart_times[0] < now - window:
            self.restart_times.popleft()
        if len(self.restart_times) > self.config.supervisor.max_restarts:
            worker.state = State.EXITED
            self.request_shutdown(
                3,
                f"worker {worker.name!r} {reason}; that is {len(self.restart_times)} restarts within {window:g}s, "
                f"more than max_restarts={self.config.supervisor.max_restarts}: stopping the agent"
                + (f"; its last words: {said}" if (said := last_words(worker.log_path)) else ""),
            )
            return
        if uptime >= self.config.supervisor.stable_after_s:
            worker.quick_failures = 0
        delay = 0.0
        if worker.quick_failures:
            backoff = self.config.supervisor
            delay = min(backoff.backoff_max_s, backoff.backoff_initial_s * 2 ** (worker.quick_failures - 1))
            delay *= random.uniform(0.5, 1.0)
        worker.quick_failures += 1
        worker.restarts += 1
        worker.state = State.BACKOFF
        worker.restart_at = now + delay
        log.warning(
            "worker exited; restarting",
            worker=worker.name,
            exit=reason,
            delay_s=round(delay, 3),
            **({"said": said} if abnormal and (said := last_words(worker.log_path)) else {}),
        )

    def _take_heartbeats(self, sock: zmq.Socket[bytes]) -> None:
        now = time.monotonic()
        while True:
            try:
                raw = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                beat = self._heartbeat_decoder.decode(raw)
            except msgspec.DecodeError:
                continue
            worker = self.workers.get(beat.worker)
            # A beat from an earlier incarnation (pid) of the worker proves nothing about this one.
            if worker is not None and worker.pid == beat.pid:
                worker.last_heartbeat = now
                if worker.state is State.STARTING:
                    worker.state = State.RUNNING

    # --- control -----------------------------------------------------------------------

    def _serve_control(self, sock: zmq.Socket[bytes]) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # REQ clients put an empty delimiter between their identity and the request.
            head, body = (frames[:2], frames[2:]) if len(frames) >= 2 and frames[1] == b"" else (frames[:1], frames[1:])
            sock.send_multipart([*head, json.dumps(self.handle(body)).encode()])

    def handle(self, frames: list[bytes]) -> dict[str, Any]:
        """Answer one control request; never raises."""
        request_id: Any = None
        try:
            if len(frames) != 1:
                raise CommandError(BAD_REQUEST, f"a request is one frame of JSON, got {len(frames)} frames")
            try:
                request = json.loads(frames[0])
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise CommandError(BAD_REQUEST, f"the request is not JSON: {err}") from None
            if not isinstance(request, dict):
                raise CommandError(BAD_REQUEST, "the request must be a JSON object")
            request_id = request.get("id")
            command, properties = request.get("command"), request.get("properties", {})
            if not isinstance(properties, dict):
                raise CommandError(BAD_REQUEST, "'properties' must be an object")
            execute = COMMANDS.get(command) if isinstance(command, str) else None
            if execute is None:
                raise CommandError(UNKNOWN_COMMAND, f"unknown command {command!r} (commands: {', '.join(COMMANDS)})")
            return {"id": request_id, "status": "ok", **execute(self, properties)}
        except CommandError as err:
            return {"id": request_id, "status": "error", "errno": err.errno, "reason": err.reason}
        except Exception as err:  # a bug in a command must not take the agent down
            log.exception("control command failed")
            return {"id": request_id, "status": "error", "errno": BAD_REQUEST, "reason": f"internal error: {err}"}

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "agent": {
                "node_id": self.config.node_id,
                "pid": os.getpid(),
                "uptime_s": round(now - self.started_at, 3),
                "run_dir": str(self.run_dir),
                "data_dir": str(self.config.data_dir),
                "bus": self._bus_status(),
                "metrics": self.metrics.address,
            },
            "workers": [worker.status(now) for worker in self.workers.values()],
        }

    def _bus_status(self) -> dict[str, Any]:
        if self.bus is None or not self.bus.running:
            return {"running": False}
        try:
            stats = self.bus.stats(timeout_s=0.5)
        except BusError as error:
            return {"running": True, "error": str(error)}
        return {"running": True, "events": stats.events, "bytes": stats.bytes}

    def start_worker(self, worker: Worker) -> dict[str, Any]:
        if worker.process is not None:
            raise CommandError(WRONG_STATE, f"worker {worker.name!r} is {worker.state.value} (pid {worker.pid})")
        worker.quick_failures = 0
        self._start(worker, time.monotonic())
        return worker.status(time.monotonic())

    def stop_worker(self, worker: Worker) -> dict[str, Any]:
        now = time.monotonic()
        if worker.process is None:
            worker.state, worker.restart_at = State.STOPPED, None
        else:
            worker.then = "stop"
            worker.terminate(now)
        return worker.status(now)

    def restart_worker(self, worker: Worker) -> dict[str, Any]:
        now = time.monotonic()
        if worker.process is None:
            self._start(worker, now)
        else:
            worker.then = "restart"
            worker.terminate(now)
        return worker.status(now)


__all__ = ["Supervisor"]
