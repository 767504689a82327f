"""Replicas: copies of someone else's Merkle log that grow only by what its writer signed.

A replica holds no secret key. It is fed entries and the writer's signature by
peers (`append_verified`), checks that the signature covers the tree those
entries make, and only then writes. Whatever a bad peer sends, the replica is
never corrupted: a refused update leaves every byte of it as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz._core import CoreError, KeyPair, LogVerifier, MerkleLog, VerificationFailed
from tests.gil import ticks_of_another_thread_during

MODES = pytest.mark.parametrize("compat", [False, True], ids=["manifest", "compat"])


def entries(n: int, start: int = 0, tag: str = "entry") -> list[bytes]:
    return [f"{tag} {i}".encode() for i in range(start, start + n)]


def update(writer: MerkleLog, start: int) -> tuple[list[bytes], bytes]:
    """What a peer sends a replica that has `start` entries: the rest, and the newest signature."""
    signature = writer.signature()
    assert signature is not None
    return [writer.get(i) for i in range(start, writer.length)], signature


def files_of(log: MerkleLog) -> dict[str, bytes]:
    """Every file of the log's directory, by name."""
    return {p.name: p.read_bytes() for p in sorted(Path(log.path).iterdir())}


def assert_same_log(replica: MerkleLog, writer: MerkleLog) -> None:
    assert replica.key == writer.key
    assert replica.length == writer.length
    assert replica.byte_length == writer.byte_length
    assert replica.tree_hash() == writer.tree_hash()
    assert replica.roots() == writer.roots()
    assert replica.signature() == writer.signature()


@pytest.fixture
def key_pair() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(params=[False, True], ids=["manifest", "compat"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, key_pair: KeyPair) -> Iterator[tuple[MerkleLog, MerkleLog]]:
    """A writer with 5 entries and a replica holding the same 5."""
    compat: bool = request.param
    with (
        MerkleLog.create(tmp_path / "w", key_pair, compat=compat) as writer,
        MerkleLog.create_replica(tmp_path / "r", key_pair.public_key, compat=compat) as replica,
    ):
        writer.append_batch(entries(5))
        assert replica.append_verified(*update(writer, 0)) == 5
        yield writer, replica


# --- a replica becomes the writer's log -----------------------------------------


@MODES
def test_a_replica_fed_batch_by_batch_is_the_writers_log(tmp_path: Path, key_pair: KeyPair, compat: bool) -> None:
    with (
        MerkleLog.create(tmp_path / "w", key_pair, compat=compat) as writer,
        MerkleLog.create_replica(tmp_path / "r", key_pair.public_key, compat=compat) as replica,
    ):
        assert replica.key == writer.key
        assert replica.length == 0 and replica.signature() is None
        for start in range(0, 10_000, 500):
            writer.append_batch(entries(500, start))
            assert replica.append_verified(*update(writer, start)) == start + 500
        assert_same_log(replica, writer)
        assert replica.length == 10_000
        verifier = LogVerifier(key_pair.public_key, compat=compat)
        assert verifier.key == replica.key
        for i in (0, 1, 499, 500, 4_321, 8_191, 8_192, 9_999):
            assert replica.proof(i).to_json() == writer.proof(i).to_json()
            assert verifier.verify_proof(replica.proof(i)) == f"entry {i}".encode()
        replica.verify()


@MODES
def test_a_replica_knows_what_it_is(tmp_path: Path, key_pair: KeyPair, compat: bool) -> None:
    with (
        MerkleLog.create(tmp_path / "w", key_pair, compat=compat) as writer,
        MerkleLog.create_replica(tmp_path / "r", key_pair.public_key, compat=compat) as replica,
    ):
        assert (replica.replica, replica.writable) == (True, True)
        assert (writer.replica, writer.writable) == (False, True)
        assert replica.compat is compat
        assert replica.public_key == key_pair.public_key
        assert replica.manifest == writer.manifest
        assert replica.discovery_key == writer.discovery_key
        assert replica.key == (key_pair.public_key if compat else writer.key)


def test_nothing_new_with_the_current_signature_changes_nothing(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    _, signature = update(writer, 5)
    before = files_of(replica)
    assert replica.append_verified([], signature) == 5
    assert files_of(replica) == before


def test_a_replica_carries_on_after_reopening(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    path = replica.path
    replica.close()
    writer.append_batch(entries(7, 5))
    with MerkleLog.open_replica(path, sync=True) as replica:
        assert replica.replica and replica.recovery is None
        assert replica.append_verified(*update(writer, 5)) == 12
        assert_same_log(replica, writer)
        replica.verify()


def test_a_writers_log_opened_as_a_replica_grows_by_verified_appends_only(
    tmp_path: Path, key_pair: KeyPair, pair: tuple[MerkleLog, MerkleLog]
) -> None:
    writer, _ = pair
    compat = writer.compat
    writer.close()
    with MerkleLog.create(tmp_path / "w2", key_pair, compat=compat) as ahead:
        ahead.append_batch(entries(9))
        with MerkleLog.open_replica(tmp_path / "w") as copy:
            assert copy.replica and copy.length == 5
            with pytest.raises(CoreError, match="replica"):
                copy.append(b"x")
            assert copy.append_verified(*update(ahead, 5)) == 9
            assert_same_log(copy, ahead)


# --- a bad peer cannot corrupt it -----------------------------------------------


def assert_refused(replica: MerkleLog, batch: list[bytes], signature: bytes) -> None:
    length, tree_hash, before = replica.length, replica.tree_hash(), files_of(replica)
    with pytest.raises(VerificationFailed):
        replica.append_verified(batch, signature)
    assert replica.length == length
    assert replica.tree_hash() == tree_hash
    assert files_of(replica) == before


def test_a_tampered_entry_is_refused(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append_batch(entries(4, 5))
    batch, signature = update(writer, 5)
    for i in range(len(batch)):
        tampered = list(batch)
        tampered[i] = b"X" + tampered[i][1:]
        assert_refused(replica, tampered, signature)
    assert_refused(replica, batch[:-1], signature)
    assert_refused(replica, [*batch, b"one more"], signature)
    assert_refused(replica, batch[::-1], signature)
    assert replica.append_verified(batch, signature) == 9


def test_a_stale_signature_is_refused(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    _, stale = update(writer, 5)
    writer.append_batch(entries(3, 5))
    batch, signature = update(writer, 5)
    assert_refused(replica, batch, stale)
    assert_refused(replica, batch[:1], signature)
    assert_refused(replica, [], signature)


def test_a_damaged_or_misshapen_signature_is_refused(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append_batch(entries(3, 5))
    batch, signature = update(writer, 5)
    assert len(signature) == (64 if writer.compat else 68)
    for i in range(len(signature)):
        damaged = bytearray(signature)
        damaged[i] ^= 0x01
        assert_refused(replica, batch, bytes(damaged))
    for misshapen in (b"", signature[:-1], signature + b"\0", signature[2:66], b"\x01\x00" + signature + b"\0\0"):
        if misshapen != signature:
            assert_refused(replica, batch, misshapen)
    assert replica.append_verified(batch, signature) == 8


def test_another_writers_signature_is_refused(tmp_path: Path, pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append_batch(entries(3, 5))
    batch, _ = update(writer, 5)
    with MerkleLog.create(tmp_path / "stranger", KeyPair.generate(), compat=writer.compat) as stranger:
        stranger.append_batch(entries(8))
        assert stranger.tree_hash() == writer.tree_hash()
        assert_refused(replica, batch, update(stranger, 0)[1])


def test_a_fork_is_refused(tmp_path: Path, key_pair: KeyPair, pair: tuple[MerkleLog, MerkleLog]) -> None:
    """A second log under the same key pair, with other entries, signs trees the replica never had."""
    writer, replica = pair
    writer.append_batch(entries(3, 5))
    with MerkleLog.create(tmp_path / "fork", key_pair, compat=writer.compat) as fork:
        fork.append_batch(entries(8, tag="forked"))
        fork_batch, fork_signature = update(fork, 5)
        batch, signature = update(writer, 5)
        assert_refused(replica, fork_batch, fork_signature)
        assert_refused(replica, batch, fork_signature)
        assert_refused(replica, fork_batch, signature)
        assert replica.append_verified(batch, signature) == 8
        assert_same_log(replica, writer)


def test_entries_must_be_bytes(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append(b"x")
    _, signature = update(writer, 5)
    before = files_of(replica)
    with pytest.raises(TypeError, match="entries must be bytes"):
        replica.append_verified(["x"], signature)  # type: ignore[list-item]
    assert files_of(replica) == before


# --- who may do what ------------------------------------------------------------


def test_a_replica_cannot_sign_and_a_writer_takes_no_signatures(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append(b"x")
    batch, signature = update(writer, 5)
    with pytest.raises(CoreError, match="replica"):
        replica.append(b"x")
    with pytest.raises(CoreError, match="replica"):
        replica.append_batch([b"x"])
    with pytest.raises(CoreError, match="replicas"):
        writer.append_verified(batch, signature)
    assert (writer.length, replica.length) == (6, 5)


def test_a_reader_takes_no_signatures_either(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    writer.append(b"x")
    with MerkleLog.open(replica.path) as reader:
        assert (reader.replica, reader.writable) == (False, False)
        with pytest.raises(CoreError, match="read-only"):
            reader.append_verified(*update(writer, 5))


def test_a_replica_opens_read_only_without_a_key_pair(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    path = replica.path
    replica.close()
    with MerkleLog.open(path) as reader:
        assert_same_log(reader, writer)
        assert reader.get(3) == b"entry 3"
        reader.verify()


def test_one_replicator_at_a_time(pair: tuple[MerkleLog, MerkleLog], key_pair: KeyPair) -> None:
    _, replica = pair
    with pytest.raises(OSError, match="open for writing by another process"):
        MerkleLog.open_replica(replica.path)
    with pytest.raises(OSError, match="open for writing by another process"):
        MerkleLog.open(replica.path, key_pair)
    path = replica.path
    replica.close()
    MerkleLog.open_replica(path).close()


def test_creating_a_replica_where_a_log_exists_raises_file_exists(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    for log in (writer, replica):
        with pytest.raises(FileExistsError):
            MerkleLog.create_replica(log.path, writer.public_key, compat=writer.compat)


def test_opening_no_replica_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MerkleLog.open_replica(tmp_path / "nothing")


@pytest.mark.parametrize("public_key", [b"", b"\x01" * 31, b"\x01" * 33], ids=["empty", "short", "long"])
def test_a_public_key_of_the_wrong_length_is_refused(tmp_path: Path, public_key: bytes) -> None:
    with pytest.raises(CoreError, match="32 bytes"):
        MerkleLog.create_replica(tmp_path / "r", public_key)
    assert not (tmp_path / "r").exists()


def test_a_closed_replica_says_so(pair: tuple[MerkleLog, MerkleLog]) -> None:
    writer, replica = pair
    replica.close()
    with pytest.raises(CoreError, match="closed"):
        replica.append_verified(*update(writer, 5))


def test_verified_appends_release_the_gil(tmp_path: Path, key_pair: KeyPair) -> None:
    with (
        MerkleLog.create(tmp_path / "w", key_pair) as writer,
        MerkleLog.create_replica(tmp_path / "r", key_pair.public_key) as replica,
    ):
        batch = entries(200_000)
        writer.append_batch(batch)
        signature = writer.signature()
        assert signature is not None
        assert ticks_of_another_thread_during(lambda: replica.append_verified(batch, signature)) > 0
