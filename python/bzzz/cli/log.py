"""`bzzz log`: create, append to, read, verify and prove an agent's signed log."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bzzz._core import CoreError, LogCorrupted, LogVerifier, Proof, VerificationFailed
from bzzz.log import AgentLog, KeyFileError, default_data_dir

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
        help="Log directory (env BZZZ_LOG_DIR). Default: $BZZZ_DATA_DIR/log, "
        "or ~/.local/share/bzzz/log.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _dir(directory: Path | None) -> Path:
    return directory if directory is not None else default_data_dir() / "log"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _open(directory: Path | None, *, writable: bool) -> AgentLog:
    path = _dir(directory)
    try:
        agent_log = AgentLog.open(path, writable=writable)
    except (FileNotFoundError, KeyFileError, LogCorrupted, CoreError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"cannot open the log in {path}: {err}")
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
    compat: Annotated[bool, typer.Option(
        help="Hypercore compat mode: the log's key is the writer's public key. "
        "Default: Hypercore 11's manifest mode, whose key is the hash of a manifest naming it.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a new log with a fresh key pair (the key file is written mode 0600)."""
    path = _dir(directory)
    try:
        with AgentLog.create(path, compat=compat) as agent_log:
            summary = _summary(agent_log)
    except FileExistsError as err:
        _fail(str(err))
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
        _fail("nothing to append: give entries as arguments or use --stdin", code=2)
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


@app.command()
def show(
    directory: LogDir = None,
    start: Annotated[int, typer.Option("--from", help="First entry to print.")] = 0,
    end: Annotated[int | None, typer.Option("--to", help="Stop before this entry.")] = None,
    tail: Annotated[int | None, typer.Option(help="Print only the last N entries.")] = None,
    as_json: AsJson = False,
) -> None:
    """Print the log's key, signed state and entries (JSON events decoded)."""
    with _open(directory, writable=False) as agent_log:
        summary = _summary(agent_log)
        if tail is not None:
            start = max(agent_log.log.length - tail, 0)
        rows = list(agent_log.entries(start, end))
    if as_json:
        for index, value in rows:
            shown = value.hex() if isinstance(value, bytes) else value
            typer.echo(json.dumps({"index": index, "entry": shown}, ensure_ascii=False))
        return
    _print_summary(summary)
    if rows:
        typer.echo("")
    for index, value in rows:
        if isinstance(value, dict):
            kind = value.get("type", "?")
            rest = {k: v for k, v in value.items() if k != "type"}
            typer.echo(f"#{index:<6} {kind:<18} {json.dumps(rest, ensure_ascii=False)}")
        elif isinstance(value, str):
            typer.echo(f"#{index:<6} {value}")
        else:
            typer.echo(f"#{index:<6} <{len(value)} bytes> {value[:32].hex()}")


@app.command()
def verify(directory: LogDir = None, as_json: AsJson = False) -> None:
    """Re-hash every entry and check every signature; exit 1 if anything is wrong."""
    with _open(directory, writable=False) as agent_log:
        started = time.perf_counter()
        try:
            agent_log.log.verify()
        except (LogCorrupted, VerificationFailed) as err:
            _fail(f"verification failed: {err}")
        seconds = time.perf_counter() - started
        summary = _summary(agent_log)
    if as_json:
        typer.echo(json.dumps({"ok": True, "seconds": seconds, **summary}))
    else:
        typer.echo(f"ok: {summary['length']} entries, {summary['byte_length']} bytes verified "
                   f"against key {summary['key']} in {seconds:.3f}s")


@app.command()
def proof(index: Annotated[int, typer.Argument(help="Entry to prove.")], directory: LogDir = None) -> None:
    """Print a proof of one entry (hypercore's proof shape, JSON) that anyone can check with the key."""
    with _open(directory, writable=False) as agent_log:
        try:
            typer.echo(agent_log.log.proof(index).to_json())
        except IndexError as err:
            _fail(str(err))


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
        _fail(str(err))
    typer.echo(f"ok: entry {parsed.index} of {parsed.length} in log {verifier.key.hex()} is signed by {public_key}")
    typer.echo(value.decode(errors="replace"))


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Option("--dir", "-d", help="Where to put the demo log. "
                                                   "Default: a new folder under ./demo-data.")] = None,
    entries: Annotated[int, typer.Option(help="Entries in the batched part.")] = 100_000,
) -> None:
    """Run the log end to end: create, append, crash a writer, recover, verify, prove."""
    from bzzz.cli import log_demo

    if directory is None:
        Path("demo-data").mkdir(exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="log-", dir="demo-data"))
    raise typer.Exit(log_demo.run(directory / "log", entries))
