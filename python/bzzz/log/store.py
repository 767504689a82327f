"""An agent's log directory: the key file next to the Merkle log it signs.

```
<data_dir>/log/
    secret_key      the writer's key pair (mode 0600, see keys.py)
    hypercore/      the MerkleLog files (header, data, tree, signatures)
```
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from bzzz._core import KeyPair, MerkleLog
from bzzz.log.events import decode_entry, encode_event
from bzzz.log.keys import load_key_pair, save_key_pair
from bzzz.paths import LOG_KEY_FILE, merkle_dir


def log_key(directory: Path) -> bytes | None:
    """The key of the log in `directory` (what peers replicate it by), read without the
    writer's key; None while the log worker has not created it yet."""
    try:
        with MerkleLog.open(merkle_dir(directory)) as opened:
            return opened.key
    except (OSError, ValueError):
        return None


class AgentLog:
    """The writer's view of its own log."""

    def __init__(self, directory: Path, log: MerkleLog) -> None:
        self.directory = directory
        self.log = log

    @classmethod
    def create(
        cls, directory: Path, key_pair: KeyPair | None = None, *, compat: bool = False, sync: bool = False
    ) -> AgentLog:
        """A new log with a new (or the given) key pair; FileExistsError if one is there."""
        if (merkle_dir(directory)).exists() or (directory / LOG_KEY_FILE).exists():
            raise FileExistsError(f"a log already exists in {directory}")
        key_pair = key_pair or KeyPair.generate()
        save_key_pair(directory / LOG_KEY_FILE, key_pair)
        return cls(directory, MerkleLog.create(merkle_dir(directory), key_pair, compat=compat, sync=sync))

    @classmethod
    def open(cls, directory: Path, *, writable: bool = True, sync: bool = False) -> AgentLog:
        if not (merkle_dir(directory)).exists():
            raise FileNotFoundError(f"no log in {directory} (create one with `bzzz log create`)")
        key_pair = load_key_pair(directory / LOG_KEY_FILE) if writable else None
        return cls(directory, MerkleLog.open(merkle_dir(directory), key_pair, sync=sync))

    def append_event(self, event_type: str, /, **fields: Any) -> int:
        """Log one event; returns its index."""
        return self.log.append(encode_event(event_type, **fields)) - 1

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, dict[str, Any] | str | bytes]]:
        end = self.log.length if end is None else min(end, self.log.length)
        for index in range(max(start, 0), end):
            yield index, decode_entry(self.log.get(index))

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> AgentLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
