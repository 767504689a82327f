"""A task's workspace: a fresh clone on a branch of its own, removed when the task is done.

Git runs here as the agent (outside the sandbox): it is the one thing that holds the token.
The token travels only as an HTTP header given on git's command line for the clone and the
push (`http.extraHeader`), so it is never written into the clone's `.git/config` or remote
URL, where a task command could read it. Credential helpers and terminal prompts are off:
a refused token fails at once instead of waiting for someone to type a password.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT_S = 300.0


class WorkspaceError(RuntimeError):
    """A git operation failed; the message never holds the token."""


def branch_name(number: int, agent: str) -> str:
    """`bzzz/<issue>-<agent>`, with anything git would refuse in the agent's name replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", agent).strip(".-") or "agent"
    return f"bzzz/{number}-{safe}"


@dataclass
class Workspace:
    path: Path
    branch: str
    base: str
    _auth: list[str] = field(repr=False, default_factory=list)
    _token: str = field(repr=False, default="")

    @classmethod
    def clone(cls, root: Path, clone_url: str, *, token: str | None, branch: str,
              author: tuple[str, str]) -> Workspace:
        root = root.absolute()
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=branch.replace("/", "-") + "-", dir=root))
        auth = []
        if token:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            auth = ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
        workspace = cls(path, branch, "", auth, token or "")
        try:
            workspace._git(*auth, "clone", "--quiet", clone_url, str(path), cwd=root)
            head = workspace._git("symbolic-ref", "--quiet", "--short", "HEAD").strip()
            if not workspace._git("rev-parse", "--verify", "--quiet", "HEAD", check=False).strip():
                raise WorkspaceError(f"{clone_url} has no commits to branch from")
            workspace.base = head
            workspace._git("checkout", "--quiet", "-b", branch)
            workspace._git("config", "user.name", author[0])
            workspace._git("config", "user.email", author[1])
        except BaseException:
            workspace.remove()
            raise
        return workspace

    def _git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        command = ["git", "-c", "credential.helper=", "-c", "core.hooksPath=/dev/null", *args]
        try:
            done = subprocess.run(command, cwd=cwd or self.path, capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_S, env=_git_env())
        except subprocess.TimeoutExpired:
            raise WorkspaceError(f"git {_public(args)} took more than {GIT_TIMEOUT_S:.0f} s") from None
        if check and done.returncode != 0:
            message = done.stderr.strip().replace(self._token, "***") if self._token else done.stderr.strip()
            raise WorkspaceError(f"git {_public(args)} failed: {message}")
        return done.stdout

    def changed_files(self) -> list[str]:
        """Paths changed, added or removed since the clone (untracked ones included)."""
        out = self._git("status", "--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line]

    def reset(self) -> None:
        """Back to the clean clone: every change and untracked file gone."""
        self._git("reset", "--quiet", "--hard", "HEAD")
        self._git("clean", "--quiet", "-fdx")

    def commit(self, message: str) -> str | None:
        """Commit every change as the agent; the commit's sha, or None if nothing changed."""
        if not self.changed_files():
            return None
        self._git("add", "--all")
        self._git("commit", "--quiet", "--no-verify", "-m", message)
        return self._git("rev-parse", "HEAD").strip()

    def push(self) -> None:
        """Push the branch; a copy left by an earlier attempt at the same task is replaced."""
        self._git(*self._auth, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{self.branch}")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
    }


def _public(args: tuple[str, ...]) -> str:
    """The git arguments worth showing: the command itself, not the auth header before it."""
    shown = [a for a in args if not a.startswith("http.extraHeader")]
    return " ".join(a for a in shown if a != "-c")[:200]
