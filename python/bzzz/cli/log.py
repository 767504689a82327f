"""`bzzz log`: create, append to, read, verify and prove an agent's signed log."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bzzz._core import CoreError, LogCorrupted, LogVerifier, MerkleLog, Proof, VerificationFailed
from bzzz.bus import BusError, service_available
from bzzz.cli.errors import USAGE, describe_os_error, fail
from bzzz.log import AgentLog, KeyFileError
from bzzz.log.events import decode_entry, describe_event
from bzzz.log.store import log_key
from bzzz.mesh.client import SERVICE as MESH
from bzzz.mesh.client import MeshClient
from bzzz.paths import DataDir, merkle_dir

app = typer.Typer(
    help="The agent's signed, append-only, Hypercore-compatible log.",
    no_args_is_help=True,
)

LogDir = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        "-d",
        envvar="BZZZ_LOG_DIR",
        help="Log directory (env BZZZ_LOG_DIR). Default: $BZZZ_DATA_DIR/log, or ~/.local/share/bzzz/log.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _dir(directory: Path | None) -> Path:
    return directory if directory is not None else DataDir.default().log


def _open(directory: Path | None, *, writable: bool) -> AgentLog:
    path = _dir(directory)
    try:
        agent_log = AgentLog.open(path, writable=writable)
    except (FileNotFoundError, KeyFileError, LogCorrupted, CoreError) as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot open the log in {path}: {err}")
    if agent_log.log.recovery:
        typer.secho(f"warning: {agent_log.log.recovery}", err=True, fg=typer.colors.YELLOW)
    return agent_log


def _summary(agent_log: AgentLog) -> dict[str, Any]:
    log = agent_log.log
    signature = log.signature()
    return {
        "path": str(agent_log.directory),
        "key": log.key.hex(),
        "public_key": log.public_key.hex(),
        "mode": "compat" if log.compat else "manifest",
        "discovery_key": log.discovery_key.hex(),
        "length": log.length,
        "byte_length": log.byte_length,
        "fork": log.fork,
        "tree_hash": log.tree_hash().hex(),
        "signature": signature.hex() if signature else None,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    width = max(map(len, summary))
    for name, value in summary.items():
        typer.echo(f"{name:<{width}}  {value if value is not None else '-'}")


@app.command()
def create(
    directory: LogDir = None,
    compat: Annotated[
        bool,
        typer.Option(
            help="Hypercore compat mode: the log's key is the writer's public key. "
            "Default: Hypercore 11's manifest mode, whose key is the hash of a manifest naming it."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Create a new log with a fresh key pair (the key file is written mode 0600)."""
    path = _dir(directory)
    try:
        with AgentLog.create(path, compat=compat) as agent_log:
            summary = _summary(agent_log)
    except FileExistsError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot create a log in {path}: {describe_os_error(err)}", USAGE)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(summary)


@app.command()
def append(
    entries: Annotated[list[str] | None, typer.Argument(help="Entries to append, one per argument.")] = None,
    directory: LogDir = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Append each line of standard input.")] = False,
    event: Annotated[str | None, typer.Option(help="Wrap each entry as a JSON event of this type.")] = None,
    batch: Annotated[bool, typer.Option(help="Sign all entries once, as one batch.")] = True,
) -> None:
    """Append entries (text, or JSON events with --event) and sign them."""
    texts = list(entries or [])
    if stdin:
        texts.extend(line.rstrip("\n") for line in sys.stdin)
    if not texts:
        fail("nothing to append: give entries as arguments or use --stdin", USAGE)
    from bzzz.log.events import encode_event

    data = [encode_event(event, text=t) if event else t.encode() for t in texts]
    with _open(directory, writable=True) as agent_log:
        first = agent_log.log.length
        if batch:
            length = agent_log.log.append_batch(data)
        else:
            for item in data:
                length = agent_log.log.append(item)
    typer.echo(f"appended entries {first}..{length - 1}; length is now {length}")


KeyArg = Annotated[
    str | None,
    typer.Argument(
        help="A log's key (64 hex digits, as peers advertise it): this agent's replica of it, or its own "
        "log. Without it: the log in --dir.",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="BZZZ_DATA_DIR",
        help="The agent's data dir, where replicas are kept (env BZZZ_DATA_DIR).",
        show_default=False,
    ),
]


def _by_key(key: str, data_dir: Path | None) -> Path:
    """Where log `key` is kept here: the agent's own log, or its replica of someone else's."""
    try:
        wanted = bytes.fromhex(key)
        if len(wanted) != 32:
            raise ValueError
    except ValueError:
        fail(f"a log key is 64 hex digits, got {key!r}", 2)
    root = DataDir(data_dir) if data_dir is not None else DataDir.default()
    if log_key(root.log) == wanted:
        return merkle_dir(root.log)
    path = merkle_dir(root.replica(key))
    if not (path / "header").exists():
        fail(f"no copy of log {key} in {root.root}: replicate it first (`bzzz log replicate {key}`)")
    return path


def _print_entry(index: int, value: Any, as_json: bool) -> None:
    if as_json:
        shown = value.hex() if isinstance(value, bytes) else value
        typer.echo(json.dumps({"index": index, "entry": shown}, ensure_ascii=False))
    elif isinstance(value, dict):
        typer.echo(f"#{index:<6} {describe_event(value)}")
    elif isinstance(value, str):
        typer.echo(f"#{index:<6} {value}")
    else:
        typer.echo(f"#{index:<6} <{len(value)} bytes> {value[:32].hex()}")


@app.command()
def show(
    key: KeyArg = None,
    directory: LogDir = None,
    data_dir: DataDirOption = None,
    start: Annotated[
        int | None, typer.Option("--from", min=0, help="First entry to print (default 0).", show_default=False)
    ] = None,
    end: Annotated[int | None, typer.Option("--to", min=0, help="Stop before this entry.")] = None,
    tail: Annotated[int | None, typer.Option(min=0, help="Print only the last N entries.")] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing entries as they arrive (with KEY: asks the agent's mesh worker to follow the log too).",
        ),
    ] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="The agent's run dir, for --follow with KEY (default <data dir>/run).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Print a log's key, signed state and entries, events decoded (execution, discussion)."""
    if tail is not None and (start is not None or end is not None):
        fail("--tail cannot be combined with --from or --to", USAGE)
    if start is not None and end is not None and end < start:
        fail(f"--to {end} is before --from {start}", USAGE)
    if key is not None:
        path = _by_key(key, data_dir)
        if follow:
            _ask_to_follow(key, run_dir or (DataDir(data_dir) if data_dir else DataDir.default()).run)
        _show_path(path, start, end, tail, follow, as_json)
        return
    with _open(directory, writable=False) as agent_log:
        _show_path(agent_log.log.path, start, end, tail, follow, as_json, summary=_summary(agent_log))


def _show_path(
    path: str | Path,
    start: int | None,
    end: int | None,
    tail: int | None,
    follow: bool,
    as_json: bool,
    summary: dict[str, Any] | None = None,
) -> None:
    with MerkleLog.open(path) as opened:
        length = opened.length
        if tail is not None:
            start = max(length - tail, 0)
        start = start or 0
        if start > length and not follow:  # with --follow, entries yet to come may be asked for
            fail(f"--from {start} is past the end of the log: it has {length} entries", USAGE)
        rows = [(i, decode_entry(opened.get(i))) for i in range(start, length if end is None else min(end, length))]
        if summary is None:
            summary = {
                "key": opened.key.hex(),
                "public_key": opened.public_key.hex(),
                "length": length,
                "tree_hash": opened.tree_hash().hex(),
                "path": str(path),
            }
    if not as_json:
        _print_summary(summary)
        if rows:
            typer.echo("")
    for index, value in rows:
        _print_entry(index, value, as_json)
    if not follow:
        return
    shown = rows[-1][0] + 1 if rows else max(start, length)
    try:
        while True:  # a replica grows as the mesh worker fetches; our own log as workers append
            time.sleep(0.5)
            with MerkleLog.open(path) as opened:
                for index in range(shown, opened.length):
                    _print_entry(index, decode_entry(opened.get(index)), as_json)
                shown = max(shown, opened.length)
    except KeyboardInterrupt:
        pass


def _ask_to_follow(key: str, run_dir: Path) -> None:
    if not service_available(run_dir, MESH):
        typer.secho(
            f"warning: no mesh worker in {run_dir}: showing the copy as it is", err=True, fg=typer.colors.YELLOW
        )
        return
    try:
        job = MeshClient(run_dir, timeout_s=5.0).replicate(key, follow=True, timeout_s=30.0)
    except BusError as err:
        typer.secho(
            f"warning: the mesh worker did not take the log on ({err}): showing the copy as it is",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return
    if job["state"] == "failed":
        typer.secho(f"warning: {job['error']}", err=True, fg=typer.colors.YELLOW)


@app.command()
def verify(
    key: KeyArg = None, directory: LogDir = None, data_dir: DataDirOption = None, as_json: AsJson = False
) -> None:
    """Re-hash every entry and check every signature with the writer's public key; exit 1 if anything is wrong."""
    if key is not None:
        path = _by_key(key, data_dir)
        started = time.perf_counter()
        try:
            with MerkleLog.open(path) as opened:
                opened.verify()
                summary = {
                    "key": opened.key.hex(),
                    "public_key": opened.public_key.hex(),
                    "length": opened.length,
                    "byte_length": opened.byte_length,
                    "tree_hash": opened.tree_hash().hex(),
                    "path": str(path),
                }
        except (LogCorrupted, VerificationFailed) as err:
            fail(f"verification failed: {err}")
        seconds = time.perf_counter() - started
    else:
        with _open(directory, writable=False) as agent_log:
            started = time.perf_counter()
            try:
                agent_log.log.verify()
            except (LogCorrupted, VerificationFailed) as err:
                fail(f"verification failed: {err}")
            seconds = time.perf_counter() - started
            summary = _summary(agent_log)
    if as_json:
        typer.echo(json.dumps({"ok": True, "seconds": seconds, **summary}))
    else:
        typer.echo(
            f"ok: {summary['length']} entries, {summary['byte_length']} bytes verified "
            f"against key {summary['key']} in {seconds:.3f}s"
        )


@app.command()
def replicate(
    key: Annotated[str, typer.Argument(help="The log's key (64 hex digits), as its writer advertises it.")],
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer",
            help="Fetch from this peer (multiaddr with "
            "/p2p/<id>, or a peer id); repeat. Default: whoever advertises "
            "the log or a replica of it.",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep the copy up to date from now on (also after the agent restarts).")
    ] = False,
    data_dir: DataDirOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="The agent's run dir (default <data dir>/run).")] = None,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for the copy.")] = 600.0,
    as_json: AsJson = False,
) -> None:
    """Copy another agent's log here by its key, over the mesh, verifying every entry.

    Done by this agent's mesh worker; the copy is kept in <data dir>/replicas/KEY, resumes where it
    stopped, and is served to peers in turn."""
    directory = run_dir or (DataDir(data_dir) if data_dir else DataDir.default()).run
    if not service_available(directory, MESH):
        fail(f"no mesh worker is running in {directory}; replication is done by a running agent")
    try:
        job = MeshClient(directory, timeout_s=5.0).replicate(key, peer or [], follow=follow, timeout_s=timeout)
    except BusError as err:
        fail(f"the mesh worker refused: {err}")
    if as_json:
        typer.echo(json.dumps(job))
    if job["state"] == "failed":
        fail(job["error"])
    if job["state"] == "running":
        fail(f"still copying after {timeout:g} s; it goes on in the agent (see `bzzz log show {key}`)")
    if not as_json:
        for problem in job.get("problems") or []:
            typer.secho(f"warning: {problem}", err=True, fg=typer.colors.YELLOW)
        following = "; following it" if job.get("following") else ""
        typer.echo(f"ok: {job['length']} entries of {key} verified and kept, from {job['peer']}{following}")


@app.command()
def proof(index: Annotated[int, typer.Argument(min=0, help="Entry to prove.")], directory: LogDir = None) -> None:
    """Print a proof of one entry (hypercore's proof shape, JSON) that anyone can check with the key."""
    with _open(directory, writable=False) as agent_log:
        try:
            typer.echo(agent_log.log.proof(index).to_json())
        except IndexError as err:
            fail(str(err))


@app.command("check-proof")
def check_proof(
    public_key: Annotated[str, typer.Argument(help="The writer's public key, hex (as `bzzz log show` prints it).")],
    proof_file: Annotated[typer.FileText, typer.Argument(help="Proof JSON file, or - for stdin.")],
) -> None:
    """Check a proof with nothing but the writer's public key; print the proven entry."""
    try:
        parsed = Proof.from_json(proof_file.read())
        # A manifest-mode proof carries its manifest; without one it is a compat-mode proof.
        verifier = LogVerifier(bytes.fromhex(public_key), compat=parsed.manifest is None)
        value = verifier.verify_proof(parsed)
    except ValueError as err:  # CoreError and VerificationFailed are ValueErrors
        fail(str(err))
    typer.echo(f"ok: entry {parsed.index} of {parsed.length} in log {verifier.key.hex()} is signed by {public_key}")
    typer.echo(value.decode(errors="replace"))


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", "-d", help="Where to put the demo log. Default: a new folder under ./demo-data."),
    ] = None,
    entries: Annotated[int, typer.Option(min=1, help="Entries in the batched part.")] = 100_000,
) -> None:
    """Run the log end to end: create, append, crash a writer, recover, verify, prove."""
    from bzzz.cli import log_demo

    try:
        if directory is None:
            Path("demo-data").mkdir(exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="log-", dir="demo-data"))
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"cannot use {directory or 'demo-data'} for the demo: {describe_os_error(err)}", USAGE)
    raise typer.Exit(log_demo.run(directory / "log", entries))
