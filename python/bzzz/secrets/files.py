"""A GitHub token in a file, re-read when the file changes.

Docker Swarm and Kubernetes rotate a secret by replacing the file (Kubernetes swaps a symlink),
systemd credentials by rewriting it: each shows as a new inode, size or mtime, which one `stat`
per request notices. A file that is briefly missing or empty mid-rotation keeps the last token
(logged once); one that never held a token is an error at start.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from bzzz.secrets.source import Health, TokenError, log, registered


class FileToken:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._token: str | None = None
        self.health = Health(f"file {path}")
        try:
            self._token, self._stamp = self._read()
        except OSError as error:
            raise TokenError(f"cannot read the GitHub token file {path}: {error.strerror}") from None
        except ValueError as error:
            raise TokenError(str(error)) from None

    def _read(self) -> tuple[str, tuple[int, ...]]:
        before = os.stat(self.path)
        token = self.path.read_text().strip()
        if not token:
            raise ValueError(f"the GitHub token file {self.path} is empty")
        stamp = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
        return registered(token), stamp

    def current(self) -> str | None:
        with self._lock:
            try:
                now = os.stat(self.path)
                if (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns) != self._stamp:
                    self._token, self._stamp = self._read()
                    log.info("the GitHub token file changed: using its token", path=str(self.path))
                    self.health.set("ok", "the GitHub token file is readable again")
            except (OSError, ValueError, TokenError) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                self.health.set("failing", "cannot read the GitHub token file; keeping the last token", error=reason)
            return self._token

    def rejected(self) -> None:
        with self._lock:
            self._stamp = None  # read it again on the next request, changed or not

    def close(self) -> None:
        pass
