"""Running what a task asks for (its commands, the model's proposals) where it can do no harm.

Threat: everything a task runs comes from issue text or repository content, which anyone may
write, on a machine that holds the agent's GitHub token, its signing keys and, in `bzzz demo`,
root. The sandbox is the boundary between that code and the host (docs/security.md). A task:

* runs as an unprivileged uid with **no capabilities**, even when the agent is root, so it can
  neither unmount what hides a secret nor remount the host read-write (see `_drop`);
* sees a **minimal view of the host**: read-only /usr, /etc, /opt and the /bin-style links, its
  workspace at `/workspace` and its own `/tmp`, nothing else: no agent home, data dir, run dir,
  token file, nor any other process (see `_view`);
* starts from an **empty environment** (only PATH, HOME, LANG, TMPDIR and what the caller
  passes), has **no network** unless `network=True`;
* is held to **per-task limits**: processes, memory and CPU time for the whole task (a cgroup
  where the host lets us make one, else per-process rlimits), a **size-bounded area on disk**
  for its workspace and /tmp, a wall-clock limit, and a cap on the output kept;
* leaves **nothing running** when its command ends: its PID namespace, its process group and its
  cgroup are emptied.

One `Sandbox` owns one task's area, `parent/<name>-sandbox-<random>/` holding `files/` (the
workspace: `/workspace` inside, the cwd) and `tmp/` (`/tmp` inside, `HOME=/tmp/home`), from
`Sandbox.open` to `Sandbox.close`; `clean_stale` removes the areas a killed executor left behind.

What holds the limits depends on the host, and `Sandbox.confinement` says which, in one line:

* agent as root on a cgroup v1 host (`bzzz demo` on the project's machines): processes, memory and CPU time of the whole
  task by its cgroup (pids, memory, cpuacct); disk by a loop-mounted ext4 of `disk_bytes`;
* cgroup v2 delegated to the agent (root or not): the same, by a v2 cgroup;
* agent not root, no delegated cgroup: processes by RLIMIT_NPROC (counted per uid in the task's
  own user namespace); memory and CPU time per process only (RLIMIT_AS, RLIMIT_CPU) and the
  wall clock; disk by a watchdog, with the slack `_Disk` describes;
* everywhere: the PID namespace ends every process of the task with its command.

Where bubblewrap is missing, `Sandbox.open` refuses (`SandboxUnavailable`) unless the operator
opted in with `allow_unsandboxed=True`: then commands run with the clean environment, the
rlimits, the cgroup and (as root) the unprivileged uid, but **without** filesystem, network or
PID isolation, and every run logs a warning saying so.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

log = structlog.get_logger("bzzz.executor")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_UID = 70000  # above Debian's user and package ids, below the subordinate ids useradd hands out
WORKSPACE = "/workspace"  # where the task's files are, inside
SHM_BYTES = 64 << 20  # /dev/shm is RAM: small, and charged to the task's memory cgroup
DISK_LOOK_S = 0.5  # how often the disk watchdog looks, at least (it backs off on a huge tree)
POLL_S = 0.1
_AREA = re.compile(r"^[A-Za-z0-9_.-]+-sandbox-[0-9a-f]{16}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The first process of the command line joins the task's cgroups and only then execs the rest,
# so that nothing the task starts can ever run outside them.
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# bubblewrap resolves what it binds as the task's uid, and the agent's work dir may sit under a
# dir only root may pass (/root, a mkdtemp dir): as root, in a mount namespace of the command's
# own (not the host's), the area's two dirs are bound in a small tmpfs over "$1", a dir that
# uid can reach ("$2" and "$3" are the area's dirs).
_MEET = (
    'mount -t tmpfs -o size=16k,mode=0755,nosuid,nodev,noexec bzzz-sandbox "$1" && '
    'mkdir "$1/workspace" "$1/tmp" && mount --bind "$2" "$1/workspace" && mount --bind "$3" "$1/tmp" '
    '|| exit 125; shift 3; exec "$@"'
)
_MEETING_POINTS = ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/run")
_TOOLS_PATH = DEFAULT_PATH + ":/usr/sbin:/sbin"


class SandboxUnavailable(RuntimeError):
    """Tasks cannot be isolated here (bubblewrap missing, or its area unreachable) and the
    operator did not allow unsandboxed runs."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 900.0
    cpu_s: int = 600  # per process (RLIMIT_CPU) and, where a cgroup holds, the whole task
    memory_bytes: int = 4 << 30  # per process address space, and the whole task where a cgroup holds
    file_bytes: int = 1 << 30  # largest file (RLIMIT_FSIZE)
    open_files: int = 1024
    processes: int = 256  # the whole task (pids cgroup, else RLIMIT_NPROC in its own user namespace)
    disk_bytes: int = 2 << 30  # the task's area: its workspace files + its /tmp, on disk, not RAM
    output_bytes: int = 1 << 20  # kept of each of stdout and stderr (head and tail): the agent's memory


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    killed_for: str | None = None  # "time limit", "cpu limit", "memory limit", "disk limit"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.killed_for is None

    def describe(self) -> str:
        shown = f"`{' '.join(self.argv)}`"
        if self.timed_out or self.killed_for:
            return f"{shown} was stopped after {self.seconds:.0f} s ({self.killed_for or 'time limit'})"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"{shown} was killed by {name}"
        return f"{shown} exited with status {self.returncode}"


class Sandbox:
    """One task's sandbox: its area on disk, its cgroup, and the command lines that run in it.

    Use `Sandbox.open(...)` (or `with Sandbox.open(...) as sandbox:`), fill `sandbox.files`, call
    `run` as often as needed, and `close` it: that kills whatever is left, removes the cgroup,
    unmounts and deletes the area.
    """

    def __init__(
        self,
        area: Path,
        *,
        network: bool,
        limits: Limits,
        hidden: Sequence[Path],
        bwrap: str | None,
        uid: int,
        disk: _Disk,
        cgroup: _Cgroup | None,
        meet: Path | None = None,
    ) -> None:
        self.area = area
        self.files = area / "files"
        self.tmp = area / "tmp"
        self.network = network
        self.limits = limits
        self.hidden = tuple(hidden)
        self.bwrap = bwrap
        self.uid = uid
        self._disk = disk
        self._cgroup = cgroup
        self._meet = meet  # as root: where bwrap finds the area's dirs, in the command's own mount namespace
        self._closed = False
        self._tools = {
            tool: shutil.which(tool, path=_TOOLS_PATH) or tool for tool in ("setpriv", "prlimit", "env", "unshare")
        }

    @classmethod
    def open(
        cls,
        parent: Path,
        *,
        network: bool = False,
        limits: Limits = Limits(),
        hidden: Sequence[Path] = (),
        allow_unsandboxed: bool = False,
        uid: int = SANDBOX_UID,
        name: str = "task",
        bwrap: str | None = "bwrap",
        loop_disk: bool = True,
    ) -> Sandbox:
        """Make a task's area under `parent` and its cgroup.

        `uid` is the task's uid when the agent is root; otherwise the task runs as the agent's
        own uid (see `_drop`). `bwrap=None` stands for a host without bubblewrap;
        `loop_disk=False` bounds the disk with the watchdog even as root (hosts without loop
        devices; tests of the watchdog).
        """
        if not _NAME.match(name):
            raise ValueError(f"a sandbox name is letters, digits, '.', '_' and '-': {name!r}")
        found = shutil.which(bwrap) if bwrap else None
        if found is None:
            if not allow_unsandboxed:
                raise SandboxUnavailable(
                    "bubblewrap (bwrap) is not installed, so task commands cannot be isolated: "
                    "install it (Debian: apt-get install bubblewrap), or set allow_unsandboxed "
                    "to run them without filesystem and network isolation"
                )
            log.warning(
                "bubblewrap is missing: task commands run WITHOUT filesystem or network isolation", parent=str(parent)
            )
        root = os.geteuid() == 0
        if root and uid <= 0:
            raise ValueError("a task never runs as root: give the sandbox an unprivileged uid")
        uid = uid if root else os.geteuid()
        parent = Path(parent).resolve()
        parent.mkdir(parents=True, exist_ok=True)
        area = parent / f"{name}-sandbox-{secrets.token_hex(8)}"
        meet = _meeting_point(area, uid) if root and found is not None else None
        if root and meet is None:
            _check_reachable(parent, uid)  # the task's uid will use the area's own paths
        disk: _Disk | None = None
        cgroup: _Cgroup | None = None
        try:
            disk = _Disk.make(area, limits.disk_bytes, uid, loop=loop_disk and root)
            cgroup = _Cgroup.make(area.name, limits)
            sandbox = cls(
                area,
                network=network,
                limits=limits,
                hidden=[Path(p) for p in hidden],
                bwrap=found,
                uid=uid,
                disk=disk,
                cgroup=cgroup,
                meet=meet,
            )
            for path, mode in ((sandbox.files, 0o755), (sandbox.tmp, 0o700), (sandbox.tmp / "home", 0o700)):
                path.mkdir(mode=mode)
                if root:
                    os.chown(path, uid, uid)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            if disk is not None:
                disk.remove()
            raise
        log.info("sandbox ready", area=str(area), confinement=sandbox.confinement)
        return sandbox

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    @property
    def confinement(self) -> str:
        """One line saying what holds the task, for the PR body and the logs."""
        if not self.isolated:
            who = "NOT isolated (bubblewrap missing; the operator allowed it): same uid and view as the agent"
        elif os.geteuid() == 0:
            who = f"bubblewrap; uid {self.uid}, no capabilities"
        else:
            who = f"bubblewrap; the agent's own uid {self.uid} in a user namespace, no capabilities"
        if self._cgroup is None:
            held = "no cgroup (per-process limits; RLIMIT_NPROC in its user namespace)"
        else:
            held = self._cgroup.describe()
        return f"{who}; {held}; disk: {self._disk.describe()}"

    # -- running ---------------------------------------------------------------------------

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """The full command line that runs `argv` in this sandbox (run from the host, as the agent)."""
        environment = {"PATH": DEFAULT_PATH, "HOME": "/tmp/home", "LANG": "C.UTF-8", "TMPDIR": "/tmp", **(env or {})}
        limits = [
            self._tools["prlimit"],
            f"--cpu={self.limits.cpu_s}",
            f"--as={self.limits.memory_bytes}",
            f"--fsize={self.limits.file_bytes}",
            f"--nofile={self.limits.open_files}",
            "--core=0",  # a core file is the task's memory, written into what may be published
            *([] if self._cgroup is not None and self._cgroup.holds_pids else [f"--nproc={self.limits.processes}"]),
            "--",
        ]
        join = [] if self._cgroup is None else ["/bin/sh", "-c", _JOIN, "bzzz-join", *self._cgroup.procs_files(), "--"]
        if self.bwrap is None:
            environment["HOME"] = str(self.tmp / "home")
            environment["TMPDIR"] = str(self.tmp)
            clean = [self._tools["env"], "-i", *(f"{k}={v}" for k, v in environment.items())]
            return [*join, *self._drop(), *clean, *limits, *argv]
        box = [self.bwrap, *self._namespaces(), *self._view(), "--chdir", WORKSPACE, "--clearenv"]
        for key, value in environment.items():
            box += ["--setenv", key, value]
        if self._meet is None:
            return [*join, *self._drop(), *box, "--", *limits, *argv]
        # unshare only unshares and execs: the same process then joins the cgroups, before anything forks.
        meet = [self._tools["unshare"], "--mount", "--propagation", "private", "--"]
        bind = ["/bin/sh", "-c", _MEET, "bzzz-meet", str(self._meet), str(self.files), str(self.tmp)]
        return [*meet, *join, *bind, *self._drop(), *box, "--", *limits, *argv]

    def _drop(self) -> list[str]:
        """Threat: root in the sandbox keeps every capability (CapEff 000001fffeffffff), so a
        task could `umount -l` what covers the token file or `mount -o remount,rw /` and write
        the host's /etc.

        As root we become `uid` with no capabilities (inheritable, bounding, and no_new_privs so
        no setuid binary brings any back) *before* bwrap, which then runs unprivileged: the
        task's real uid owns nothing of the agent's and its capability sets are all 0. When the
        agent is not root, bwrap runs as the agent's own uid in a user namespace, capabilities 0
        as well; the task then shares the agent's uid on the host, so only the mount view (not
        file permissions) keeps the agent's files out of its reach.
        """
        if os.geteuid() != 0:
            return []
        return [
            self._tools["setpriv"],
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def _namespaces(self) -> list[str]:
        """Threat: a task that nests user namespaces regains capabilities over new mounts and
        reaches kernel surface meant for root; one that sees the agent's processes can signal or
        inspect them; one with the host network reaches the forge, the mesh, and any service on
        loopback; one that keeps the agent's terminal session can push input into it (TIOCSTI).
        `network=True` shares the host's network namespace: loopback services and abstract
        unix sockets of the host are then reachable, so it is for operators who want exactly that.
        """
        return [
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            *([] if self.network else ["--unshare-net"]),
            "--new-session",
            "--die-with-parent",
        ]

    def _view(self) -> list[str]:
        """Threat: whatever a task can read it can publish (a failure comment, a PR), and
        whatever it can write outlives it.

        So it sees only what programs need, read-only (/usr, /etc, /opt), and what it works on;
        the agent's home, data dir, run dir and token file are simply not there. `hidden` paths
        inside a tree that is there (a token under /etc) are covered: a dir by an empty,
        read-only tmpfs, a file by /dev/null (on a nodev mount, so it cannot even be opened).
        The root, /dev and the covers are read-only, so the only places it can write are its
        workspace and /tmp, both in the size-bounded area; /dev/shm is a small tmpfs.
        """
        view = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        mounted = [Path("/usr"), Path("/etc")]
        if Path("/opt").is_dir():
            view += ["--ro-bind", "/opt", "/opt"]
            mounted.append(Path("/opt"))
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if host.is_symlink():  # merged /usr
                view += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                view += ["--ro-bind", str(host), str(host)]
                mounted.append(host)
        view += [
            "--dev",
            "/dev",
            "--size",
            str(SHM_BYTES),
            "--tmpfs",
            "/dev/shm",
            "--remount-ro",
            "/dev",
            "--proc",
            "/proc",
            "--bind",
            str(self._meet / "workspace") if self._meet else str(self.files),
            WORKSPACE,
            "--bind",
            str(self._meet / "tmp") if self._meet else str(self.tmp),
            "/tmp",
            "--symlink",
            "/tmp",
            "/var/tmp",  # where some tools look for scratch space
        ]
        for path in self.hidden:
            resolved = Path(os.path.realpath(path))
            if not any(resolved.is_relative_to(top) for top in mounted) or not resolved.exists():
                continue  # not in the view at all
            if not _may_reach(resolved, self.uid):
                continue  # its permissions already keep the task out (and bwrap could not cover it)
            if resolved.is_dir():
                view += ["--size", "4096", "--tmpfs", str(resolved), "--remount-ro", str(resolved)]
            else:
                view += ["--ro-bind", "/dev/null", str(resolved)]
        return [*view, "--remount-ro", "/"]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout_s: float | None = None,
    ) -> Result:
        """Run `argv` in /workspace and wait for it: at most the wall-clock limit, and while
        the task stays within its CPU and disk budget. Whatever it started is gone afterwards."""
        if not argv:
            raise ValueError("nothing to run")
        if self._closed:
            raise RuntimeError("this sandbox is closed")
        if not self.isolated:
            log.warning("running a task command WITHOUT isolation (bubblewrap is missing)", argv=list(argv))
        if os.geteuid() == 0:
            _own(self.files, self.uid)
            _ensure_dir(self.tmp, "home", self.uid)
        limit = self.limits.wall_s if timeout_s is None else min(timeout_s, self.limits.wall_s)
        started = time.monotonic()
        process = subprocess.Popen(
            self.command(argv, env),
            cwd=self.files if self.bwrap is None else "/",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": _TOOLS_PATH},  # what bwrap and the tools run with; never the agent's own
            start_new_session=True,  # one group to kill, whatever the command starts
        )
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        kept = self.limits.output_bytes
        out, err = _Capture(process.stdout, kept), _Capture(process.stderr, kept)
        feeder = threading.Thread(target=_feed, args=(process.stdin, (stdin or "").encode()), daemon=True)
        for thread in (out, err, feeder):
            thread.start()
        killed_for = self._watch(process, started + limit)
        self._end(process)
        for thread in (out, err, feeder):
            thread.join(30)
        returncode = process.returncode
        if killed_for is None and self._cgroup is not None and self._cgroup.oom_kills() > 0:
            killed_for = "memory limit"
        if killed_for is None and self._disk.over():
            killed_for = "disk limit"  # written between the watchdog's last look and the end
        if self.isolated and returncode > 128:
            # bwrap reports a command killed by signal N as status 128 + N, as shells do.
            returncode = -(returncode - 128)
        return Result(
            tuple(argv),
            returncode,
            out.text(),
            err.text(),
            killed_for == "time limit",
            time.monotonic() - started,
            killed_for,
        )

    def _watch(self, process: subprocess.Popen[bytes], deadline: float) -> str | None:
        """Wait for the command; stop it, and say why, past the wall clock, the task's total CPU
        time (cgroup) or its disk budget (when no file system bounds it)."""
        next_look = 0.0
        while True:
            try:
                process.wait(POLL_S)
                return None
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            reason = None
            if now >= deadline:
                reason = "time limit"
            elif self._cgroup is not None and self._cgroup.cpu_seconds() > self.limits.cpu_s:
                reason = "cpu limit"
            elif now >= next_look:
                looked = time.monotonic()
                if self._disk.over():
                    reason = "disk limit"
                # A huge tree takes long to sum: look less often rather than spend the agent's CPU on it.
                next_look = time.monotonic() + max(DISK_LOOK_S, 4 * (time.monotonic() - looked))
            if reason is not None:
                log.warning("stopping a task command", reason=reason, area=str(self.area))
                return reason

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """Threat: a task leaves something running (a daemon, a `sleep 1e9 &`) that keeps
        writing, holds the workspace, or waits for the next task's files.

        bwrap's init is PID 1 of the task's PID namespace, so all of it dies with init, and
        init dies with bwrap (--die-with-parent); we kill bwrap's process group, then every
        process left in the cgroup until it is empty."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill()
        process.wait()

    def close(self) -> None:
        """Kill anything left, remove the cgroups, unmount and delete the area. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._cgroup is not None:
            self._cgroup.remove()
        self._disk.remove()


def check_available(
    parent: Path, *, allow_unsandboxed: bool = False, uid: int = SANDBOX_UID, bwrap: str | None = "bwrap"
) -> None:
    """At executor start: refuse to take tasks (`SandboxUnavailable`, saying why) when they
    could not be isolated, rather than fail each one."""
    parent = Path(parent).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    found = shutil.which(bwrap) if bwrap else None
    if found is not None:
        _probe(parent, uid, found)
        return
    if not allow_unsandboxed:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so task commands cannot be isolated: "
            "install it (Debian: apt-get install bubblewrap), or set allow_unsandboxed "
            "to run them without filesystem and network isolation"
        )
    if os.geteuid() == 0:
        _check_reachable(parent, uid)


_CANNOT = "bubblewrap cannot make the task sandbox here"


def _probe(parent: Path, uid: int, bwrap: str) -> None:
    """bubblewrap being installed is not enough: a container's seccomp filter or its masked
    /proc paths, or a host without unprivileged user namespaces, stop it from making the
    sandbox. So one real (tiny) task runs here, the way every task will."""
    try:
        with Sandbox.open(
            parent, name="probe", uid=uid, bwrap=bwrap, loop_disk=False, limits=Limits(wall_s=60, disk_bytes=1 << 20)
        ) as sandbox:
            result = sandbox.run(["true"])
    except OSError as error:
        raise SandboxUnavailable(f"{_CANNOT} ({error}); {_host_must_allow()}") from None
    if not result.ok:
        said = result.stderr.strip().splitlines()[-1:] or [result.describe()]
        raise SandboxUnavailable(f"{_CANNOT} ({said[0]}); {_host_must_allow()}")


def _host_must_allow() -> str:
    # One line for both places an agent runs: whoever reads it knows which one is theirs.
    return (
        "bubblewrap needs unprivileged user namespaces and a /proc of its own: in a podman container "
        "run it with `--security-opt unmask=/proc/*` (Docker: `--security-opt systempaths=unconfined "
        "--security-opt seccomp=unconfined`; a Swarm service cannot be given either); under systemd leave "
        "out RestrictNamespaces=yes, ProtectKernelTunables= and ProcSubset=pid; on a host allow user namespaces "
        "(sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1); see docker/README.md"
    )


def clean_stale(parent: Path) -> list[Path]:
    """At executor start: remove every area (and its image, loop device and cgroups) that an
    executor killed mid-task left under `parent`; returns the areas and images removed.

    Threat: a killed executor's areas hold task output (and disk: up to `disk_bytes` each)
    forever, and a leftover process in its cgroup could still be running. Everything under
    `parent` named like an area is removed, so `parent` must not be shared with a live executor.
    Nothing is followed through a symlink while deleting.
    """
    parent = Path(parent).resolve()
    if not parent.is_dir():
        return []
    names: set[str] = set()
    for mountpoint in _mounts_under(parent):
        if _AREA.match(mountpoint.name) and mountpoint.parent == parent:
            names.add(mountpoint.name)
            _try_unmount(mountpoint)
    _detach_loops(parent)
    removed: list[Path] = []
    for entry in sorted(parent.iterdir()):
        stem = entry.name.removesuffix(".img")
        if not _AREA.match(stem):
            continue
        names.add(stem)
        if entry.is_dir() and not entry.is_symlink():
            if os.path.ismount(entry) and not _try_unmount(entry):
                continue  # never delete through a mount we could not take away
            _remove_tree(entry)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    for name in names:
        for cgroup in _Cgroup.existing(name):
            cgroup.remove()
    if removed:
        log.info(
            "removed sandbox areas left by a stopped executor", parent=str(parent), areas=[str(p) for p in removed]
        )
    return removed


# -- the disk area -----------------------------------------------------------------------------


class _Disk:
    """The task's area: its workspace files and its /tmp, bounded to `disk_bytes` on disk.

    Threat: a task writes until the host's disk (or, with a tmpfs /tmp, its RAM) is full, and
    every other task, the agent's state and the signed log with it fail.

    As root the area is its own file system: a sparse image of `disk_bytes`, ext4, loop-mounted
    nosuid,nodev on the area dir, so writing past it fails with ENOSPC and its inodes are
    bounded too. Otherwise a watchdog sums the area's allocated blocks (each entry counted as
    at least one 4 KiB block, so that millions of empty files count) every `DISK_LOOK_S`, and
    the task is killed when it is over: the slack is what it writes between two looks (each
    file under `file_bytes`), and it is counted again once the command ends.
    """

    def __init__(self, area: Path, limit: int, image: Path | None) -> None:
        self.area = area
        self.limit = limit
        self.image = image

    @classmethod
    def make(cls, area: Path, limit: int, uid: int, *, loop: bool) -> _Disk:
        if loop:
            image = area.with_name(area.name + ".img")
            try:
                fd = os.open(image, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    os.ftruncate(fd, limit)
                finally:
                    os.close(fd)
                _tool(
                    "mkfs.ext4",
                    "-q",
                    "-F",
                    "-O",
                    "^has_journal",
                    "-m",
                    "0",
                    "-E",
                    f"root_owner={uid}:{uid}",
                    str(image),
                )
                area.mkdir(mode=0o700)
                _tool("mount", "-o", "loop,nosuid,nodev,noatime", str(image), str(area))
                # The mount's root is ours; files/ and tmp/ in it are the task's.
                os.chown(area, 0, 0)
                os.chmod(area, 0o711)
                with contextlib.suppress(OSError):
                    (area / "lost+found").rmdir()
                return cls(area, limit, image)
            except (OSError, subprocess.SubprocessError) as error:
                log.warning(
                    "cannot loop-mount a disk for the task; its disk is bounded by a watchdog instead",
                    error=_said(error),
                )
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    if os.path.ismount(area):
                        _unmount(area)
                with contextlib.suppress(OSError):
                    area.rmdir()
                image.unlink(missing_ok=True)
        area.mkdir(mode=0o711)
        return cls(area, limit, None)

    def describe(self) -> str:
        size = _size(self.limit)
        if self.image is not None:
            return f"{size} loop-mounted ext4"
        return f"{size}, watched every {DISK_LOOK_S:g} s"

    def over(self) -> bool:
        if self.image is not None:
            return False  # the file system itself says no
        try:
            return _usage(self.area, self.limit) > self.limit
        except OSError:
            return False

    def remove(self) -> None:
        if self.image is not None:
            if os.path.ismount(self.area):
                _try_unmount(self.area)
            self.image.unlink(missing_ok=True)
        if self.area.is_dir() and not os.path.ismount(self.area):
            _remove_tree(self.area)


def _usage(top: Path, stop_past: int) -> int:
    """Bytes allocated under `top`, walked by file descriptor so that no symlink (even one
    swapped in during the walk) leads it out of the area; stops counting past `stop_past`."""
    total = 0
    stack = [os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)]
    try:
        while stack:
            fd = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        total += max(info.st_blocks * 512, 4096)
                        if total > stop_past:
                            return total
                        if stat.S_ISDIR(info.st_mode):
                            try:
                                stack.append(_open_dir(entry.name, fd))
                            except FileNotFoundError:
                                continue  # removed meanwhile
                            except OSError:
                                return stop_past + 1  # what cannot be looked at counts as too much
            finally:
                os.close(fd)
    finally:
        for fd in stack:
            os.close(fd)
    return total


def _open_dir(name: str, parent_fd: int) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except PermissionError:
        # A task that shares the agent's uid may make a dir unreadable to hide what it holds
        # from the watchdog; as its owner we may open it again (through a descriptor, never
        # through a name it could swap for a link).
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)
        finally:
            os.close(handle)
        return os.open(name, flags, dir_fd=parent_fd)


def _own(top: Path, uid: int) -> None:
    """Give everything under `top` to the task's uid before it runs.

    The host (as root) may have written files there between runs, and a root-owned file the
    task cannot change would fail the task; lchown, by file descriptor, never follows a link."""
    stack = [os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)]
    os.chown(stack[0], uid, uid)
    try:
        while stack:
            fd = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        info = entry.stat(follow_symlinks=False)
                        if info.st_uid != uid or info.st_gid != uid:
                            os.chown(entry.name, uid, uid, dir_fd=fd, follow_symlinks=False)
                        if stat.S_ISDIR(info.st_mode):
                            stack.append(
                                os.open(
                                    entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                                )
                            )
            finally:
                os.close(fd)
    finally:
        for fd in stack:
            os.close(fd)


def _ensure_dir(parent: Path, name: str, uid: int) -> None:
    # The task may have replaced it with a link between runs: made and owned through a
    # descriptor, never through the name.
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=fd)
            os.chown(name, uid, uid, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    def retry(function: Callable[..., object], failed: str, _info: object) -> None:
        # A task may leave a directory it made unreadable (mode 000): its owner may open it again.
        for target in (os.path.dirname(failed), failed):
            if os.path.isdir(target) and not os.path.islink(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, 0o700)
        with contextlib.suppress(FileNotFoundError):
            function(failed)

    shutil.rmtree(path, onerror=retry)  # fd-based on Linux: never follows a link out


def _mounts_under(parent: Path) -> list[Path]:
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            point = Path(_unescape(line.split()[4]))
            if point.is_relative_to(parent) and point != parent:
                found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape(field_: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def _unmount(point: Path) -> None:
    try:
        _tool("umount", str(point))
    except (OSError, subprocess.SubprocessError):
        _tool("umount", "-l", str(point))  # busy: detached now, freed when its last user goes


def _try_unmount(point: Path) -> bool:
    try:
        _unmount(point)
        return True
    except (OSError, subprocess.SubprocessError) as error:
        log.error("cannot unmount a sandbox area", area=str(point), error=_said(error))
        return False


def _detach_loops(parent: Path) -> None:
    """Loop devices whose image sits under `parent` (an executor killed between attaching and
    mounting, or a lazy unmount) are detached."""
    if os.geteuid() != 0 or shutil.which("losetup", path=_TOOLS_PATH) is None:
        return
    try:
        listing = _tool("losetup", "--list", "--json", "--output", "NAME,BACK-FILE")
        devices = json.loads(listing or "{}").get("loopdevices", [])
    except (OSError, subprocess.SubprocessError, ValueError):
        return
    for device in devices:
        backing = str(device.get("back-file") or "").removesuffix(" (deleted)")
        image = Path(backing)
        if image.parent == parent and image.name.endswith(".img") and _AREA.match(image.name[:-4]):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _tool("losetup", "-d", str(device.get("name")))


def _tool(name: str, *args: str) -> str:
    program = shutil.which(name, path=_TOOLS_PATH) or name
    done = subprocess.run(
        [program, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PATH": _TOOLS_PATH, "LANG": "C"},
    )
    return done.stdout


def _said(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return f"{error.cmd[0]}: {(error.stderr or '').strip()[:300]}"
    return str(error)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


# -- reachability -----------------------------------------------------------------------------


def _may_reach(path: Path, uid: int) -> bool:
    """Whether a process of `uid` with no capabilities could reach `path` through the search
    permission of every directory above it (an ACL anywhere counts as "it may")."""
    return _blocked_at(path, uid) is None


def _blocked_at(path: Path, uid: int) -> Path | None:
    for directory in [*reversed(path.parents)]:
        try:
            info = os.stat(directory)
        except OSError:
            return directory
        if _has_acl(directory):
            continue
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid == uid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None


def _has_acl(path: Path) -> bool:
    try:
        return "system.posix_acl_access" in os.listxattr(path)
    except OSError:
        return False


def _meeting_point(area: Path, uid: int) -> Path | None:
    """A dir the task's uid can reach that is neither above nor in the area: covering it (in the
    command's own mount namespace) hides nothing the command needs."""
    for candidate in map(Path, _MEETING_POINTS):
        if (
            candidate.is_dir()
            and not candidate.is_symlink()
            and not area.is_relative_to(candidate)
            and _may_reach(candidate / "x", uid)
        ):
            return candidate
    return None


def _check_reachable(parent: Path, uid: int) -> None:
    # Without a meeting point (or bubblewrap) the task's uid uses the area's own paths, so it
    # must be able to pass through the dirs above (search only: it cannot list them).
    blocked = _blocked_at(parent / "area", uid)
    if blocked is not None:
        raise SandboxUnavailable(
            f"the task's uid {uid} cannot reach {parent}: {blocked} does not let others "
            f"search it (mode {stat.S_IMODE(os.stat(blocked).st_mode):o}); run `chmod o+x {blocked}` "
            "or put the work directory elsewhere"
        )


# -- cgroups ----------------------------------------------------------------------------------


class _Cgroup:
    """The task's cgroup: its processes, memory and CPU time as a whole.

    Threat: per-process limits do not bound a task that forks (one ran 1,504 processes), nor
    one whose many small processes together eat the machine's memory or CPU.

    cgroup v2 where the host delegates it (the agent's own cgroup is writable and has `pids`
    and `memory`); else cgroup v1 as root (pids, memory, cpuacct); else none, and the rlimits
    (RLIMIT_NPROC counted in the task's own user namespace) are what holds. A child
    `bzzz/<area>` is made under the agent's own cgroup, so that the host's limits on the agent
    still hold its tasks.
    """

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs  # controller ("pids", "memory", "cpuacct"; v2: "" for the one dir) -> dir

    @classmethod
    def make(cls, name: str, limits: Limits) -> _Cgroup | None:
        for attempt in (cls._make_v2, cls._make_v1):
            try:
                made = attempt(name, limits)
            except OSError as error:
                log.warning("cannot make a cgroup for the task", error=str(error))
                continue
            if made is not None:
                return made
        return None

    @classmethod
    def existing(cls, name: str) -> list[_Cgroup]:
        found = []
        v2 = _own_v2()
        if v2 is not None and (v2 / "bzzz" / name).is_dir():
            found.append(cls(2, {"": v2 / "bzzz" / name}))
        dirs = {c: d / "bzzz" / name for c, d in _own_v1().items() if (d / "bzzz" / name).is_dir()}
        if dirs:
            found.append(cls(1, dirs))
        return found

    @classmethod
    def _make_v2(cls, name: str, limits: Limits) -> _Cgroup | None:
        own = _own_v2()
        if own is None or not os.access(own, os.W_OK):
            return None
        if not {"pids", "memory"} <= set(_words(own / "cgroup.controllers")):
            return None
        if not {"pids", "memory"} <= set(_words(own / "cgroup.subtree_control")):
            try:
                (own / "cgroup.subtree_control").write_text("+pids +memory")
            except OSError:
                return None  # the agent's cgroup holds processes: not delegated for children
        top = own / "bzzz"
        top.mkdir(exist_ok=True)
        wanted = " ".join(f"+{c}" for c in ("pids", "memory", "cpu") if c in _words(top / "cgroup.controllers"))
        with contextlib.suppress(OSError):
            (top / "cgroup.subtree_control").write_text(wanted)
        if not {"pids", "memory"} <= set(_words(top / "cgroup.subtree_control")):
            return None
        path = top / name
        path.mkdir()
        made = cls(2, {"": path})
        try:
            (path / "pids.max").write_text(str(limits.processes))
            (path / "memory.max").write_text(str(limits.memory_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
        except OSError:
            made.remove()
            raise
        return made

    @classmethod
    def _make_v1(cls, name: str, limits: Limits) -> _Cgroup | None:
        if os.geteuid() != 0:
            return None
        dirs: dict[str, Path] = {}
        made = cls(1, dirs)
        try:
            for controller, base in _own_v1().items():
                if not os.access(base, os.W_OK):
                    continue
                path = base / "bzzz" / name
                path.mkdir(parents=True)
                dirs[controller] = path
                if controller == "pids":
                    (path / "pids.max").write_text(str(limits.processes))
                elif controller == "memory":
                    (path / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                    with contextlib.suppress(OSError):  # only where swap accounting is on
                        (path / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
        except OSError:
            made.remove()
            raise
        return made if dirs else None

    @property
    def holds_pids(self) -> bool:
        return self.version == 2 or "pids" in self.dirs

    def describe(self) -> str:
        if self.version == 2:
            return "cgroup v2 (pids, memory, cpu time)"
        return f"cgroup v1 ({', '.join(sorted(self.dirs, key=['pids', 'memory', 'cpuacct'].index))})"

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
        return found

    def cpu_seconds(self) -> float:
        try:
            if self.version == 2:
                for line in (self.dirs[""] / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) / 1e6
            elif "cpuacct" in self.dirs:
                return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            pass
        return 0.0

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        path = self.dirs.get("" if self.version == 2 else "memory")
        if path is None:
            return 0
        try:
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill(self) -> None:
        """Kill every process in the cgroup, again until none is left (one may fork meanwhile)."""
        if self.version == 2 and (self.dirs[""] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.dirs[""] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 60
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        if self.pids():
            log.error("processes of a task outlived it", pids=sorted(self.pids()))

    def remove(self) -> None:
        self.kill()
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY:
                        log.warning("cannot remove a task's cgroup", path=str(path), error=str(error))
                        break
                    time.sleep(0.05)


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _cgroup_mounts() -> Iterator[tuple[str, Path, str, set[str]]]:
    """(file system type, mount point, root inside the hierarchy, super options) of each cgroup mount."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                yield tail[0], Path(_unescape(fields[4])), _unescape(fields[3]), set(tail[2].split(","))


def _own_cgroups() -> dict[str, str]:
    """The agent's own cgroup path per v1 controller, and "" -> its v2 path."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _inside(mount: Path, root: str, path: str) -> Path:
    relative = path[len(root) :] if root != "/" and path.startswith(root) else path
    return mount / relative.lstrip("/")


def _own_v2() -> Path | None:
    own = _own_cgroups().get("")
    if own is None:
        return None
    for kind, mount, root, _ in _cgroup_mounts():
        if kind == "cgroup2":
            path = _inside(mount, root, own)
            if (path / "cgroup.controllers").exists():
                return path
    return None


def _own_v1() -> dict[str, Path]:
    own = _own_cgroups()
    found: dict[str, Path] = {}
    for kind, mount, root, options in _cgroup_mounts():
        if kind != "cgroup":
            continue
        for controller in ("pids", "memory", "cpuacct"):
            if controller in options and controller in own and controller not in found:
                path = _inside(mount, root, own[controller])
                if path.is_dir():
                    found[controller] = path
    return found


# -- talking to the command -------------------------------------------------------------------


class _Capture(threading.Thread):
    """Reads one of the command's streams to its end, keeping its head and tail only.

    Threat: a task that prints without end fills the agent's memory."""

    def __init__(self, stream: object, limit: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.dropped = 0

    def run(self) -> None:
        read = self.stream.read1  # type: ignore[attr-defined]
        try:
            while chunk := read(65536):
                room = self.half - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail.append(chunk)
                    self.tail_size += len(chunk)
                    self._trim()
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.stream.close()  # type: ignore[attr-defined]

    def _trim(self) -> None:
        excess = self.tail_size - self.half
        while excess > 0:
            first = self.tail[0]
            cut = min(len(first), excess)
            if cut == len(first):
                self.tail.popleft()
            else:
                self.tail[0] = first[cut:]
            self.tail_size -= cut
            self.dropped += cut
            excess -= cut

    def text(self) -> str:
        tail = b"".join(self.tail)
        if self.dropped:
            middle = f"\n[... {self.dropped} bytes of output left out ...]\n".encode()
            return (bytes(self.head) + middle + tail).decode("utf-8", "replace")
        return (bytes(self.head) + tail).decode("utf-8", "replace")


def _feed(stream: object, data: bytes) -> None:
    try:
        if data:
            stream.write(data)  # type: ignore[attr-defined]
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()  # type: ignore[attr-defined]


__all__ = [
    "DEFAULT_PATH",
    "SANDBOX_UID",
    "Limits",
    "Result",
    "Sandbox",
    "SandboxUnavailable",
    "check_available",
    "clean_stale",
]
