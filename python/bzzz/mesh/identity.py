"""The agent's network identity: one ed25519 key pair, kept in the data dir.

The same key is the libp2p host key (so the peer id stays the same across restarts and
peers can keep addressing it) and the key that signs every gossip envelope. Using one key
for both is what lets a receiver insist that the envelope's signer *is* the peer the
message came from (`Gate.admit(source_peer=...)`): nobody can sign in another's name, and
nobody can relay an old envelope of another's as if it were their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair as Libp2pKeyPair
from libp2p.peer.id import ID

from bzzz._core import KeyPair, peer_id
from bzzz.log.keys import load_key_pair, save_key_pair
from bzzz.paths import DataDir


@dataclass(frozen=True)
class Identity:
    key_pair: KeyPair

    @property
    def peer_id(self) -> ID:
        return ID(peer_id(self.key_pair.public_key))

    @property
    def secret_key(self) -> bytes:
        return self.key_pair.secret_key

    def libp2p_key_pair(self) -> Libp2pKeyPair:
        private = Ed25519PrivateKey.from_bytes(self.key_pair.seed)
        return Libp2pKeyPair(private, private.get_public_key())


def load_or_create(data_dir: Path) -> Identity:
    """The identity in `data_dir`, created (mode 0600) on first use.

    Raises `bzzz.log.keys.KeyFileError` for a key file that is unreadable, malformed or
    readable by others: a silently regenerated identity would change the peer id and
    orphan everything peers know about this agent."""
    path = DataDir(data_dir).identity
    if not path.exists():
        try:
            save_key_pair(path, KeyPair.generate())
        except FileExistsError:
            pass  # another process created it first; use theirs
    return Identity(load_key_pair(path))
