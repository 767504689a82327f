"""A probe for whether a call releases the GIL."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def ticks_of_another_thread_during(work: Callable[[], Any]) -> int:
    """How often another Python thread ran while `work()` did.

    With a switch interval of minutes, a thread only gets the GIL when its holder
    gives it up, so anything above zero means `work` released the GIL.
    """
    ticks = 0
    running, stop = threading.Event(), threading.Event()

    def count() -> None:
        nonlocal ticks
        running.set()
        while not stop.is_set():
            ticks += 1
            time.sleep(0)  # hands the GIL back at once when the main thread wants it

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        thread = threading.Thread(target=count)
        thread.start()
        running.wait()
        before = ticks
        work()
        during = ticks - before
        stop.set()
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    return during
