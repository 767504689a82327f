"""At start the executor makes one real sandbox, so a host (or container) where bubblewrap is
installed but cannot isolate refuses tasks with one line saying what to allow.

The failing host is real, not mocked: a mount namespace with /proc/keys covered, as podman's
masked paths cover it in a container, keeps bubblewrap from mounting its own /proc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="covering a /proc path in a mount namespace needs root"),
]

CHECK = """
import sys
from pathlib import Path
from bzzz.executor.sandbox import SandboxUnavailable, check_available
try:
    check_available(Path(sys.argv[1]))
except SandboxUnavailable as error:
    print(error)
    sys.exit(3)
print("available")
"""


@pytest.fixture
def parent() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="bzzz-probe-test-", dir="/var/tmp"))
    made.chmod(0o711)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def check_in_mount_namespace(parent: Path, cover: str | None) -> subprocess.CompletedProcess[str]:
    masked = f"mount --bind /dev/null {cover} && " if cover else ""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{masked}exec "$@"', "check"]
        + [sys.executable, "-c", CHECK, str(parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bubblewrap_that_cannot_mount_its_proc_is_refused_at_start_with_what_to_allow(parent: Path) -> None:
    refused = check_in_mount_namespace(parent, "/proc/keys")
    assert refused.returncode == 3, refused.stderr
    message = refused.stdout.strip().splitlines()[-1]
    assert message.startswith("bubblewrap cannot make the task sandbox here (bwrap: Can't mount proc")
    assert "unprivileged user namespaces" in message and "--security-opt unmask=/proc/*" in message
    assert list(parent.iterdir()) == [], "the probe leaves nothing behind"


def test_the_same_check_passes_where_nothing_is_covered(parent: Path) -> None:
    # Positive control: the refusal above is the covered /proc path's doing.
    allowed = check_in_mount_namespace(parent, None)
    said = allowed.stdout + allowed.stderr
    assert allowed.returncode == 0 and allowed.stdout.strip().splitlines()[-1] == "available", said
