"""Property tests: random histories, random damage. The log is either right or says it is not."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bzzz._core import KeyPair, LogCorrupted, MerkleLog, VerificationFailed
from tests.reference import merkle as ref

SEED = bytes(range(32))
FILES = ["header", "data", "tree", "signatures"]

entry = st.binary(max_size=48)
batches = st.lists(st.lists(entry, max_size=7), min_size=1, max_size=8)


def build(directory: Path, history: list[list[bytes]]) -> tuple[list[bytes], list[int]]:
    """Write `history` one append_batch per item, reopening between; return entries and signed lengths."""
    MerkleLog.create(directory, KeyPair.from_seed(SEED)).close()
    written: list[bytes] = []
    signed: list[int] = [0]
    for batch in history:
        with MerkleLog.open(directory, KeyPair.from_seed(SEED)) as log:
            log.append_batch(batch)
        written.extend(batch)
        if batch:
            signed.append(len(written))
    return written, signed


@given(history=batches)
def test_random_appends_and_reopens_agree_with_the_reference(history: list[list[bytes]]) -> None:
    directory = Path(tempfile.mkdtemp())
    try:
        written, _ = build(directory / "log", history)
        reference = ref.ReferenceLog(SEED)
        for batch in history:
            if batch:
                reference.append_batch(batch)
        with MerkleLog.open(directory / "log") as log:
            log.verify()
            assert [log.get(i) for i in range(log.length)] == written
            assert log.tree_hash() == reference.tree_hash()
            assert log.signature() == reference.signature
    finally:
        shutil.rmtree(directory)


@given(history=batches, which=st.sampled_from(FILES), where=st.integers(min_value=0), bit=st.integers(0, 7))
def test_flipping_any_stored_bit_never_goes_unnoticed(
    history: list[list[bytes]], which: str, where: int, bit: int
) -> None:
    directory = Path(tempfile.mkdtemp())
    try:
        written, _ = build(directory / "log", history)
        path = directory / "log" / which
        data = bytearray(path.read_bytes())
        if not data:
            return
        data[where % len(data)] ^= 1 << bit
        path.write_bytes(bytes(data))
        try:
            log = MerkleLog.open(directory / "log")
        except LogCorrupted:
            return
        with log:
            try:
                log.verify()
            except (LogCorrupted, VerificationFailed):
                return
            # Only acceptable otherwise: a visible cut back to an earlier signed state.
            assert log.recovery is not None and log.length < len(written), "a flipped bit went unnoticed"
    finally:
        shutil.rmtree(directory)


@given(
    history=batches,
    damage=st.lists(
        st.tuples(
            st.sampled_from(FILES[1:]),
            st.one_of(
                st.integers(0, 400).map(lambda n: ("cut", n)),
                st.binary(min_size=1, max_size=200).map(lambda b: ("add", b)),
            ),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda d: d[0],  # one tear per file: cut short, or garbage past the end
    ),
)
def test_a_torn_tail_is_cut_back_to_a_signed_prefix(history, damage) -> None:
    directory = Path(tempfile.mkdtemp())
    try:
        written, signed = build(directory / "log", history)
        for name, (kind, arg) in damage:
            path = directory / "log" / name
            data = path.read_bytes()
            path.write_bytes(data[: max(len(data) - arg, 0)] if kind == "cut" else data + arg)
        sizes = {name: (directory / "log" / name).stat().st_size for name in FILES}
        try:
            log = MerkleLog.open(directory / "log", KeyPair.from_seed(SEED))
        except LogCorrupted:
            return  # nothing intact left to stand on: refused, not guessed at
        with log:
            assert log.length in signed
            assert [log.get(i) for i in range(log.length)] == written[: log.length]
            log.verify()
            cut = any((directory / "log" / name).stat().st_size != sizes[name] for name in FILES)
            assert (log.recovery is not None) == cut, "whatever opening cuts, it says so"
            log.append(b"life goes on")
        with MerkleLog.open(directory / "log") as reopened:
            assert reopened.recovery is None
            reopened.verify()
    finally:
        shutil.rmtree(directory)
