"""`/bzzz/hypercore/1.0.0`: a libp2p stream protocol to replicate signed logs by key.

Every agent serves its own log and the replicas it holds (so a log outlives its writer's
downtime). One request per stream; frames are a 4-byte big-endian length and a MessagePack body.

    → Info(key)                    ← Head | Error
    → Get(key, start, end=None)    ← Chunk* Done | Error      entries [start, min(end, head.length))
    → Follow(key, since)           ← Head ...                 a new Head whenever the log grows past `since`

A `Head` is the writer's signed state: public key and mode (so the receiver can check that it
hashes to the key it asked for), length, fork, signature (as Hypercore stores it) and the tree's
roots. A `Chunk` carries up to `CHUNK` entries (and no more than `CHUNK_BYTES` of them past its
first, so large entries never make a frame over `MAX_FRAME`), each with the Merkle nodes that prove
it against the head the answer began with (one snapshot of the log for the whole answer). The
receiver checks everything (`bzzz.log.replica`); the sender is trusted for nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from bzzz._core import MerkleLog
from bzzz.log.replica import Head, Replica, ReplicationRefused
from bzzz.mesh.metrics import MeshMetrics
from bzzz.paths import DataDir, merkle_dir

log = structlog.get_logger("bzzz.mesh.replication")

PROTOCOL = TProtocol("/bzzz/hypercore/1.0.0")
CHUNK = 256
CHUNK_BYTES = 4 << 20
MAX_FRAME = 16 << 20
FOLLOW_POLL_S = 0.25
_NodeTuple = tuple[int, int, bytes]


class Info(msgspec.Struct, tag="info", frozen=True):
    key: bytes


class Get(msgspec.Struct, tag="get", frozen=True):
    key: bytes
    start: int
    end: int | None = None


class Follow(msgspec.Struct, tag="follow", frozen=True):
    key: bytes
    since: int


class HeadMsg(msgspec.Struct, tag="head", frozen=True):
    public_key: bytes
    compat: bool
    length: int
    fork: int
    signature: bytes
    roots: list[tuple[int, int, bytes]]
    manifest: bytes | None = None

    def head(self) -> Head:
        return Head(
            self.public_key,
            self.compat,
            self.length,
            self.fork,
            self.signature,
            [tuple(r) for r in self.roots],  # type: ignore[misc]
            self.manifest,
        )


class Chunk(msgspec.Struct, tag="chunk", frozen=True):
    entries: list[tuple[int, bytes, list[tuple[int, int, bytes]]]]


class Done(msgspec.Struct, tag="done", frozen=True):
    pass


class Error(msgspec.Struct, tag="error", frozen=True):
    message: str


Request = Info | Get | Follow
Answer = HeadMsg | Chunk | Done | Error
_requests = msgspec.msgpack.Decoder(Request)
_answers = msgspec.msgpack.Decoder(Answer)
_encode = msgspec.msgpack.Encoder().encode


# --- framing ------------------------------------------------------------------------------


async def _read_exactly(stream: Any, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        piece = await stream.read(n - len(out))
        if not piece:
            raise EOFError("the stream ended")
        out += piece
    return bytes(out)


async def write_frame(stream: Any, message: msgspec.Struct) -> None:
    body = _encode(message)
    await stream.write(struct.pack(">I", len(body)) + body)


async def read_frame(stream: Any, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
    (size,) = struct.unpack(">I", await _read_exactly(stream, 4))
    if size > MAX_FRAME:
        raise ReplicationRefused("protocol", f"a frame of {size} bytes (at most {MAX_FRAME})")
    try:
        return decoder.decode(await _read_exactly(stream, size))
    except msgspec.DecodeError as err:
        raise ReplicationRefused("protocol", f"not a frame of this protocol: {err}") from None


# --- serving ------------------------------------------------------------------------------


def head_of(opened: MerkleLog) -> HeadMsg:
    return HeadMsg(
        opened.public_key,
        opened.compat,
        opened.length,
        opened.fork,
        opened.signature() or b"",
        [tuple(r) for r in opened.roots()],  # type: ignore[misc]
        opened.manifest,
    )


class Server:
    """Serves this agent's own log and its replicas, each opened read-only per request (the log
    worker and the replicator keep writing meanwhile; an answer is one snapshot)."""

    def __init__(self, data_dir: Path, metrics: MeshMetrics, own_key: Callable[[], str | None]) -> None:
        self.data_dir = data_dir
        self.metrics = metrics
        self.own_key = own_key  # the agent's log key (hex), as its capability broadcasts say it

    def path_of(self, key: bytes) -> Path | None:
        if self.own_key() == key.hex():
            return merkle_dir(DataDir(self.data_dir).log)
        held = merkle_dir(DataDir(self.data_dir).replica(key.hex()))
        return held if (held / "header").exists() else None

    async def handle(self, stream: Any) -> None:
        try:
            request = await read_frame(stream, _requests)
            path = self.path_of(request.key)
            if path is None:
                await write_frame(stream, Error(f"no log {request.key.hex()} here"))
                return
            match request:
                case Info():
                    with MerkleLog.open(path) as opened:
                        await write_frame(stream, head_of(opened))
                case Get(start=start, end=end):
                    await self._get(stream, path, start, end)
                case Follow(since=since):
                    await self._follow(stream, path, since)
        except (EOFError, ReplicationRefused, trio.BrokenResourceError, trio.ClosedResourceError) as err:
            log.info("replication stream ended", error=str(err)[:200])
        except Exception as err:  # a peer's stream must never take the node down
            log.warning("replication stream failed", error=repr(err)[:300])
        finally:
            try:
                await stream.close()
            except Exception:
                pass

    async def _get(self, stream: Any, path: Path, start: int, end: int | None) -> None:
        with MerkleLog.open(path) as opened:
            head = head_of(opened)
            stop = head.length if end is None else max(start, min(end, head.length))
            await write_frame(stream, head)

            def chunk(first: int) -> Chunk:
                # Up to CHUNK entries, and no more than CHUNK_BYTES of them past the first: a
                # log of large entries must not make a frame the receiver refuses (MAX_FRAME).
                entries: list[tuple[int, bytes, list[_NodeTuple]]] = []
                size = 0
                for i in range(first, min(first + CHUNK, stop)):
                    value = opened.get(i)
                    if entries and size + len(value) > CHUNK_BYTES:
                        break
                    entries.append((i, value, [tuple(n) for n in opened.proof(i).nodes]))  # type: ignore[misc]
                    size += len(value)
                return Chunk(entries)

            first = max(0, start)
            while first < stop:
                piece = await trio.to_thread.run_sync(chunk, first)
                await write_frame(stream, piece)
                self.metrics.replication_served.inc(len(piece.entries))
                first += len(piece.entries)
        await write_frame(stream, Done())

    async def _follow(self, stream: Any, path: Path, since: int) -> None:
        while True:
            with MerkleLog.open(path) as opened:
                if opened.length > since:
                    since = opened.length
                    await write_frame(stream, head_of(opened))
            await trio.sleep(FOLLOW_POLL_S)


# --- replicating --------------------------------------------------------------------------

NewStream = Callable[[ID], Awaitable[Any]]


async def head(new_stream: NewStream, peer: ID, key: bytes) -> Head:
    stream = await new_stream(peer)
    try:
        await write_frame(stream, Info(key))
        answer = await read_frame(stream, _answers)
    finally:
        await stream.close()
    if isinstance(answer, Error):
        raise LookupError(answer.message)
    if not isinstance(answer, HeadMsg):
        raise ReplicationRefused("protocol", f"expected a head, got {type(answer).__name__}")
    return answer.head()


async def fetch(new_stream: NewStream, peer: ID, replica: Replica, metrics: MeshMetrics) -> int:
    """Bring `replica` up to the peer's head; the new length. ReplicationRefused (after counting
    it) for an answer that does not verify, or that ends early; what verified before stays staged."""
    try:
        return await _fetch(new_stream, peer, replica, metrics)
    except ReplicationRefused as refused:
        metrics.replication_refused.labels(refused.what).inc()
        log.warning(
            "replication refused",
            peer=str(peer),
            key=replica.key.hex()[:16],
            what=refused.what,
            detail=str(refused)[:300],
        )
        raise


async def _fetch(new_stream: NewStream, peer: ID, replica: Replica, metrics: MeshMetrics) -> int:
    stream = await new_stream(peer)
    try:
        start = replica.staged_to if replica.log is not None else 0
        await write_frame(stream, Get(replica.key, start))
        first = await read_frame(stream, _answers)
        if isinstance(first, Error):
            raise LookupError(first.message)
        if not isinstance(first, HeadMsg):
            raise ReplicationRefused("protocol", f"expected a head, got {type(first).__name__}")
        signed = first.head()
        if replica.log is None:
            replica.open(signed)
        tree = replica.check_head(signed)
        expected = start
        while True:
            try:
                answer = await read_frame(stream, _answers)
            except EOFError:
                raise ReplicationRefused(
                    "truncated", f"the answer ended at entry {expected} of {signed.length}"
                ) from None
            if isinstance(answer, Done):
                break
            if not isinstance(answer, Chunk):
                raise ReplicationRefused("protocol", f"expected entries, got {type(answer).__name__}")
            indexes = [e[0] for e in answer.entries]
            if indexes != list(range(expected, expected + len(indexes))):
                raise ReplicationRefused("range", f"entries {indexes[:3]}... where {expected} was next")
            await trio.to_thread.run_sync(replica.take, tree, answer.entries)
            expected += len(indexes)
            metrics.replication_fetched.inc(len(indexes))
        if expected < signed.length:
            raise ReplicationRefused("truncated", f"the answer ended at entry {expected} of {signed.length}")
        return await trio.to_thread.run_sync(replica.commit, signed)
    finally:
        try:
            await stream.close()
        except Exception:
            pass


async def follow(
    new_stream: NewStream, peer: ID, replica: Replica, fetch_growth: Callable[[ID, Replica], Awaitable[int]]
) -> None:
    """Keep `replica` up with the peer's log as it grows, until cancelled or the stream ends;
    each growth is fetched with `fetch_growth` (`fetch`, serialized with other transfers)."""
    stream = await new_stream(peer)
    try:
        await write_frame(stream, Follow(replica.key, replica.length))
        while True:
            answer = await read_frame(stream, _answers)
            if isinstance(answer, Error):
                raise LookupError(answer.message)
            if isinstance(answer, HeadMsg) and answer.length > replica.length:
                await fetch_growth(peer, replica)
    finally:
        try:
            await stream.close()
        except Exception:
            pass
