"""The probe worker: does nothing but stay alive and heartbeat, or misbehave on request.

It is how the supervisor is tested and benchmarked with real processes:

    --exit-after S [--exit-code N]   exit (with status N, default 0) after S seconds
    --hang-after S                   stop heartbeating after S seconds (alive but silent)
    --ignore-sigterm                 make a graceful stop impossible (SIGKILL needed)
    --serve                          answer `ping` on a ZeroMQ REP socket (svc-<name>.sock)
"""

from __future__ import annotations

import argparse
import signal
import time

import zmq

from bzzz.workers import runtime


def main(rt: runtime.WorkerRuntime) -> int:
    parser = argparse.ArgumentParser(prog=f"bzzz.workers.probe ({rt.name})")
    parser.add_argument("--exit-after", type=float)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--hang-after", type=float)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    socket = None
    if args.serve:
        socket = zmq.Context.instance().socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"ipc://{rt.run_dir / f'svc-{rt.name}.sock'}")
    started = time.monotonic()
    while not rt.stopping.is_set():
        elapsed = time.monotonic() - started
        if args.exit_after is not None and elapsed >= args.exit_after:
            return int(args.exit_code)
        if args.hang_after is not None and elapsed >= args.hang_after:
            while True:  # alive, silent, deaf to SIGTERM's polite flag
                time.sleep(3600)
        rt.heartbeat()
        if socket is not None and socket.poll(50):
            socket.send(b"pong " + socket.recv())
        elif socket is None:
            rt.stopping.wait(0.05)
    if socket is not None:
        socket.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
