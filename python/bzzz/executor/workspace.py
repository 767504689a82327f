"""A task's workspace: the agent's pristine clone, the copy a task works on, and its result.

Threat (docs/security.md, "host-side git"): a task writes its working directory, `.git`
included. Git reads a great deal from `.git` and from the work tree, and much of it makes git
run a program or contact a host: hooks, `core.fsmonitor`, `core.hooksPath`, `core.sshCommand`,
`core.askPass`, filter/diff/merge drivers, `include.path`, credential helpers,
`url.<x>.insteadOf`, `remote.*.url`, `http.proxy`, a `.git` *file* pointing at another
directory, a `.git` symlink, nested repositories... The agent's own git runs on the host with
the token, so any of it read by that git is code execution as the agent, or the token sent
wherever the task chose.

So the agent's git never reads anything a task could write:

* `Workspace.clone` makes the agent's **pristine** bare clone in a private directory
  (`<root>/<branch>-<random>/repo.git`, mode 0700). No task ever sees or writes it.
* `export` gives the task a separate copy: the tree at the branch's head plus a `.git` of its
  own (cloned from the pristine one, no remote), for tasks that run git themselves. Once the
  task starts, host git never opens that copy again.
* `collect` walks the task's tree itself, without git and without following any link, refusing
  the whole result for anything that is not plain repository content (`ResultRefused`); it
  then builds the new tree with plumbing (`hash-object --no-filters`, `update-index
  --index-info`, `write-tree`), so no attribute, filter or hook is ever consulted. The task's
  `.git` is never read at all: its commits, config and hooks simply do not exist for us.
* `commit` and `push` are plumbing on the pristine repository (`commit-tree`, `update-ref`) and
  a push to the URL from the agent's configuration (`git_url`), never to a remote named in any
  config.

Every git process runs through `_git`: an environment built from nothing (no inherited `GIT_*`,
no system or global config, an empty private `HOME`), explicit `GIT_DIR`, hooks, fsmonitor,
credential helpers and prompts off, only the configured URL's protocol allowed, no redirects
followed. Config goes in the environment (`GIT_CONFIG_COUNT`), not argv, because argv is
readable by every local user in /proc; the token travels only as an `http.extraHeader` there,
for the clone and the push, and never reaches a file, an argv or an error message.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import ipaddress
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

GIT_TIMEOUT_S = 300.0
_MARKER = ".bzzz-workspace"  # marks a directory `remove_stale` may delete
_MAX_DEPTH = 200  # directory nesting in a result; deeper is refused, not recursed into
_MAX_PATH_BYTES = 3000  # a result path, so that staging it stays far from PATH_MAX
_READ_CHUNK = 1 << 20
_REPO_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
# Code points HFS+ ignores in names, so `.g\u200cit` is `.git` on a Mac (git's is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys([0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])
# Files git reads from the work tree and refuses (fsck, checkout) as symlinks.
_NO_SYMLINK = {".gitmodules", ".gitattributes", ".gitignore", ".mailmap"}


class WorkspaceError(RuntimeError):
    """A git operation failed; the message never holds the token."""


class ResultRefused(WorkspaceError):
    """The task's files break a rule; nothing of the result was taken. `.reason` says which rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the task's result was refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ResultLimits:
    """How much of a task's tree `collect` will take: a task that writes more is refused.

    Threat: a result too big to review, or big enough to fill the agent's disk while staged.
    `max_entries` bounds the walk itself (ignored build output included)."""

    max_files: int = 20_000
    max_file_bytes: int = 50 << 20
    max_total_bytes: int = 1 << 30
    max_entries: int = 200_000


def branch_name(number: int, agent: str) -> str:
    """`bzzz/<issue>-<agent>`, with anything git would refuse in the agent's name replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", agent).strip(".-") or "agent"
    return f"bzzz/{number}-{safe}"


def git_url(api_base_url: str, repo: str) -> str:
    """The repository's git URL, from the agent's configured API base only.

    Threat: a clone URL taken from an API answer or any repository file is chosen by someone
    else, and the push sends the token to it. github.com's API gives github.com; a GitHub
    Enterprise `https://host/api/v3` gives `https://host`; anything else (the test forge)
    serves git under its own base."""
    if not _REPO_NAME.fullmatch(repo) or any(part in (".", "..") for part in repo.split("/")):
        raise WorkspaceError(f"not a repository name: {repo!r}")
    base = api_base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.hostname == "api.github.com":
        return f"https://github.com/{repo}.git"
    if parts.path.endswith("/api/v3"):
        return f"{parts.scheme}://{parts.netloc}{parts.path[: -len('/api/v3')]}/{repo}.git"
    return f"{base}/{repo}.git"


@dataclass
class Workspace:
    """The agent's pristine clone of one repository, on the task's branch."""

    path: Path  # private directory holding everything below
    git_dir: Path  # the pristine bare repository; only the agent's git ever touches it
    url: str  # where it came from and where `push` goes: the agent's configuration
    branch: str
    base: str  # the default branch it started from
    author: tuple[str, str]
    changed: list[str] = field(default_factory=list)  # from the last `collect`
    _token: str | None = field(repr=False, default=None)
    _tree: str | None = field(repr=False, default=None)

    @classmethod
    def clone(
        cls,
        root: Path,
        url: str,
        *,
        token: str | None,
        branch: str,
        author: tuple[str, str],
        max_repo_bytes: int = 1 << 30,
    ) -> Workspace:
        """Clone `url` (https, or http to a loopback host) into a new private directory under `root`."""
        _check_url(url)
        root = root.absolute()
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=branch.replace("/", "-") + "-", dir=root))
        (path / _MARKER).touch()
        (path / "home").mkdir(mode=0o700)
        workspace = cls(path, path / "repo.git", url, branch, "", author, _token=token or None)
        try:
            workspace._run(
                [
                    "clone",
                    "--bare",
                    "--single-branch",
                    "--no-tags",
                    "--template=",
                    "--quiet",
                    url,
                    str(workspace.git_dir),
                ],
                git_dir=None,
                network=True,
                watch=(path, max_repo_bytes),
            )
            if _disk_usage(path) > max_repo_bytes:
                raise WorkspaceError(f"the repository is larger than {max_repo_bytes} bytes")
            base = workspace._run(["symbolic-ref", "--quiet", "--short", "HEAD"], check=False).strip()
            head = workspace._run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], check=False).strip()
            if not base or not head:
                raise WorkspaceError(f"{url} has no commits to branch from")
            workspace.base = base
            workspace._run(["update-ref", f"refs/heads/{branch}", head])
            workspace._run(["symbolic-ref", "HEAD", f"refs/heads/{branch}"])
        except BaseException:
            workspace.remove()
            raise
        return workspace

    def export(self, dest: Path) -> None:
        """Empty `dest`, then fill it with the branch's tree and a private `.git` for the task.

        `dest` is a directory the sandbox will own. Its `.git` is a clone of the pristine
        repository with no remote and nothing of the agent's: whatever the task does to it stays
        there, because host git never reads it again. Call it again to start over."""
        dest = dest.absolute()
        if not stat.S_ISDIR(os.lstat(dest).st_mode):
            raise WorkspaceError(f"{dest} is not a directory")
        self._tree, self.changed = None, []  # a result collected before starting over is not this one
        try:
            _empty(dest)
        except OSError as err:
            raise WorkspaceError(f"cannot empty the task's directory: {err.strerror}") from None
        self._run(
            [
                "clone",
                "--quiet",
                "--no-local",
                "--no-hardlinks",
                "--template=",
                "--branch",
                self.branch,
                str(self.git_dir),
                str(dest),
            ],
            git_dir=None,
            protocol="file",
        )
        task_git = dest / ".git"
        self._run(["remote", "remove", "origin"], git_dir=task_git)
        self._run(["config", "user.name", self.author[0]], git_dir=task_git)
        self._run(["config", "user.email", self.author[1]], git_dir=task_git)
        # The reflog says where the clone came from: a host path the task has no need of.
        shutil.rmtree(task_git / "logs", ignore_errors=True)

    def collect(self, src: Path, limits: ResultLimits = ResultLimits()) -> list[str]:
        """Check the task's tree at `src` and make it the tree `commit` will commit.

        `src/.git` is skipped unread. The whole result is refused (`ResultRefused`) for: a
        symlink that is absolute, leaves the repository, or points into a `.git`; any other path
        component that git or a case-insensitive file system would take for `.git`; a special
        file (fifo, socket, device); a name that is not UTF-8; more than the limits allow.
        Ignored files (`.gitignore`) are left out, as `git add --all` would. Returns the paths
        added, changed or removed against the branch's head.

        Files are read by content, so a hard link is just another file: in the sandbox it can
        only link within the task's own mount (link() across mounts fails with EXDEV)."""
        src = src.absolute()
        self._tree, self.changed = None, []  # a refused result must not leave an earlier one to commit
        try:
            root_fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise WorkspaceError(f"cannot read the task's result: {err.strerror}") from None
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=self.path))
        try:
            entries: list[_Entry] = []
            _scan(root_fd, "", 0, entries, limits)
            tree = self._stage(root_fd, entries, stage, limits)
        finally:
            os.close(root_fd)
            shutil.rmtree(stage, ignore_errors=True)
        head_tree = self._run(["rev-parse", f"refs/heads/{self.branch}^{{tree}}"]).strip()
        changed = self._run(["diff-tree", "-r", "-z", "--name-only", "--no-renames", head_tree, tree])
        self._tree = tree
        self.changed = [
            p.decode("utf-8", "replace") for p in changed.encode("utf-8", "surrogateescape").split(b"\0") if p
        ]
        return list(self.changed)

    def _stage(self, root_fd: int, entries: list[_Entry], stage: Path, limits: ResultLimits) -> str:
        """The tree object for the checked `entries`; every byte is copied from `root_fd` first.

        Why a copy and plumbing, not `git add` on `src`: the task's tree is not ours to let git
        read (a late process could swap a checked file for a link), and `git add` applies the
        work tree's `.gitattributes` (filters, encodings). Git only sees names (a skeleton of
        empty files plus the real `.gitignore` texts, to decide what is ignored) and blobs we
        copied, hashed with `--no-filters`."""
        skeleton, blobs, index = stage / "tree", stage / "blobs", stage / "index"
        skeleton.mkdir()
        blobs.mkdir()
        for entry in entries:  # parents come before their children
            target = skeleton / entry.path
            if entry.kind == "dir":
                target.mkdir()
            elif entry.kind == "file" and entry.path.rsplit("/", 1)[-1] == ".gitignore":
                _copy_out(root_fd, entry, target, limits.max_file_bytes)
            else:
                target.touch()
        env = {"GIT_INDEX_FILE": str(index)}
        self._run(["read-tree", f"refs/heads/{self.branch}"], env=env)
        tracked = {}
        for record in _split0(self._run(["ls-files", "-z", "--stage"], env=env)):
            meta, name = record.split("\t", 1)
            mode, sha, _ = meta.split(" ")
            tracked[name] = (mode, sha)
        untracked = set(
            _split0(
                self._run(
                    ["ls-files", "-z", "--others", "--exclude-standard"], env=env, work_tree=skeleton, cwd=skeleton
                )
            )
        )
        dirs = {e.path for e in entries if e.kind == "dir"}
        chosen = [e for e in entries if e.kind != "dir" and (e.path in tracked or e.path in untracked)]
        if len(chosen) > limits.max_files:
            raise ResultRefused(f"it has {len(chosen)} files, more than the {limits.max_files} allowed")
        total = 0
        for entry in chosen:
            if entry.size > limits.max_file_bytes:
                raise ResultRefused(f"{_show(entry.path)} is larger than {limits.max_file_bytes} bytes")
            total += entry.size
            if total > limits.max_total_bytes:
                raise ResultRefused(f"its files add up to more than {limits.max_total_bytes} bytes")
        paths = []
        for n, entry in enumerate(chosen):
            blob = blobs / str(n)
            if entry.kind == "link":
                blob.write_bytes(entry.target.encode("utf-8"))
            else:
                _copy_out(root_fd, entry, blob, limits.max_file_bytes)
            paths.append(str(blob))
        shas = self._run(["hash-object", "-w", "--no-filters", "--stdin-paths"], stdin="\n".join(paths) + "\n").split()
        lines = [f"{_mode(e)} {sha}\t{e.path}\0" for e, sha in zip(chosen, shas, strict=True)]
        # Submodules stay as they were while their (empty) directory is still there.
        lines += [
            f"{mode} {sha}\t{name}\0" for name, (mode, sha) in tracked.items() if mode == "160000" and name in dirs
        ]
        new_index = {"GIT_INDEX_FILE": str(stage / "new-index")}
        self._run(["update-index", "-z", "--index-info"], env=new_index, stdin="".join(lines))
        return self._run(["write-tree"], env=new_index).strip()

    def commit(self, message: str) -> str | None:
        """Commit the collected tree as the agent; the commit's sha, or None if nothing changed."""
        if self._tree is None:
            raise WorkspaceError("nothing collected to commit")
        ref = f"refs/heads/{self.branch}"
        head = self._run(["rev-parse", "--verify", f"{ref}^{{commit}}"]).strip()
        if self._run(["rev-parse", f"{head}^{{tree}}"]).strip() == self._tree:
            return None
        name, email = self.author
        who = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        sha = self._run(["commit-tree", self._tree, "-p", head, "-F", "-"], env=who, stdin=message).strip()
        self._run(["update-ref", "-m", "bzzz: commit", ref, sha, head])
        return sha

    def push(self) -> None:
        """Force-push the branch to the configured URL: an earlier attempt's copy is replaced."""
        ref = f"refs/heads/{self.branch}"
        self._run(["push", "--quiet", "--force", "--no-verify", self.url, f"{ref}:{ref}"], network=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _run(
        self,
        args: list[str],
        *,
        git_dir: Path | None | bool = True,
        work_tree: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        network: bool = False,
        protocol: str | None = None,
        cwd: Path | None = None,
        check: bool = True,
        watch: tuple[Path, int] | None = None,
    ) -> str:
        """One hardened git call in this workspace (see `_git`); the token only when `network`.

        `git_dir`: True for the pristine repository, a path for another (the task's copy, while
        `export` makes it), None for no repository at all (`clone`)."""
        return _git(
            args,
            home=self.path / "home",
            git_dir=self.git_dir if git_dir is True else git_dir or None,
            work_tree=work_tree,
            env=env,
            stdin=stdin,
            protocol=urlsplit(self.url).scheme if network else protocol,
            token=self._token if network else None,
            secret=self._token,
            cwd=cwd,
            check=check,
            watch=watch,
        )


def remove_stale(root: Path) -> list[Path]:
    """Delete every workspace left under `root` by an executor that was killed; what it removed.

    Threat: a clone holds repository content (maybe private) and fills the disk if nothing ever
    removes it. Call it at executor start, before any task runs."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink() and (child / _MARKER).exists():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _git(
    args: list[str],
    *,
    home: Path,
    git_dir: Path | None,
    work_tree: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    protocol: str | None = None,
    token: str | None = None,
    secret: str | None = None,
    cwd: Path | None = None,
    check: bool = True,
    watch: tuple[Path, int] | None = None,
) -> str:
    """Run git with nothing of the environment, the user or the work tree able to steer it.

    The environment is built from scratch; config comes only from the repository git is given
    (ours) and the settings below, which switch off everything that runs a program or contacts
    a host on git's own initiative. Only `protocol` (the configured URL's scheme) may be used,
    and `http.extraHeader` carries `token` when given. `cwd` is the private home unless said,
    with discovery stopped above it, so a stray `.git` around can never be picked up."""
    home.mkdir(mode=0o700, exist_ok=True)
    config = [
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("core.untrackedCache", "false"),
        ("core.askPass", ""),
        ("core.sshCommand", "false"),
        ("core.gitProxy", ""),
        ("core.pager", "cat"),
        ("core.attributesFile", "/dev/null"),
        ("core.excludesFile", "/dev/null"),
        ("core.symlinks", "true"),
        ("core.protectNTFS", "true"),
        ("core.protectHFS", "true"),
        ("core.ignoreCase", "false"),
        ("credential.helper", ""),
        ("protocol.allow", "never"),
        ("http.followRedirects", "false"),
        ("http.proxy", ""),
        ("submodule.recurse", "false"),
        ("push.recurseSubmodules", "no"),
        ("fetch.recurseSubmodules", "false"),
        ("commit.gpgSign", "false"),
        ("tag.gpgSign", "false"),
        ("gc.auto", "0"),
        ("maintenance.auto", "false"),
        ("advice.detachedHead", "false"),
    ]
    if protocol:
        config.append((f"protocol.{protocol}.allow", "always"))
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    full_env = {
        "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_SYSTEM": "/dev/null",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PROTOCOL_FROM_USER": "0",
        # An allowlist overrides every protocol.* setting; a name no transport has allows none.
        "GIT_ALLOW_PROTOCOL": protocol or "none",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_CEILING_DIRECTORIES": str(home.parent),
        "GIT_CONFIG_COUNT": str(len(config)),
        **{f"GIT_CONFIG_KEY_{n}": key for n, (key, _) in enumerate(config)},
        **{f"GIT_CONFIG_VALUE_{n}": value for n, (_, value) in enumerate(config)},
        **(env or {}),
    }
    if git_dir is not None:
        full_env["GIT_DIR"] = str(git_dir)
    if work_tree is not None:
        full_env["GIT_WORK_TREE"] = str(work_tree)
    shown = _shown(args)
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd or home,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise WorkspaceError(f"git {shown} could not start: {error.strerror}") from None
    too_big = threading.Event()
    done = threading.Event()
    if watch is not None:
        threading.Thread(target=_watch_size, args=(process, watch, too_big, done), daemon=True).start()
    try:
        out, errors = process.communicate(
            stdin.encode("utf-8", "surrogateescape") if stdin is not None else None, timeout=GIT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        _kill(process)
        process.communicate()
        raise WorkspaceError(f"git {shown} took more than {GIT_TIMEOUT_S:.0f} s") from None
    finally:
        done.set()
    if too_big.is_set():
        assert watch is not None
        raise WorkspaceError(f"git {shown} stopped: the repository is larger than {watch[1]} bytes")
    if check and process.returncode != 0:
        message = _redact(errors.decode("utf-8", "replace").strip(), secret)[:2000]
        raise WorkspaceError(f"git {shown} failed: {message}")
    return out.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class _Entry:
    path: str  # relative, "/"-separated, checked
    kind: str  # "dir", "file" or "link"
    mode: int
    size: int
    ident: tuple[int, int]  # (st_dev, st_ino) when walked: what we copy must still be it
    target: str = ""  # a link's target


def _scan(fd: int, prefix: str, depth: int, entries: list[_Entry], limits: ResultLimits) -> None:
    """Walk the directory open at `fd`, never following a link; refuse what breaks a rule."""
    with os.scandir(fd) as listing:
        items = sorted(listing, key=lambda item: item.name)
    for item in items:
        name = item.name
        if not prefix and name == ".git":
            continue  # the task's own repository: never read
        rel = prefix + name
        try:
            size = len(rel.encode("utf-8"))
        except UnicodeEncodeError:
            raise ResultRefused(f"a file name is not UTF-8: {_show(rel)}") from None
        if size > _MAX_PATH_BYTES:
            raise ResultRefused(f"a path is longer than {_MAX_PATH_BYTES} bytes: {_show(rel[:80])}...")
        if _is_dotgit(name):
            raise ResultRefused(f"{_show(rel)} would be taken for a .git directory")
        if len(entries) >= limits.max_entries:
            raise ResultRefused(f"it has more than {limits.max_entries} entries")
        st = item.stat(follow_symlinks=False)
        ident = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if depth >= _MAX_DEPTH:
                raise ResultRefused(f"directories nest deeper than {_MAX_DEPTH} levels")
            entries.append(_Entry(rel, "dir", st.st_mode, 0, ident))
            child = _open_dir(fd, name, ident, rel)
            try:
                _scan(child, rel + "/", depth + 1, entries, limits)
            finally:
                os.close(child)
        elif stat.S_ISLNK(st.st_mode):
            raw = os.readlink(os.fsencode(name), dir_fd=fd)
            try:
                target = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ResultRefused(f"the link {_show(rel)} has a target that is not UTF-8") from None
            problem = _link_problem(rel, target)
            if problem:
                raise ResultRefused(f"the link {_show(rel)} -> {_show(target)} {problem}")
            entries.append(_Entry(rel, "link", st.st_mode, len(raw), ident, target))
        elif stat.S_ISREG(st.st_mode):
            entries.append(_Entry(rel, "file", st.st_mode, st.st_size, ident))
        else:
            raise ResultRefused(f"{_show(rel)} is a {_kind(st.st_mode)}, not a file, directory or link")


def _open_dir(parent: int, name: str, ident: tuple[int, int], rel: str) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError as err:
        raise _unreadable(rel, err) from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != ident:
        os.close(fd)
        raise ResultRefused(f"{_show(rel)} changed while it was being collected")
    return fd


def _copy_out(root_fd: int, entry: _Entry, dest: Path, max_bytes: int) -> None:
    """Copy the regular file `entry` from the task's tree to `dest`, re-checking it is still it.

    Opened below `root_fd` one component at a time with O_NOFOLLOW, so a directory or the file
    swapped for a link since the walk is refused, never followed; O_NONBLOCK so a swapped-in
    fifo cannot hang us."""
    parts = entry.path.split("/")
    fds: list[int] = []
    try:
        parent = root_fd
        for part in parts[:-1]:
            try:
                parent = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            except OSError as err:
                raise _unreadable(entry.path, err) from None
            fds.append(parent)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except OSError as err:
            raise _unreadable(entry.path, err) from None
        fds.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != entry.ident:
            raise ResultRefused(f"{_show(entry.path)} changed while it was being collected")
        written = 0
        with open(dest, "wb") as out:
            while chunk := os.read(fd, _READ_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise ResultRefused(f"{_show(entry.path)} is larger than {max_bytes} bytes")
                out.write(chunk)
    finally:
        for opened in reversed(fds):
            os.close(opened)


def _unreadable(rel: str, err: OSError) -> ResultRefused:
    if err.errno == errno.ELOOP:
        return ResultRefused(f"{_show(rel)} changed into a link while it was being collected")
    return ResultRefused(f"{_show(rel)} cannot be read: {err.strerror}")


def _is_dotgit(name: str) -> bool:
    """Whether some file system or git itself takes `name` for `.git` (git's is_ntfs_dotgit and
    is_hfs_dotgit): any case, trailing dots and spaces, an NTFS stream suffix, the 8.3 short
    name `git~1`, code points HFS+ ignores."""
    return _folded(name) in (".git", "git~1")


def _folded(name: str) -> str:
    """`name` as a case-insensitive, NTFS- or HFS+-like file system would compare it."""
    folded = unicodedata.normalize("NFC", name.translate(_HFS_IGNORED)).casefold()
    return folded.split(":", 1)[0].rstrip(" .")


def _link_problem(rel: str, target: str) -> str | None:
    """Why the symlink at `rel` pointing to `target` is refused, or None.

    Checked on the text, never on disk. `..` may only lead the target: after a name it would
    climb from wherever that name (maybe another link) really is, which the text cannot tell.
    With `..` only in front, and every link checked the same way, no chain of links leaves
    the repository."""
    if not target or target.startswith("/"):
        return "is absolute" if target else "is empty"
    name = rel.rsplit("/", 1)[-1]
    if _folded(name) in _NO_SYMLINK or any(_is_dotgit(p) for p in target.split("/")):
        return "is refused: git reads that name, or it points into a .git"
    parts = [p for p in target.split("/") if p not in ("", ".")]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if ".." in parts[ups:]:
        return "climbs with .. after a name"
    if ups > rel.count("/"):
        return "leaves the repository"
    return None


def _check_url(url: str) -> None:
    """https anywhere, http only to this machine (a test forge); never credentials in the URL."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise WorkspaceError("the git URL must not carry credentials")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return
    raise WorkspaceError(
        f"refusing to clone from {parts.scheme}://{parts.hostname}: only https, or http to this machine"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _empty(directory: Path) -> None:
    """Delete everything in `directory` (a task's leftovers) without following any link."""
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, onerror=_writable_and_retry)
        else:
            child.unlink()


def _writable_and_retry(function: object, path: str, _error: object) -> None:
    # A task may leave directories without write permission; they are ours to delete.
    # (shutil.rmtree itself never follows a link: it checks each directory it opens.)
    os.chmod(os.path.dirname(path), 0o700, follow_symlinks=False)
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, onerror=_writable_and_retry)
        else:
            os.unlink(path)


def _watch_size(
    process: subprocess.Popen[bytes], watch: tuple[Path, int], too_big: threading.Event, done: threading.Event
) -> None:
    """Kill a clone that grows past its cap, instead of noticing once the disk is full."""
    path, limit = watch
    while not done.wait(0.5):
        if _disk_usage(path) > limit:
            too_big.set()
            _kill(process)
            return


def _kill(process: subprocess.Popen[bytes]) -> None:
    # git's helpers (git-remote-http, pack-objects) hold its pipes: kill its whole group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _disk_usage(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def _mode(entry: _Entry) -> str:
    if entry.kind == "link":
        return "120000"
    return "100755" if entry.mode & stat.S_IXUSR else "100644"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _show(name: str) -> str:
    """A name for a one-line reason: as is when printable, escaped when it could forge lines."""
    return name if name.isprintable() else ascii(name)


def _split0(output: str) -> list[str]:
    return [item for item in output.split("\0") if item]


def _redact(text: str, secret: str | None) -> str:
    """`text` without `secret` in any form git could echo it: plain, in the Basic header, URL-encoded."""
    if not secret:
        return text
    forms = {
        secret,
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"x-access-token:{secret}".encode()).decode(),
        secret.encode().hex(),
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _shown(args: list[str]) -> str:
    """The git command worth naming in an error: its name only, never an argument (a URL, a path)."""
    return args[0] if args else ""


__all__ = [
    "GIT_TIMEOUT_S",
    "ResultLimits",
    "ResultRefused",
    "Workspace",
    "WorkspaceError",
    "branch_name",
    "git_url",
    "remove_stale",
]
