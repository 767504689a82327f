"""Fifty writers in one process, for the monitor's 50-agent test: fifty identities (each its own
ed25519 key pair, node id and peer id), each with its own signed log, and one real mesh node
(`bzzz.mesh.node.MeshNode`) that serves those logs and gossips each identity's capabilities.

Why not `publish_signed` for the other 49: the gate (`check_source`, rust/core/src/envelope/gate.rs)
admits an envelope only if its signer's peer id is the gossip message's origin (`from_id`), which
py-libp2p's `Pubsub.publish` always sets to the host's own peer id and signs with the host's key.
Forty-nine foreign envelopes published that way are rejected by every receiver (`source`).
So each identity authors its own gossip message: `from_id` is its peer id and the message is
signed with its key, exactly as libp2p's message signing specifies; the node pushes it as it would
relay a message from a peer behind it. Receivers check both signatures unchanged.

The node's own identity is the first writer (its log is the node's own log); the others' logs are
in the node's replicas folder, where `bzzz.mesh.replication.Server.path_of` finds them. Each other
identity advertises the node's address (where its log is served) and the node as its connection.

Started by `fifty_node(ROOT, ...)` after `write_writers(ROOT, ...)`
(`python -m tests.monitor.fifty ROOT INTERVAL_S PORT`); it writes ROOT/node.addr once listening.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bzzz._core import KeyPair, MerkleLog, sign_envelope
from bzzz.log.events import encode_event
from bzzz.log.keys import load_key_pair, save_key_pair
from bzzz.mesh.identity import Identity
from bzzz.paths import DataDir, merkle_dir
from tests.agents import wait_until

REPO = "acme/fleet"
TASKS_PER_WRITER = 4  # each: claim, start, a plan in its discussion, execution, a PR
MANIFEST = "writers.json"
ADDR_FILE = "node.addr"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Writer:
    node_id: str
    peer_id: str
    log_key: str
    length: int


def node_dir(root: Path) -> Path:
    return root / "node"


def entries_of(node_id: str, writer: int, count: int) -> list[bytes]:
    """`count` log entries as an agent at work writes them: task events and hmmm_message entries
    for a few tasks of its own, and progress events between them."""
    out: list[bytes] = []
    ts = int(time.time() * 1000) - count
    for n in range(TASKS_PER_WRITER):
        issue = writer * TASKS_PER_WRITER + n + 1
        common = {"repo": REPO, "issue": issue, "node_id": node_id}
        out += [
            encode_event("claim_won", ts=ts + len(out), **common),
            encode_event("task_started", ts=ts + len(out) + 1, **common),
            encode_event(
                "hmmm_message",
                ts=ts + len(out) + 2,
                direction="sent",
                message_type="meta_msg",
                issue_id=f"{REPO}#{issue}",
                topic=f"bzzz/meta/issue/{REPO}#{issue}",
                msg_id=secrets.token_hex(16),
                from_node=node_id,
                query_type="plan",
                text=f"{node_id} plans issue {issue}: run the checks, then open a PR",
            ),
            encode_event("task_executed", ts=ts + len(out) + 3, ok=True, **common),
            encode_event(
                "task_finished",
                ts=ts + len(out) + 4,
                ok=True,
                status="pr",
                summary=f"Opened https://forge.example/{REPO}/pull/{issue} with the change",
                **common,
            ),
        ]
    while len(out) < count:
        out.append(encode_event("progress", ts=ts + len(out), node_id=node_id, step=len(out)))
    return out[:count]


def write_writers(root: Path, count: int, entries: int) -> list[Writer]:
    """`count` identities and their logs of `entries` entries each, in the node's data dir."""
    data = DataDir(node_dir(root))
    writers = []
    for n in range(count):
        key_pair = KeyPair.generate()
        node_id = f"fifty-{n:02d}"
        peer_id = Identity(key_pair).peer_id.to_base58()
        if n == 0:  # the node's own identity and log
            save_key_pair(data.identity, key_pair)
            final = data.log
            staging = final
        else:
            save_key_pair(root / "keys" / node_id, key_pair)
            staging = root / "staging" / node_id  # out of the replicas folder until complete
        with MerkleLog.create(merkle_dir(staging), key_pair) as log:
            batch = entries_of(node_id, n, entries)
            for first in range(0, len(batch), 500):
                log.append_batch(batch[first : first + 500])
            key, length = log.key.hex(), log.length
        if n > 0:
            data.replicas.mkdir(parents=True, exist_ok=True)
            staging.rename(data.replica(key))
        writers.append(Writer(node_id, peer_id, key, length))
    (root / MANIFEST).write_text(json.dumps([asdict(w) for w in writers]))
    return writers


@contextmanager
def fifty_node(root: Path, interval_s: float, port: int) -> Iterator[str]:
    """The node serving and advertising the writers under `root`, as a process listening on
    127.0.0.1:`port`; its address (known before it starts: a monitor may be dialling it already)."""
    addr = root / ADDR_FILE
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    with (root / "node.out").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.monitor.fifty", str(root), str(interval_s), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,  # `tests` is importable from there
        )
    try:
        wait_until(lambda: addr.exists() or process.poll() is not None, 120, "the fifty-writer node listening")
        if process.poll() is not None:
            raise AssertionError(f"the fifty-writer node exited: {(root / 'node.out').read_text()[-2000:]}")
        yield address(root, port)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


# --- the node process ----------------------------------------------------------------------


def address(root: Path, port: int) -> str:
    """The node's multiaddr: its port and its own identity's (the first writer's) peer id."""
    first = json.loads((root / MANIFEST).read_text())[0]
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{first['peer_id']}"


async def _serve(root: Path, interval_s: float, port: int) -> None:
    import trio
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

    from bzzz.mesh.node import TOPIC_CAPABILITIES, MeshNode
    from bzzz.mesh.settings import MeshSettings

    writers = [Writer(**w) for w in json.loads((root / MANIFEST).read_text())]
    data_dir = node_dir(root)
    me = Identity(load_key_pair(DataDir(data_dir).identity))
    settings = MeshSettings.model_validate(
        {
            "listen": [f"/ip4/127.0.0.1/tcp/{port}"],
            "capabilities_interval_s": interval_s,
            "discovery": {"mdns": False, "dht": False},
        }
    )
    node = MeshNode(me, settings, node_id=writers[0].node_id, log_key=lambda: writers[0].log_key, data_dir=data_dir)
    others = [(w, Identity(load_key_pair(root / "keys" / w.node_id))) for w in writers[1:]]
    async with trio.open_nursery() as nursery:
        listen = await nursery.start(node.run)
        tmp = root / (ADDR_FILE + ".tmp")
        tmp.write_text(str(listen[0]))
        tmp.replace(root / ADDR_FILE)
        pubsub = node._require_pubsub()
        seqno = time.time_ns()
        while True:
            caps = node._capabilities
            if caps is None:  # the node's first detection is under way
                await trio.sleep(0.1)
                continue
            for writer, identity in others:
                payload = caps.payload(
                    node_id=writer.node_id, peer_id=writer.peer_id, log_key_hex=writer.log_key, active_tasks=0
                )
                payload.update(
                    interval_ms=int(interval_s * 1000),
                    addrs=node.listen_addrs[:16],  # where its log is served: this node
                    connected=[node.peer_id],  # its messages reach the mesh through this node
                    log_length=writer.length,
                )
                envelope = sign_envelope(
                    identity.secret_key,
                    "capabilities",
                    TOPIC_CAPABILITIES,
                    writer.node_id,
                    payload,
                    msg_id=secrets.token_hex(16),
                    seq=node.next_seq(),
                    ttl=max(60, int(3 * interval_s)),
                )
                seqno += 1
                msg = rpc_pb2.Message(
                    data=envelope,
                    topicIDs=[TOPIC_CAPABILITIES],
                    from_id=identity.peer_id.to_bytes(),
                    seqno=seqno.to_bytes(8, "big"),
                )
                private = identity.libp2p_key_pair().private_key
                msg.signature = private.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
                msg.key = private.get_public_key().serialize()
                await pubsub.push_msg(pubsub.my_id, msg)
            await trio.sleep(interval_s)


def main() -> None:
    import trio

    root, interval_s, port = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    try:
        trio.run(_serve, root, interval_s, port)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()


__all__ = ["Writer", "address", "fifty_node", "write_writers"]
