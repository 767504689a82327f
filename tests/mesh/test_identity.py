"""The agent's network identity: one key file, the same peer id on every start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from libp2p.peer.id import ID

from bzzz.log.keys import KeyFileError
from bzzz.mesh.identity import load_or_create
from bzzz.paths import DataDir


def test_the_first_start_creates_a_private_key_and_later_starts_reuse_it(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    assert stat.S_IMODE(DataDir(tmp_path).identity.stat().st_mode) == 0o600
    assert load_or_create(tmp_path).peer_id == first.peer_id


def test_the_peer_id_is_libp2ps_own_for_the_key(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path)
    assert ID.from_pubkey(identity.libp2p_key_pair().public_key) == identity.peer_id
    assert identity.peer_id.to_base58().startswith("12D3KooW")


def test_a_key_file_others_can_read_is_refused_not_replaced(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    DataDir(tmp_path).identity.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create(tmp_path)


def test_a_damaged_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    DataDir(tmp_path).identity.write_text("not a key\n")
    with pytest.raises(KeyFileError, match="valid secret key"):
        load_or_create(tmp_path)
