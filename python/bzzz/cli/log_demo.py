"""`bzzz log demo`: the log end to end, as an operator would see it.

1. create a log with a fresh key pair and log an agent's task lifecycle, one
   signed append per event;
2. append a large batch under a single signature;
3. kill -9 a second process while it appends, and reopen: nothing signed is lost;
4. tear the tail as a crash mid-write would, and reopen: cut back and reported;
5. verify every entry and signature; prove one entry to a reader who has only
   the public key, and show that a tampered proof is refused.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bzzz._core import LogVerifier, Proof, VerificationFailed
from bzzz.log import AgentLog
from bzzz.log.events import encode_event
from bzzz.paths import merkle_dir

LIFECYCLE: list[tuple[str, dict[str, Any]]] = [
    ("agent_started", {"node_id": "demo-agent", "models": ["gemma3:270m"], "tools": ["git", "pytest"]}),
    ("task_discovered", {"repo": "demo/widgets", "issue": 1, "title": "Add a --verbose flag"}),
    ("task_claimed", {"repo": "demo/widgets", "issue": 1, "rule": "earliest assigned event wins"}),
    ("plan_posted", {"issue": 1, "text": "Add the flag to cli.py, thread it to the logger, test it."}),
    ("objection_period_closed", {"issue": 1, "objections": 0}),
    ("execution_finished", {"issue": 1, "files_changed": 2, "checks": "passed"}),
    ("pull_request_opened", {"issue": 1, "number": 2}),
]


def _step(title: str) -> None:
    typer.secho(f"\n== {title}", bold=True)


def _crash_writer(directory: Path) -> None:
    """The demo's victim: append events until it is killed."""
    agent_log = AgentLog.open(directory)
    print("ready", flush=True)
    n = 0
    while True:
        agent_log.append_event("heartbeat", n=n)
        n += 1


def run(directory: Path, batch_entries: int) -> int:
    figures: dict[str, str] = {}

    _step(f"1. create a log in {directory}")
    with AgentLog.create(directory) as agent_log:
        key = agent_log.log.key
        public_key = agent_log.log.public_key
        typer.echo(f"key            {key.hex()}  (Hypercore 11 manifest mode)")
        typer.echo(f"public key     {public_key.hex()}")
        typer.echo(f"discovery key  {agent_log.log.discovery_key.hex()}")
        for event_type, fields in LIFECYCLE:
            index = agent_log.append_event(event_type, **fields)
            typer.echo(f"#{index:<3} {event_type:<24} signed, tree {agent_log.log.tree_hash().hex()[:16]}…")

        _step(f"2. append {batch_entries:,} entries under one signature")
        batch = [encode_event("heartbeat", n=i, ts=1) for i in range(batch_entries)]
        started = time.perf_counter()
        agent_log.log.append_batch(batch)
        seconds = time.perf_counter() - started
        rate = batch_entries / seconds if seconds else float("inf")
        figures["batched append"] = f"{rate:,.0f} entries/s"
        typer.echo(
            f"{batch_entries:,} entries in {seconds:.3f}s ({rate:,.0f} entries/s); length {agent_log.log.length:,}"
        )
        length_before_crash = agent_log.log.length

    _step("3. kill -9 a writer mid-append, then reopen")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from bzzz.cli.log_demo import _crash_writer; from pathlib import Path; "
            f"_crash_writer(Path({str(directory)!r}))",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with AgentLog.open(directory) as agent_log:
        gained = agent_log.log.length - length_before_crash
        typer.echo(
            f"the killed writer had signed {gained} heartbeats; all there after reopening "
            f"({agent_log.log.recovery or 'no torn tail this time'})"
        )
        last = agent_log.log.get(agent_log.log.length - 1).decode()
        typer.echo(f"last entry: {last}")
        length = agent_log.log.length

    _step("4. tear the tail, as a crash in the middle of a write would")
    with open(merkle_dir(directory) / "data", "ab") as data:
        data.write(b'{"type":"half-writ')
    with open(merkle_dir(directory) / "signatures", "ab") as sigs:
        sigs.write(b"\x00" * 40)
    with AgentLog.open(directory) as agent_log:
        typer.echo(f"recovery: {agent_log.log.recovery}")
        if agent_log.log.length != length:
            typer.secho("the log lost signed entries", fg=typer.colors.RED)
            return 1

        _step("5. verify everything, and prove one entry to a reader with only the public key")
        started = time.perf_counter()
        agent_log.log.verify()
        seconds = time.perf_counter() - started
        figures["full verify"] = f"{agent_log.log.length:,} entries in {seconds:.3f}s"
        typer.echo(f"verified {agent_log.log.length:,} entries and every stored signature in {seconds:.3f}s")
        proof_json = agent_log.log.proof(3).to_json()
        summary_length = agent_log.log.length
        byte_length = agent_log.log.byte_length

    reader = LogVerifier(public_key)
    assert reader.key == key
    value = reader.verify_proof(Proof.from_json(proof_json))
    typer.echo(f"proof of entry 3 ({len(proof_json)} bytes of JSON) checks out: {value.decode()}")
    tampered = proof_json.replace(b"plan_posted".hex(), b"plan_pasted".hex())
    try:
        reader.verify_proof(Proof.from_json(tampered))
    except VerificationFailed as err:
        typer.echo(f"the same proof with one word changed is refused: {err}")
    else:
        typer.secho("a tampered proof was accepted", fg=typer.colors.RED)
        return 1

    _step("summary")
    typer.echo(f"{'log':<15}{directory}")
    typer.echo(f"{'key':<15}{key.hex()}")
    typer.echo(f"{'public key':<15}{public_key.hex()}")
    typer.echo(f"{'entries':<15}{summary_length:,} ({byte_length:,} bytes)")
    for name, figure in figures.items():
        typer.echo(f"{name:<15}{figure}")
    bzzz = shutil.which("bzzz") or str(Path(sys.executable).parent / "bzzz")
    typer.echo(f"inspect it with: {bzzz} log show --tail 5 --dir {directory}")
    return 0
