"""Running what a task asks for (its commands, the model's proposals) where it can do no harm.

A sandboxed command, run by bubblewrap (`bwrap`):

* sees the machine read-only, and can write only its workspace (and a private `/tmp`,
  gone when it exits);
* does not see the paths given as `hidden` at all (the agent's data dir with its keys, the
  GitHub token file): each is covered by an empty tmpfs, or by /dev/null for a file;
* starts from an empty environment: only `PATH`, `HOME` (a private dir), `LANG` and what
  the caller passes in `env` — never the agent's own (which holds `GITHUB_TOKEN`);
* has no network unless `network=True`: its own network namespace has only a loopback;
* has its own PID namespace, so nothing it starts outlives it, and is killed with all its
  children when the wall-clock limit passes; CPU seconds, address space, file size and open
  files are limited with `prlimit`.

Where bubblewrap is missing, `Sandbox` refuses to run anything (`SandboxUnavailable`), unless
the operator opted in with `allow_unsandboxed=True`: then commands run with the clean
environment and the limits but **without** filesystem or network isolation, and every run
logs a warning saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("bzzz.executor")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxUnavailable(RuntimeError):
    """bubblewrap is not installed and the operator did not allow unsandboxed runs."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 900.0
    cpu_s: int = 600
    memory_bytes: int = 4 << 30  # address space per process
    file_bytes: int = 1 << 30  # largest file it may write
    open_files: int = 1024


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return f"`{' '.join(self.argv)}` was stopped after {self.seconds:.0f} s (time limit)"
        if self.returncode < 0:
            return f"`{' '.join(self.argv)}` was killed by {signal.Signals(-self.returncode).name}"
        return f"`{' '.join(self.argv)}` exited with status {self.returncode}"


@dataclass
class Sandbox:
    workspace: Path
    network: bool = False
    limits: Limits = field(default_factory=Limits)
    hidden: Sequence[Path] = ()
    allow_unsandboxed: bool = False
    bwrap: str | None = field(default_factory=lambda: shutil.which("bwrap"))

    def __post_init__(self) -> None:
        self.workspace = self.workspace.resolve()
        if self.bwrap is None:
            if not self.allow_unsandboxed:
                raise SandboxUnavailable(
                    "bubblewrap (bwrap) is not installed, so task commands cannot be isolated: "
                    "install it (Debian: apt-get install bubblewrap), or set allow_unsandboxed "
                    "to run them without filesystem and network isolation"
                )
            log.warning("bubblewrap is missing: task commands run WITHOUT filesystem or network isolation",
                        workspace=str(self.workspace))

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """The full command line that runs `argv` in this sandbox."""
        home = "/tmp/home"
        environment = {"PATH": DEFAULT_PATH, "HOME": home, "LANG": "C.UTF-8", **(env or {})}
        limits = [
            "prlimit",
            f"--cpu={self.limits.cpu_s}",
            f"--as={self.limits.memory_bytes}",
            f"--fsize={self.limits.file_bytes}",
            f"--nofile={self.limits.open_files}",
            "--",
        ]
        if self.bwrap is None:
            return ["env", "-i", *(f"{k}={v}" for k, v in environment.items()), *limits, *argv]
        box = [
            self.bwrap,
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into the agent's terminal
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            *([] if self.network else ["--unshare-net"]),
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--dir", home,
        ]
        for path in self.hidden:
            resolved = Path(path).resolve()
            if resolved.is_dir():
                box += ["--tmpfs", str(resolved)]
            elif resolved.exists():
                box += ["--ro-bind", "/dev/null", str(resolved)]
        box += ["--bind", str(self.workspace), str(self.workspace), "--chdir", str(self.workspace), "--clearenv"]
        for key, value in environment.items():
            box += ["--setenv", key, value]
        return [*box, "--", *limits, *argv]

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: str | None = None,
            timeout_s: float | None = None) -> Result:
        """Run `argv` in the workspace and wait for it (at most the wall-clock limit)."""
        if not argv:
            raise ValueError("nothing to run")
        if not self.isolated:
            log.warning("running a task command WITHOUT isolation (bubblewrap is missing)", argv=list(argv))
        limit = self.limits.wall_s if timeout_s is None else min(timeout_s, self.limits.wall_s)
        started = time.monotonic()
        process = subprocess.Popen(
            self.command(argv, env),
            cwd=self.workspace,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env={"PATH": os.environ.get("PATH", DEFAULT_PATH)},  # for finding bwrap and prlimit, nothing else
            start_new_session=True,  # one group to kill, whatever the command starts
        )
        timed_out = False
        try:
            stdout, stderr = process.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            stdout, stderr = process.communicate()
        returncode = process.returncode
        if self.isolated and returncode > 128:
            # bwrap reports a command killed by signal N as status 128 + N, as shells do.
            returncode = -(returncode - 128)
        return Result(tuple(argv), returncode, stdout, stderr, timed_out, time.monotonic() - started)


def _kill_group(process: subprocess.Popen[str]) -> None:
    # bwrap's init dies with it (--die-with-parent) and takes the PID namespace along; without
    # bwrap the process group is everything the command started (unless it made its own).
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
