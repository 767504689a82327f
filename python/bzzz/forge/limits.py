"""GitHub's rate limits, counted: the primary one per hour, the secondary one on content creation.

The counters only; `bzzz.forge.api` decides which calls count and answers as GitHub does when
one runs out.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """GitHub's primary rate limit: `limit` calls an hour per user (per address if anonymous)."""

    def __init__(self, limit: int, anonymous_limit: int, window_s: int = 3600) -> None:
        self.limit, self.anonymous_limit, self.window_s = limit, anonymous_limit, window_s
        self._lock = threading.Lock()
        self._used: dict[str, tuple[int, int]] = {}  # key -> (reset epoch, used)

    def _window(self, key: str) -> tuple[int, int]:
        reset, used = self._used.get(key, (0, 0))
        if time.time() >= reset:
            reset, used = int(time.time()) + self.window_s, 0
        return reset, used

    def take(self, key: str, limit: int) -> tuple[bool, dict[str, str]]:
        with self._lock:
            reset, used = self._window(key)
            allowed = used < limit
            if allowed:
                used += 1
            self._used[key] = (reset, used)
            return allowed, self.headers(limit, used, reset)

    def give_back(self, key: str, limit: int) -> dict[str, str]:
        with self._lock:
            reset, used = self._window(key)
            used = max(0, used - 1)
            self._used[key] = (reset, used)
            return self.headers(limit, used, reset)

    def status(self, key: str, limit: int) -> tuple[int, int, int]:
        with self._lock:
            reset, used = self._window(key)
            return used, limit - used, reset

    @staticmethod
    def headers(limit: int, used: int, reset: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        }


class ContentLimiter:
    """GitHub's secondary rate limit on content creation, per user, over sliding windows.

    GitHub: "no more than 80 content-generating requests per minute and no more than 500
    content-generating requests per hour". A limit of 0 is off. The windows' lengths are
    settable so that a test can see one end without waiting a real minute.
    """

    def __init__(
        self, per_minute: int = 80, per_hour: int = 500, minute_s: float = 60.0, hour_s: float = 3600.0
    ) -> None:
        self.windows = [(n, s) for n, s in ((per_minute, minute_s), (per_hour, hour_s)) if n > 0]
        self._lock = threading.Lock()
        self._taken: dict[str, deque[float]] = {}

    def take(self, key: str) -> tuple[float | None, float]:
        """(None, stamp) with a slot reserved, or (seconds until one frees, 0) when none is left."""
        if not self.windows:
            return None, 0.0
        with self._lock:
            now = time.monotonic()
            taken = self._taken.setdefault(key, deque())
            longest = max(s for _, s in self.windows)
            while taken and taken[0] <= now - longest:
                taken.popleft()
            wait = 0.0
            for limit, seconds in self.windows:
                inside = [t for t in taken if t > now - seconds]
                if len(inside) >= limit:
                    # one more fits once enough of the oldest have left the window
                    wait = max(wait, inside[len(inside) - limit] + seconds - now)
            if wait > 0:
                return wait, 0.0
            taken.append(now)
            return None, now

    def give_back(self, key: str, stamp: float) -> None:
        """Undo a `take`: the request created nothing (it failed)."""
        with self._lock:
            taken = self._taken.get(key)
            if taken is not None and stamp in taken:
                taken.remove(stamp)


__all__ = ["ContentLimiter", "RateLimiter"]
