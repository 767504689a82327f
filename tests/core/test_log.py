"""The Merkle log as Python sees it: `bzzz._core.MerkleLog` and friends."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bzzz._core import (
    CoreError,
    KeyPair,
    LogCorrupted,
    LogVerifier,
    MerkleLog,
    Proof,
    VerificationFailed,
    discovery_key,
)
from tests.gil import ticks_of_another_thread_during
from tests.reference import merkle as ref


@pytest.fixture
def key_pair(seed: bytes) -> KeyPair:
    return KeyPair.from_seed(seed)


@pytest.fixture
def log(tmp_path: Path, key_pair: KeyPair):
    with MerkleLog.create(tmp_path / "log", key_pair) as log:
        yield log


def entries(n: int, start: int = 0) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(start, start + n)]


# --- one implementation against the other --------------------------------------

BATCH_SHAPES = {
    "one entry": [[b"hello"]],
    "single appends": [[e] for e in entries(9)],
    "one batch": [entries(9)],
    "mixed batches": [entries(3), entries(1, 3), entries(17, 4), [b""], entries(2, 21)],
    "empty entries": [[b"", b"", b""]],
    "large entry": [[bytes(range(256)) * 256]],
}


@pytest.mark.parametrize("compat", [False, True], ids=["manifest", "compat"])
@pytest.mark.parametrize("shape", BATCH_SHAPES.values(), ids=BATCH_SHAPES.keys())
def test_tree_hash_and_signature_match_the_python_reference(
    tmp_path: Path, seed: bytes, shape: list[list[bytes]], compat: bool
) -> None:
    reference = ref.ReferenceLog(seed, compat=compat)
    with MerkleLog.create(tmp_path / "log", KeyPair.from_seed(seed), compat=compat) as log:
        for batch in shape:
            assert log.append_batch(batch) == reference.append_batch(batch)
            assert log.tree_hash() == reference.tree_hash()
            assert log.signature() == reference.signature
        assert log.byte_length == reference.byte_length
        assert log.key == reference.key
        assert log.public_key == reference.public_key
        assert log.compat is compat
        assert log.manifest == (None if compat else ref.default_manifest(reference.public_key))
        assert log.discovery_key == ref.discovery_key(reference.key) == discovery_key(log.key)
        assert [n[0] for n in log.roots()] == [r.index for r in reference.roots]


@pytest.mark.parametrize("compat", [False, True], ids=["manifest", "compat"])
def test_signatures_verify_in_pynacl_over_hypercores_signable(tmp_path: Path, key_pair: KeyPair, compat: bool) -> None:
    with MerkleLog.create(tmp_path / "log", key_pair, compat=compat) as log:
        log.append_batch(entries(5))
        signature = log.signature()
        assert signature is not None and len(signature) == (64 if compat else 68)
        assert ref.verify_signature(log.public_key, log.tree_hash(), 5, signature, compat=compat)
        assert not ref.verify_signature(log.public_key, log.tree_hash(), 4, signature, compat=compat)
        assert not ref.verify_signature(log.public_key, log.tree_hash(), 5, signature, compat=not compat)
        verifier = LogVerifier(log.public_key, compat=compat)
        assert verifier.key == log.key
        assert verifier.verify_signature(log.tree_hash(), 5, signature)
        assert not LogVerifier(log.public_key, compat=not compat).verify_signature(log.tree_hash(), 5, signature)


# --- the API -------------------------------------------------------------------------


def test_an_empty_log_has_no_signature(log: MerkleLog) -> None:
    assert (log.length, log.byte_length, log.signature(), len(log)) == (0, 0, None, 0)


def test_append_returns_the_new_length_and_get_reads_back(log: MerkleLog) -> None:
    assert log.append(b"a") == 1
    assert log.append_batch([b"b", b"cc"]) == 3
    assert log.append_batch([]) == 3
    assert [log.get(i) for i in range(3)] == [b"a", b"b", b"cc"]
    assert log.byte_length == 4


def test_append_batch_takes_any_iterable_of_bytes(log: MerkleLog) -> None:
    assert log.append_batch(e for e in entries(4)) == 4
    with pytest.raises(TypeError, match="entries must be bytes"):
        log.append_batch(["text is not bytes"])  # type: ignore[list-item]
    assert log.length == 4


@pytest.mark.parametrize("index", [-1, 3, 2**40])
def test_reading_past_either_end_raises_index_error(log: MerkleLog, index: int) -> None:
    log.append_batch(entries(3))
    with pytest.raises(IndexError, match="out of range"):
        log.get(index)
    with pytest.raises(IndexError):
        log.proof(index)


def test_the_log_survives_closing_and_reopening(tmp_path: Path, key_pair: KeyPair) -> None:
    with MerkleLog.create(tmp_path / "log", key_pair) as log:
        log.append_batch(entries(10))
        state = (log.tree_hash(), log.signature())
    with MerkleLog.open(tmp_path / "log", key_pair) as log:
        assert (log.tree_hash(), log.signature()) == state
        assert log.recovery is None
        log.append(b"more")
    with MerkleLog.open(tmp_path / "log") as reader:
        assert reader.length == 11 and not reader.writable
        reader.verify()


def test_a_reader_cannot_append(tmp_path: Path, key_pair: KeyPair) -> None:
    MerkleLog.create(tmp_path / "log", key_pair).close()
    with MerkleLog.open(tmp_path / "log") as reader, pytest.raises(CoreError, match="read-only"):
        reader.append(b"x")


def test_only_one_writer_at_a_time(tmp_path: Path, key_pair: KeyPair) -> None:
    with MerkleLog.create(tmp_path / "log", key_pair):
        with pytest.raises(OSError, match="open for writing by another process"):
            MerkleLog.open(tmp_path / "log", key_pair)
        with MerkleLog.open(tmp_path / "log"):
            pass  # readers are welcome


def test_creating_where_a_log_exists_raises_file_exists(tmp_path: Path, key_pair: KeyPair) -> None:
    MerkleLog.create(tmp_path / "log", key_pair).close()
    with pytest.raises(FileExistsError):
        MerkleLog.create(tmp_path / "log", key_pair)


def test_opening_nothing_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no log at"):
        MerkleLog.open(tmp_path / "nowhere")


def test_the_wrong_key_pair_is_refused(tmp_path: Path, key_pair: KeyPair) -> None:
    MerkleLog.create(tmp_path / "log", key_pair).close()
    with pytest.raises(CoreError, match="does not match"):
        MerkleLog.open(tmp_path / "log", KeyPair.from_seed(b"\x01" * 32))


def test_a_closed_log_says_so(log: MerkleLog) -> None:
    log.close()
    assert log.closed
    with pytest.raises(CoreError, match="closed"):
        log.append(b"x")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: KeyPair.from_seed(b"short"), "seed must be 32 bytes, got 5"),
        (lambda: KeyPair.from_secret_key(b"\x00" * 63), "secret key must be 64 bytes, got 63"),
        (lambda: KeyPair.from_secret_key(b"\x00" * 64), "does not match its public key"),
        (lambda: LogVerifier(b"\x00" * 31), "public key must be 32 bytes, got 31"),
        (lambda: discovery_key(b"\x00" * 33), "key must be 32 bytes, got 33"),
        (lambda: Proof.from_json("{}"), "not a proof"),
        (lambda: Proof.from_json("not json"), "not a proof"),
        (
            lambda: Proof(index=0, value=b"", nodes=[], length=1, roots=[], signature=b"", manifest=b"x" * 70),
            "default single-signer",
        ),
    ],
)
def test_bad_input_raises_core_error_with_a_clear_message(call, message: str) -> None:
    with pytest.raises(CoreError, match=message):
        call()


def test_the_key_pair_never_shows_its_secret(key_pair: KeyPair) -> None:
    assert key_pair.secret_key.hex() not in repr(key_pair)
    assert key_pair.public_key.hex() in repr(key_pair)


# --- proofs -------------------------------------------------------------------------


def test_every_entry_has_a_proof_that_only_needs_the_public_key(log: MerkleLog) -> None:
    log.append_batch(entries(21))
    verifier = LogVerifier(log.public_key)
    for i in range(21):
        proof = Proof.from_json(log.proof(i).to_json())
        assert verifier.verify_proof(proof) == log.get(i)
        assert (proof.index, proof.length) == (i, 21)


def test_a_proof_with_any_byte_changed_is_refused(log: MerkleLog) -> None:
    log.append_batch(entries(11))
    proof = log.proof(6)
    verifier = LogVerifier(log.public_key)
    fields = dict(
        index=proof.index,
        value=proof.value,
        nodes=proof.nodes,
        length=proof.length,
        roots=proof.roots,
        signature=proof.signature,
        manifest=proof.manifest,
    )

    def flipped(b: bytes, at: int) -> bytes:
        return b[:at] + bytes([b[at] ^ 0x01]) + b[at + 1 :]

    variants = []
    for at in range(len(proof.value)):
        variants.append({**fields, "value": flipped(proof.value, at)})
    for at in range(len(proof.signature)):
        variants.append({**fields, "signature": flipped(proof.signature, at)})
    stranger = ref.default_manifest(KeyPair.generate().public_key)
    variants.append({**fields, "manifest": stranger})
    for which in ("nodes", "roots"):
        for k, (index, size, hash_) in enumerate(fields[which]):
            for at in range(32):
                changed = list(fields[which])
                changed[k] = (index, size, flipped(hash_, at))
                variants.append({**fields, which: changed})
            changed = list(fields[which])
            changed[k] = (index, size + 1, hash_)
            variants.append({**fields, which: changed})
    variants.append({**fields, "length": proof.length + 1})
    variants.append({**fields, "index": proof.index + 1})
    variants.append({**fields, "nodes": fields["nodes"][:-1]})
    for variant in variants:
        with pytest.raises(VerificationFailed):
            verifier.verify_proof(Proof(**variant))
    assert verifier.verify_proof(Proof(**fields)) == proof.value


def test_a_proof_is_refused_by_another_key(log: MerkleLog) -> None:
    log.append_batch(entries(4))
    with pytest.raises(VerificationFailed, match="another writer"):
        LogVerifier(KeyPair.generate().public_key).verify_proof(log.proof(2))
    with pytest.raises(VerificationFailed, match="compat-mode log"):
        LogVerifier(log.public_key, compat=True).verify_proof(log.proof(2))


def signed_tree(log: MerkleLog) -> dict[str, object]:
    """The log's head as a peer reports it, in `LogVerifier.verify_tree`'s terms."""
    return dict(length=log.length, roots=log.roots(), signature=log.signature(), fork=log.fork, manifest=log.manifest)


def test_a_signed_tree_checked_once_proves_every_entry_by_its_nodes(log: MerkleLog) -> None:
    log.append_batch(entries(21))
    tree = LogVerifier(log.public_key).verify_tree(**signed_tree(log))
    assert (tree.length, tree.tree_hash, tree.byte_length, tree.fork) == (21, log.tree_hash(), log.byte_length, 0)
    for i in range(21):
        tree.prove(i, log.get(i), log.proof(i).nodes)


def test_a_signed_tree_refuses_what_it_does_not_hold(log: MerkleLog) -> None:
    log.append_batch(entries(11))
    tree = LogVerifier(log.public_key).verify_tree(**signed_tree(log))
    nodes = log.proof(6).nodes
    (index, size, hash_), *rest = nodes
    for value, at, path in [
        (b"entry 7", 6, nodes),
        (log.get(6), 7, nodes),
        (log.get(6), 6, nodes[1:]),
        (log.get(6), 6, [(index, size, bytes(32)), *rest]),
        (b"entry 11", 11, []),
    ]:
        with pytest.raises(VerificationFailed):
            tree.prove(at, value, path)


def test_a_head_whose_roots_or_signature_do_not_check_out_is_refused(log: MerkleLog) -> None:
    log.append_batch(entries(11))
    head = signed_tree(log)
    roots = log.roots()
    index, size, hash_ = roots[0]
    verifier = LogVerifier(log.public_key)
    for changed in [
        {"roots": [(index, size, bytes(32)), *roots[1:]]},
        {"roots": roots[1:]},
        {"length": 12},
        {"fork": 1},
        {"signature": bytes(len(log.signature() or b""))},
    ]:
        with pytest.raises(VerificationFailed):
            verifier.verify_tree(**{**head, **changed})
    with pytest.raises(VerificationFailed, match="another writer"):
        LogVerifier(KeyPair.generate().public_key).verify_tree(**head)


# --- threads -------------------------------------------------------------------------


def test_threads_appending_at_once_lose_nothing(log: MerkleLog) -> None:
    def writer(t: int) -> None:
        for i in range(200):
            if i % 2:
                log.append(f"{t}:{i}".encode())
            else:
                log.append_batch([f"{t}:{i}".encode()])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.length == 800
    assert sorted(log.get(i) for i in range(800)) == sorted(f"{t}:{i}".encode() for t in range(4) for i in range(200))
    log.verify()


def test_corruption_found_on_open_raises_log_corrupted(tmp_path: Path, key_pair: KeyPair) -> None:
    with MerkleLog.create(tmp_path / "log", key_pair) as log:
        log.append(b"x")
    header = tmp_path / "log" / "header"
    header.write_bytes(b"garbage" + header.read_bytes()[7:])
    with pytest.raises(LogCorrupted, match="magic"):
        MerkleLog.open(tmp_path / "log")


def test_batch_appends_and_verification_release_the_gil(log: MerkleLog) -> None:
    batch = entries(200_000)
    assert ticks_of_another_thread_during(lambda: log.append_batch(batch)) > 0
    assert ticks_of_another_thread_during(log.verify) > 0


def test_the_gil_probe_sees_code_that_keeps_the_gil() -> None:
    assert ticks_of_another_thread_during(lambda: sum(range(3_000_000))) == 0
