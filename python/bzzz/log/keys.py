"""The log's key pair on disk: one file, the 64-byte secret key in hex, mode 0600.

Whoever holds this file can sign as the agent, so it is written atomically with
owner-only permissions and refused if others can read it (as OpenSSH does for
private keys).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bzzz._core import CoreError, KeyPair


class KeyFileError(Exception):
    """A key file that is missing, unreadable, malformed or too widely readable."""


def save_key_pair(path: Path, key_pair: KeyPair) -> None:
    """Write `key_pair` to `path` (which must not exist) with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key_pair.secret_key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    if path.exists():
        tmp.unlink()
        raise FileExistsError(f"a key file already exists at {path}")
    os.rename(tmp, path)


def load_key_pair(path: Path) -> KeyPair:
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path}") from None
    except OSError as err:
        raise KeyFileError(f"cannot read key file {path}: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    try:
        return KeyPair.from_secret_key(bytes.fromhex(text))
    except (ValueError, CoreError) as err:
        raise KeyFileError(f"key file {path} does not hold a valid secret key: {err}") from None
