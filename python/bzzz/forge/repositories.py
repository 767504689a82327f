"""The forge's git repositories: real bare repositories on disk, read and written with real git.

    root/<owner>/<name>.git      one bare repository per GitHub repository

`Repositories` is what the REST app calls for branches, refs and commits: every answer comes
from running `git` on the real repository, so whatever a client pushed over HTTP
(`bzzz.forge.git_http`) is what the API shows, and a ref the API creates is what the next
`git fetch` sees. Each call is one or a few short `git` processes with a clean environment
(`git_env`: no system or user config, no prompts, the C locale), so the calls are safe from
any number of threads at once: git's own ref locking serializes updates to one ref, and
compare-and-swap updates (`git update-ref <ref> <new> <old>`, with `""` as the old value for
"must not exist yet") make `create_ref`, `update_ref` and `delete_ref` atomic.

Names are GitHub's: `[A-Za-z0-9._-]`, not `.` or `..`, and never ending in `.git` (GitHub
strips that suffix; here it would make `x.git` and `x.git.git` look alike). Owners also must not
start with a dot. Names are case-sensitive here (GitHub's are not): the REST app keeps the
canonical spelling.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

log = structlog.get_logger("bzzz.forge.repositories")

_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
_FULL_HEX_LENGTHS = (40, 64)  # SHA-1, SHA-256
_REFNAME_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_IDENT = re.compile(rb"(.*?) ?<([^<>]*)> (-?\d+)(?: ([+-]\d{4}))?")
_ATTEMPTS = 20  # compare-and-swap retries when another writer moved or locked the ref


class GitError(Exception):
    """A git command failed; the message says which and includes git's stderr."""

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} exited with {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Commit:
    """One commit, as GitHub's git commit object shows it; times are UTC, ISO 8601 with `Z`."""

    sha: str
    message: str
    author_name: str
    author_email: str
    authored_at: str
    committer_name: str
    committer_email: str
    committed_at: str
    tree_sha: str
    parents: tuple[str, ...]


@dataclass
class _Dir:
    """A directory of the initial commit, before it is written with `git mktree`."""

    entries: dict[str, _Dir | bytes] = field(default_factory=dict)


def git_env(home: Path) -> dict[str, str]:
    """Git's environment: nothing from the system or the user, nothing that could prompt."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }


def _check_name(name: str, what: str) -> None:
    if (
        not _NAME.fullmatch(name)
        or name in (".", "..")
        or name.lower().endswith(".git")
        or (what == "owner" and name.startswith("."))
    ):
        raise ValueError(f"invalid {what} name: {name!r}")


def _valid_refname(ref: str) -> bool:
    """git check-ref-format's rules for a full ref name (`refs/...`)."""
    if not ref or ref == "@" or ref.endswith((".", "/")) or ref.startswith("/"):
        return False
    if _REFNAME_FORBIDDEN.search(ref):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in ref.split("/"))


def _full_ref(ref: str) -> str:
    """`heads/x` or `refs/heads/x` -> `refs/heads/x`; ValueError unless it is a valid `refs/<kind>/<name>`."""
    full = ref if ref.startswith("refs/") else f"refs/{ref}"
    if full.count("/") < 2 or not _valid_refname(full):
        raise ValueError(f"invalid ref name: {ref!r}")
    return full


def _iso(timestamp: bytes) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ident(value: bytes, encoding: str) -> tuple[str, str, str]:
    match = _IDENT.fullmatch(value)
    if match is None:
        return value.decode(encoding, "replace"), "", _iso(b"0")
    name, email, timestamp, _zone = match.groups()
    return name.decode(encoding, "replace"), email.decode(encoding, "replace"), _iso(timestamp)


def _parse_commit(sha: str, raw: bytes) -> Commit:
    """A raw commit object (`git cat-file commit`): headers, a blank line, the message."""
    header, _, body = raw.partition(b"\n\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in header.split(b"\n"):
        if line.startswith(b" "):  # continuation of a multi-line header (gpgsig, mergetag)
            continue
        key, _, value = line.partition(b" ")
        fields.setdefault(key, []).append(value)
    encoding = fields.get(b"encoding", [b"utf-8"])[0].decode("ascii", "replace")
    try:
        b"".decode(encoding)
    except LookupError:
        encoding = "utf-8"
    author = _parse_ident(fields.get(b"author", [b""])[0], encoding)
    committer = _parse_ident(fields.get(b"committer", [b""])[0], encoding)
    return Commit(
        sha=sha,
        message=body.decode(encoding, "replace").rstrip("\n"),
        author_name=author[0],
        author_email=author[1],
        authored_at=author[2],
        committer_name=committer[0],
        committer_email=committer[1],
        committed_at=committer[2],
        tree_sha=fields[b"tree"][0].decode("ascii"),
        parents=tuple(parent.decode("ascii") for parent in fields.get(b"parent", [])),
    )


class Repositories:
    """The bare repositories under `root`, at `root/<owner>/<name>.git`."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    # -- repositories -------------------------------------------------------------------------

    def path(self, owner: str, name: str) -> Path:
        """Where the repository lives (whether or not it exists); ValueError for a bad name."""
        _check_name(owner, "owner")
        _check_name(name, "repository")
        return self.root / owner / f"{name}.git"

    def exists(self, owner: str, name: str) -> bool:
        try:
            path = self.path(owner, name)
        except ValueError:
            return False
        return (path / "HEAD").is_file()

    def create(
        self,
        owner: str,
        name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, str | bytes] | None = None,
        author: tuple[str, str] = ("bzzz forge", "forge@bzzz.invalid"),
        message: str = "Initial commit",
    ) -> str | None:
        """A new bare repository; with `files`, an initial commit of them on `default_branch`.

        Returns the initial commit's sha, or None for an empty repository (`files=None`;
        `files={}` commits an empty tree). The repository is built under a temporary name and
        renamed into place, so it appears complete or not at all, and of two concurrent
        creates exactly one succeeds (the other gets FileExistsError).
        """
        path = self.path(owner, name)
        if not _valid_refname(f"refs/heads/{default_branch}") or default_branch == "HEAD":
            raise ValueError(f"invalid branch name: {default_branch!r}")
        tree = self._plan_tree(files) if files is not None else None
        if path.exists():
            raise FileExistsError(f"repository {owner}/{name} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        building = path.parent / f".tmp-{secrets.token_hex(8)}"  # never ends in .git: never a repo
        try:
            self._run(None, "init", "--quiet", "--bare", "-b", default_branch, str(building))
            self._run(building, "config", "http.receivepack", "true")
            sha = None
            if tree is not None:
                tree_sha = self._write_tree(building, tree)
                env = {
                    "GIT_AUTHOR_NAME": author[0],
                    "GIT_AUTHOR_EMAIL": author[1],
                    "GIT_COMMITTER_NAME": author[0],
                    "GIT_COMMITTER_EMAIL": author[1],
                }
                sha = self._run(building, "commit-tree", tree_sha, "-F", "-", input=message.encode(), env=env)
                self._run(building, "update-ref", f"refs/heads/{default_branch}", sha, "")
            _move_into_place(building, path, f"{owner}/{name}")
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        log.info("repository created", owner=owner, name=name, commit=sha)
        return sha

    def delete(self, owner: str, name: str) -> None:
        """Remove the repository; FileNotFoundError if there is none."""
        path = self._repo(owner, name)
        doomed = path.parent / f".tmp-{secrets.token_hex(8)}"
        os.rename(path, doomed)  # gone at once for everyone; the files go after
        shutil.rmtree(doomed)
        log.info("repository deleted", owner=owner, name=name)

    def rename(self, owner: str, name: str, new_name: str) -> None:
        """Rename within the owner; FileNotFoundError if missing, FileExistsError if taken."""
        path = self._repo(owner, name)
        target = self.path(owner, new_name)
        if target.exists():
            raise FileExistsError(f"repository {owner}/{new_name} already exists")
        _move_into_place(path, target, f"{owner}/{new_name}")
        log.info("repository renamed", owner=owner, name=name, new_name=new_name)

    # -- branches, refs, commits --------------------------------------------------------------

    def fork(self, owner: str, name: str, fork_owner: str, fork_name: str) -> None:
        """A new repository `fork_owner/fork_name` holding every branch of `owner/name`."""
        source = self._repo(owner, name)
        default = self._run(source, "symbolic-ref", "--short", "HEAD")
        self.create(fork_owner, fork_name, default_branch=default)
        self._run(self._repo(fork_owner, fork_name), "fetch", "--quiet", str(source), "+refs/heads/*:refs/heads/*")

    def fetch_branch(self, owner: str, name: str, from_owner: str, from_name: str, branch: str, into: str) -> None:
        """Copy branch `branch` of `from_owner/from_name` into ref `into` of `owner/name` (a fork's
        pull request head, so that it can be compared with the base)."""
        source = self._repo(from_owner, from_name)
        self._run(self._repo(owner, name), "fetch", "--quiet", str(source), f"+refs/heads/{branch}:{into}")

    def branches(self, owner: str, name: str) -> list[tuple[str, str]]:
        """Every branch as (name, sha), sorted by name."""
        path = self._repo(owner, name)
        out = self._run(path, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        found = []
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            found.append((ref.removeprefix("refs/heads/"), sha))
        return sorted(found)

    def resolve(self, owner: str, name: str, ref: str) -> str | None:
        """The sha a ref points at: `refs/heads/main`, `heads/main`, `tags/v1`, or a branch name.

        `refs/...` is taken literally; anything else is tried as `refs/<ref>`, then as the
        branch `refs/heads/<ref>`. None if there is no such ref (or the name is not a valid ref).
        """
        path = self._repo(owner, name)
        candidates = [ref] if ref.startswith("refs/") else [f"refs/{ref}", f"refs/heads/{ref}"]
        for candidate in candidates:
            if candidate.count("/") >= 2 and _valid_refname(candidate):
                sha = self._read_ref(path, candidate)
                if sha is not None:
                    return sha
        return None

    def commit(self, owner: str, name: str, sha: str) -> Commit | None:
        """The commit with this sha (full, or an unambiguous prefix of 4+); None if there is none."""
        path = self._repo(owner, name)
        full = self._commit_sha(path, sha)
        if full is None:
            return None
        raw = self._run_bytes(path, "cat-file", "commit", full)
        return _parse_commit(full, raw)

    def create_ref(self, owner: str, name: str, ref: str, sha: str) -> None:
        """Create `ref` (e.g. `refs/heads/feature`) at commit `sha`, atomically.

        ValueError: the name is not `refs/<kind>/<name>` or not a valid ref name, `sha` is no
        commit here, or the ref would clash with an existing one as a directory (`refs/heads/a`
        exists, so `refs/heads/a/b` cannot). FileExistsError: the ref exists already.
        """
        path = self._repo(owner, name)
        if not ref.startswith("refs/") or ref.count("/") < 2 or not _valid_refname(ref):
            raise ValueError(f"invalid ref name: {ref!r}")
        new = self._require_commit(path, sha)
        for _ in range(_ATTEMPTS):
            result = self._git(path, "update-ref", ref, new, "")
            if result.returncode == 0:
                log.info("ref created", repo=f"{path.parent.name}/{path.stem}", ref=ref, sha=new)
                return
            if self._read_ref(path, ref) is not None:
                raise FileExistsError(f"reference {ref} already exists")
            stderr = result.stderr.decode(errors="replace")
            if "exists; cannot create" in stderr:
                raise ValueError(f"reference {ref} conflicts with an existing reference: {stderr.strip()}")
            if not _lock_contention(stderr):
                raise GitError(tuple(result.args[1:]), result.returncode, stderr)
            time.sleep(0.01)
        raise GitError(("update-ref", ref, new, ""), 1, "gave up: the ref stayed locked")

    def update_ref(self, owner: str, name: str, ref: str, sha: str, *, force: bool = False) -> None:
        """Move an existing ref (`refs/heads/x` or `heads/x`) to commit `sha`.

        Without `force` the move must be a fast-forward (the old commit is an ancestor of the
        new one). ValueError: bad ref name, no such ref, `sha` is no commit here, or not a
        fast-forward. The update is a compare-and-swap on the value the check was made against.
        """
        path = self._repo(owner, name)
        full = _full_ref(ref)
        new = self._require_commit(path, sha)
        for _ in range(_ATTEMPTS):
            old = self._read_ref(path, full)
            if old is None:
                raise ValueError(f"reference {full} does not exist")
            if old == new:
                return
            if not force and not self._is_ancestor(path, old, new):
                raise ValueError(f"update of {full} from {old} to {new} is not a fast-forward")
            result = self._git(path, "update-ref", full, new, old)
            if result.returncode == 0:
                log.info("ref updated", repo=f"{path.parent.name}/{path.stem}", ref=full, old=old, sha=new, force=force)
                return
            time.sleep(0.01)  # someone else moved or locked it: check again against the new value
        stderr = result.stderr.decode(errors="replace")
        raise GitError(tuple(result.args[1:]), result.returncode, stderr)

    def delete_ref(self, owner: str, name: str, ref: str) -> None:
        """Delete a ref (`refs/heads/x` or `heads/x`); ValueError if it does not exist."""
        path = self._repo(owner, name)
        full = _full_ref(ref)
        for _ in range(_ATTEMPTS):
            old = self._read_ref(path, full)
            if old is None:
                raise ValueError(f"reference {full} does not exist")
            result = self._git(path, "update-ref", "-d", full, old)
            if result.returncode == 0:
                log.info("ref deleted", repo=f"{path.parent.name}/{path.stem}", ref=full, old=old)
                return
            time.sleep(0.01)
        stderr = result.stderr.decode(errors="replace")
        raise GitError(tuple(result.args[1:]), result.returncode, stderr)

    def is_ancestor(self, owner: str, name: str, ancestor_sha: str, sha: str) -> bool:
        """Whether `ancestor_sha` is reachable from `sha` (a commit is its own ancestor)."""
        path = self._repo(owner, name)
        return self._is_ancestor(path, self._require_commit(path, ancestor_sha), self._require_commit(path, sha))

    def commits_between(self, owner: str, name: str, base_sha: str, head_sha: str) -> int:
        """How many commits `head_sha` has that `base_sha` has not (`git rev-list --count base..head`)."""
        path = self._repo(owner, name)
        base = self._require_commit(path, base_sha)
        head = self._require_commit(path, head_sha)
        return int(self._run(path, "rev-list", "--count", f"{base}..{head}"))

    # -- internals ----------------------------------------------------------------------------

    def _repo(self, owner: str, name: str) -> Path:
        path = self.path(owner, name)
        if not (path / "HEAD").is_file():
            raise FileNotFoundError(f"repository {owner}/{name} does not exist")
        return path

    def _git(
        self, repo: Path | None, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = git_env(self.root)
        if repo is not None:
            full_env["GIT_DIR"] = str(repo)  # never discover some other repository upwards
        if env:
            full_env.update(env)
        return subprocess.run(
            ["git", *args],
            cwd=repo if repo is not None else self.root,
            input=input,
            capture_output=True,
            check=False,
            env=full_env,
        )

    def _run_bytes(
        self, repo: Path | None, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> bytes:
        result = self._git(repo, *args, input=input, env=env)
        if result.returncode != 0:
            raise GitError(args, result.returncode, result.stderr.decode(errors="replace"))
        return result.stdout

    def _run(
        self, repo: Path | None, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        return self._run_bytes(repo, *args, input=input, env=env).decode().strip()

    def _read_ref(self, repo: Path, ref: str) -> str | None:
        # for-each-ref matches by prefix too (`refs/heads/a` would list `refs/heads/a/b`, were
        # there such a ref), so the exact name is picked out; unlike rev-parse it never guesses.
        for line in self._run(repo, "for-each-ref", "--format=%(refname) %(objectname)", ref).splitlines():
            name, _, sha = line.rpartition(" ")
            if name == ref:
                return sha
        return None

    def _commit_sha(self, repo: Path, sha: str) -> str | None:
        """The full sha of the commit `sha` names (full or a unique prefix); None if none does.

        Only hex is accepted, and a short one is looked up as an object-name prefix, never as a
        ref name: `cafe` means the commit starting with cafe, not a branch called cafe.
        """
        if not _HEX.fullmatch(sha):
            return None
        sha = sha.lower()
        if len(sha) in _FULL_HEX_LENGTHS:
            candidates = [sha]
        else:
            result = self._git(repo, "rev-parse", f"--disambiguate={sha}")
            candidates = result.stdout.decode().split() if result.returncode == 0 else []
        if not candidates:
            return None
        listing = "".join(f"{candidate}\n" for candidate in candidates).encode()
        check = self._git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", input=listing)
        commits = [line.split()[0] for line in check.stdout.decode().splitlines() if line.endswith(" commit")]
        return commits[0] if len(commits) == 1 else None

    def _require_commit(self, repo: Path, sha: str) -> str:
        full = self._commit_sha(repo, sha)
        if full is None:
            raise ValueError(f"no commit {sha!r} in this repository")
        return full

    def _is_ancestor(self, repo: Path, ancestor: str, sha: str) -> bool:
        result = self._git(repo, "merge-base", "--is-ancestor", ancestor, sha)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise GitError(tuple(result.args[1:]), result.returncode, result.stderr.decode(errors="replace"))

    @staticmethod
    def _plan_tree(files: Mapping[str, str | bytes]) -> _Dir:
        """The directory tree of `files` (paths like `src/a/b.py`); ValueError for a bad path."""
        top = _Dir()
        for file_path, content in files.items():
            parts = file_path.split("/")
            if any(part in ("", ".", "..") or part.lower() == ".git" or "\0" in part or "\n" in part for part in parts):
                raise ValueError(f"invalid file path: {file_path!r}")
            directory = top
            for part in parts[:-1]:
                child = directory.entries.setdefault(part, _Dir())
                if not isinstance(child, _Dir):
                    raise ValueError(f"{file_path!r}: {part!r} is a file")
                directory = child
            if parts[-1] in directory.entries:
                raise ValueError(f"{file_path!r} is a directory")
            directory.entries[parts[-1]] = content.encode() if isinstance(content, str) else bytes(content)
        return top

    def _write_tree(self, repo: Path, directory: _Dir) -> str:
        """Write blobs and trees bottom-up without a work tree; the tree's sha."""
        entries = []
        for entry_name, node in directory.entries.items():
            if isinstance(node, _Dir):
                entries.append(f"040000 tree {self._write_tree(repo, node)}\t{entry_name}")
            else:
                blob = self._run(repo, "hash-object", "-w", "--stdin", input=node)
                entries.append(f"100644 blob {blob}\t{entry_name}")
        listing = "".join(f"{entry}\0" for entry in entries).encode()
        return self._run(repo, "mktree", "-z", input=listing)


def _move_into_place(source: Path, target: Path, full_name: str) -> None:
    """Rename a repository directory; FileExistsError if `target` is taken (rename is atomic)."""
    try:
        os.rename(source, target)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(f"repository {full_name} already exists") from e
        raise


def _lock_contention(stderr: str) -> bool:
    return "Unable to create" in stderr and ".lock" in stderr


__all__ = ["Commit", "GitError", "Repositories", "git_env"]
