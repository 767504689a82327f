"""The probe worker: does nothing but stay alive and heartbeat, or misbehave on request.

It is how the supervisor is tested and benchmarked with real processes:

    --exit-after S [--exit-code N]   exit (with status N, default 0) after S seconds
    --hang-after S                   stop heartbeating after S seconds (alive but silent)
    --ignore-sigterm                 make a graceful stop impossible (SIGKILL needed)
    --serve                          answer `ping` on a ZeroMQ REP socket (svc-<name>.sock)
    --executor S                     serve the `executor` service: every task "succeeds"
                                     after S seconds (for the github worker's tests)
    --append N [--append-every S]    append N entries to the agent's log through the log
                                     service, one every S seconds, via its durable outbox:
                                     killed at any point, it goes on where it was
"""

from __future__ import annotations

import argparse
import signal
import time

import zmq

from bzzz import runtime


def main(rt: runtime.WorkerRuntime) -> int:
    parser = argparse.ArgumentParser(prog=f"bzzz.testing.probe ({rt.name})")
    parser.add_argument("--exit-after", type=float)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--hang-after", type=float)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--executor", type=float, default=None, metavar="S")
    parser.add_argument("--append", type=int, default=0, metavar="N")
    parser.add_argument("--append-every", type=float, default=0.0, metavar="S")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    socket = None
    if args.serve:
        socket = zmq.Context.instance().socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"ipc://{rt.run_dir / f'svc-{rt.name}.sock'}")
    appender = None
    if args.append:
        # Imported only when asked for: without --append the probe starts as fast as a worker
        # can, and the supervisor's restart benchmark measures the supervisor, not imports.
        from bzzz.testing.probe_append import Appender

        appender = Appender(rt, args.append, args.append_every)
    executor = None
    if args.executor is not None:
        from bzzz.testing.probe_executor import serve_executor

        executor = serve_executor(rt, args.executor)
    started = time.monotonic()
    while not rt.stopping.is_set():
        elapsed = time.monotonic() - started
        if args.exit_after is not None and elapsed >= args.exit_after:
            return int(args.exit_code)
        if args.hang_after is not None and elapsed >= args.hang_after:
            while True:  # alive, silent, deaf to SIGTERM's polite flag
                time.sleep(3600)
        rt.heartbeat()
        idle_s = 0.05 if appender is None else min(0.05, appender.step())
        if executor is not None:
            executor.serve_one(idle_s)
            continue
        if socket is not None and socket.poll(int(idle_s * 1000)):
            socket.send(b"pong " + socket.recv())
        elif socket is None and idle_s > 0:
            rt.stopping.wait(idle_s)
    if socket is not None:
        socket.close()
    if appender is not None:
        appender.close()
    if executor is not None:
        executor.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
