"""The forge's git repositories: real bare repositories, read and written with real git.

Nothing is mocked: every test runs git. The git client runs with a temporary HOME and no
system config, so it never reads the user's settings and never prompts.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bzzz.forge.repositories import Commit, Repositories
from tests.forge.harness import commit_on, git


@pytest.fixture
def repos(tmp_path: Path) -> Repositories:
    return Repositories(tmp_path / "repos")


@pytest.fixture
def history(repos: Repositories, client_env: dict[str, str]) -> dict[str, str]:
    """acme/widgets with main: root <- second <- third, and a commit `side` branching off root."""
    root = repos.create("acme", "widgets", files={"README.md": "# Widgets\n"})
    assert root is not None
    path = repos.path("acme", "widgets")
    second = commit_on(client_env, path, root, "second")
    third = commit_on(client_env, path, second, "third")
    side = commit_on(client_env, path, root, "side")
    git(client_env, "--git-dir", str(path), "update-ref", "refs/heads/main", third)
    return {"root": root, "second": second, "third": third, "side": side}


# -- creating, deleting, renaming repositories ---------------------------------------------------


def test_create_with_nested_files_makes_a_cloneable_commit_on_main(
    repos: Repositories, client_env: dict[str, str], tmp_path: Path
) -> None:
    files: dict[str, str | bytes] = {
        "README.md": "# Widgets\n",
        "src/widgets/__init__.py": "VERSION = 1\n",
        "src/widgets/data/blob.bin": bytes(range(256)),
        "docs/guide.md": "Read me.\n",
    }
    sha = repos.create("acme", "widgets", files=files, author=("Ada Lovelace", "ada@example.com"), message="Start")
    assert sha is not None and len(sha) == 40
    assert repos.exists("acme", "widgets")
    assert repos.path("acme", "widgets") == repos.root / "acme" / "widgets.git"

    checkout = tmp_path / "checkout"
    git(client_env, "clone", "--quiet", str(repos.path("acme", "widgets")), str(checkout))
    for name, content in files.items():
        expected = content.encode() if isinstance(content, str) else content
        assert (checkout / name).read_bytes() == expected
    assert git(client_env, "rev-parse", "--abbrev-ref", "HEAD", cwd=checkout).stdout.strip() == "main"
    assert git(client_env, "rev-parse", "HEAD", cwd=checkout).stdout.strip() == sha
    shown = git(client_env, "log", "-1", "--format=%an|%ae|%cn|%ce|%s", cwd=checkout).stdout.strip()
    assert shown == "Ada Lovelace|ada@example.com|Ada Lovelace|ada@example.com|Start"
    assert git(client_env, "status", "--porcelain", cwd=checkout).stdout == ""  # the tree is exactly the files


def test_create_without_files_makes_an_empty_repository(
    repos: Repositories, client_env: dict[str, str], tmp_path: Path
) -> None:
    assert repos.create("acme", "empty") is None
    assert repos.exists("acme", "empty")
    assert repos.branches("acme", "empty") == []
    assert repos.resolve("acme", "empty", "main") is None
    clone = git(client_env, "clone", str(repos.path("acme", "empty")), str(tmp_path / "empty"))
    assert "empty repository" in clone.stderr


def test_create_with_another_default_branch(repos: Repositories) -> None:
    sha = repos.create("acme", "trunky", default_branch="trunk", files={"a": "a"})
    assert repos.branches("acme", "trunky") == [("trunk", sha)]
    assert (repos.path("acme", "trunky") / "HEAD").read_text() == "ref: refs/heads/trunk\n"


def test_create_enables_pushing_over_http(repos: Repositories, client_env: dict[str, str]) -> None:
    repos.create("acme", "widgets")
    config = git(client_env, "config", "--file", str(repos.path("acme", "widgets") / "config"), "http.receivepack")
    assert config.stdout.strip() == "true"


def test_create_refuses_an_existing_repository(repos: Repositories) -> None:
    repos.create("acme", "widgets")
    with pytest.raises(FileExistsError):
        repos.create("acme", "widgets", files={"a": "b"})


def test_concurrent_creates_have_exactly_one_winner(repos: Repositories) -> None:
    results: list[str | None | FileExistsError] = []
    barrier = threading.Barrier(4)

    def contender(n: int) -> None:
        barrier.wait()
        try:
            results.append(repos.create("acme", "widgets", files={"who": str(n)}))
        except FileExistsError as error:
            results.append(error)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [r for r in results if isinstance(r, str)]
    assert len(results) == 4 and len(winners) == 1, results
    assert repos.branches("acme", "widgets") == [("main", winners[0])]
    assert [p.name for p in (repos.root / "acme").iterdir()] == ["widgets.git"]  # no leftovers


@pytest.mark.parametrize(
    "owner, name",
    [
        ("acme", ""),
        ("acme", "."),
        ("acme", ".."),
        ("acme", "a/b"),
        ("acme", "../escape"),
        ("acme", "widgets.git"),
        ("acme", "widgets.GIT"),
        ("acme", "with space"),
        ("acme", "ünïcode"),
        ("acme", "x" * 101),
        ("", "widgets"),
        ("..", "widgets"),
        (".hidden", "widgets"),
        ("a/b", "widgets"),
    ],
)
def test_bad_names_are_refused(repos: Repositories, owner: str, name: str) -> None:
    with pytest.raises(ValueError):
        repos.create(owner, name)
    assert not repos.exists(owner, name)
    assert list(repos.root.iterdir()) == []


def test_names_github_allows_are_accepted(repos: Repositories) -> None:
    for name in (".github", "my-repo_2.0", "A"):
        repos.create("Acme-Corp", name)
        assert repos.exists("Acme-Corp", name)


@pytest.mark.parametrize(
    "files",
    [
        {"/abs": "x"},
        {"a//b": "x"},
        {"a/": "x"},
        {"../up": "x"},
        {"a/./b": "x"},
        {".git/config": "x"},
        {"a": "file", "a/b": "and a directory"},
        {"a/b": "directory", "a": "and a file"},
    ],
)
def test_bad_file_paths_are_refused(repos: Repositories, files: dict[str, str | bytes]) -> None:
    with pytest.raises(ValueError):
        repos.create("acme", "widgets", files=files)
    assert not repos.exists("acme", "widgets")


def test_delete(repos: Repositories) -> None:
    repos.create("acme", "widgets", files={"a": "a"})
    repos.delete("acme", "widgets")
    assert not repos.exists("acme", "widgets")
    assert list((repos.root / "acme").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        repos.delete("acme", "widgets")
    repos.create("acme", "widgets")  # the name is free again


def test_rename(repos: Repositories) -> None:
    sha = repos.create("acme", "widgets", files={"a": "a"})
    repos.create("acme", "taken")
    repos.rename("acme", "widgets", "gadgets")
    assert not repos.exists("acme", "widgets")
    assert repos.branches("acme", "gadgets") == [("main", sha)]
    with pytest.raises(FileExistsError):
        repos.rename("acme", "gadgets", "taken")
    with pytest.raises(FileNotFoundError):
        repos.rename("acme", "widgets", "anything")
    with pytest.raises(ValueError):
        repos.rename("acme", "gadgets", "bad.git")


def test_operations_on_a_missing_repository_raise_file_not_found(repos: Repositories) -> None:
    with pytest.raises(FileNotFoundError):
        repos.branches("acme", "nothing")
    with pytest.raises(FileNotFoundError):
        repos.resolve("acme", "nothing", "main")


# -- branches, refs, commits ---------------------------------------------------------------------


def test_branches_are_sorted_by_name(repos: Repositories, history: dict[str, str]) -> None:
    repos.create_ref("acme", "widgets", "refs/heads/zeta", history["root"])
    repos.create_ref("acme", "widgets", "refs/heads/alpha", history["side"])
    repos.create_ref("acme", "widgets", "refs/heads/feature/x", history["second"])
    repos.create_ref("acme", "widgets", "refs/tags/v1", history["root"])  # a tag is no branch
    assert repos.branches("acme", "widgets") == [
        ("alpha", history["side"]),
        ("feature/x", history["second"]),
        ("main", history["third"]),
        ("zeta", history["root"]),
    ]


def test_resolve_understands_full_short_and_branch_names(repos: Repositories, history: dict[str, str]) -> None:
    repos.create_ref("acme", "widgets", "refs/tags/v1", history["root"])
    repos.create_ref("acme", "widgets", "refs/heads/feature/x", history["side"])
    third = history["third"]
    assert repos.resolve("acme", "widgets", "refs/heads/main") == third
    assert repos.resolve("acme", "widgets", "heads/main") == third
    assert repos.resolve("acme", "widgets", "main") == third
    assert repos.resolve("acme", "widgets", "tags/v1") == history["root"]
    assert repos.resolve("acme", "widgets", "refs/tags/v1") == history["root"]
    assert repos.resolve("acme", "widgets", "feature/x") == history["side"]
    assert repos.resolve("acme", "widgets", "heads/feature/x") == history["side"]
    for missing in ("nope", "heads/nope", "refs/heads/nope", "tags/main", "v1", "main~1", "main^", "HEAD", ""):
        assert repos.resolve("acme", "widgets", missing) is None, missing


def test_commit(repos: Repositories, client_env: dict[str, str]) -> None:
    path = repos.root / "acme" / "widgets.git"
    sha = repos.create("acme", "widgets", files={"a": "a"}, author=("Ada", "ada@example.com"), message="Start\n\nBody.")
    assert sha is not None
    env = client_env | {
        "GIT_AUTHOR_NAME": "Bob Builder",
        "GIT_AUTHOR_EMAIL": "bob@example.com",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+02:00",
        "GIT_COMMITTER_NAME": "Carol",
        "GIT_COMMITTER_EMAIL": "carol@example.com",
        "GIT_COMMITTER_DATE": "2026-02-03T04:05:06Z",
    }
    child = commit_on(env, path, sha, "Fix the widgets")
    tree = git(client_env, "--git-dir", str(path), "rev-parse", f"{sha}^{{tree}}").stdout.strip()

    assert repos.commit("acme", "widgets", child) == Commit(
        sha=child,
        message="Fix the widgets",
        author_name="Bob Builder",
        author_email="bob@example.com",
        authored_at="2026-01-02T01:04:05Z",  # in UTC
        committer_name="Carol",
        committer_email="carol@example.com",
        committed_at="2026-02-03T04:05:06Z",
        tree_sha=tree,
        parents=(sha,),
    )
    first = repos.commit("acme", "widgets", sha)
    assert first is not None
    assert (first.message, first.author_name, first.committer_email, first.parents) == (
        "Start\n\nBody.",
        "Ada",
        "ada@example.com",
        (),
    )
    assert repos.commit("acme", "widgets", child[:10]) == repos.commit("acme", "widgets", child)  # a unique prefix
    assert repos.commit("acme", "widgets", child.upper()) is not None
    assert repos.commit("acme", "widgets", "0" * 40) is None
    assert repos.commit("acme", "widgets", tree) is None  # a tree is no commit
    assert repos.commit("acme", "widgets", "main") is None  # a ref is no sha
    assert repos.commit("acme", "widgets", "HEAD~1") is None


def test_create_ref(repos: Repositories, history: dict[str, str]) -> None:
    repos.create_ref("acme", "widgets", "refs/heads/feature", history["second"])
    assert repos.resolve("acme", "widgets", "feature") == history["second"]
    repos.create_ref("acme", "widgets", "refs/tags/v1.0", history["root"])
    assert repos.resolve("acme", "widgets", "tags/v1.0") == history["root"]
    repos.create_ref("acme", "widgets", "refs/heads/short", history["side"][:12])
    assert repos.resolve("acme", "widgets", "short") == history["side"]  # stored as the full sha


def test_create_ref_refuses_an_existing_ref(repos: Repositories, history: dict[str, str]) -> None:
    with pytest.raises(FileExistsError):
        repos.create_ref("acme", "widgets", "refs/heads/main", history["root"])
    assert repos.resolve("acme", "widgets", "main") == history["third"]  # untouched


@pytest.mark.parametrize(
    "ref",
    [
        "heads/feature",
        "feature",
        "refs/feature",
        "refs/heads/",
        "refs/heads/a..b",
        "refs/heads/a b",
        "refs/heads/x.lock",
        "refs/heads/.hidden",
        "refs/heads/a~1",
        "refs/heads/a:b",
        "refs/heads/a@{1}",
        "refs//heads/a",
        "refs/heads/a/",
    ],
)
def test_create_ref_refuses_bad_names(repos: Repositories, history: dict[str, str], ref: str) -> None:
    with pytest.raises(ValueError):
        repos.create_ref("acme", "widgets", ref, history["root"])


def test_create_ref_refuses_what_is_no_commit_here(
    repos: Repositories, history: dict[str, str], client_env: dict[str, str]
) -> None:
    tree = git(client_env, "--git-dir", str(repos.path("acme", "widgets")), "rev-parse", "main^{tree}").stdout.strip()
    for sha in ("0" * 40, "deadbeef", "main", tree, "not hex at all"):
        with pytest.raises(ValueError):
            repos.create_ref("acme", "widgets", "refs/heads/feature", sha)
    assert repos.resolve("acme", "widgets", "feature") is None


def test_create_ref_refuses_a_directory_clash(repos: Repositories, history: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        repos.create_ref("acme", "widgets", "refs/heads/main/sub", history["root"])


def test_create_ref_race_has_exactly_one_winner(repos: Repositories, history: dict[str, str]) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def contender(sha: str) -> None:
        barrier.wait()
        try:
            repos.create_ref("acme", "widgets", "refs/heads/contested", sha)
            results.append(f"won {sha}")
        except FileExistsError:
            results.append("exists")

    shas = [history["root"], history["second"], history["third"], history["side"]] * 2
    threads = [threading.Thread(target=contender, args=(sha,)) for sha in shas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [r for r in results if r.startswith("won")]
    assert len(results) == 8
    assert len(winners) == 1, results
    assert results.count("exists") == 7
    assert winners[0] == f"won {repos.resolve('acme', 'widgets', 'contested')}"


def test_update_ref_fast_forward_only_unless_forced(repos: Repositories, history: dict[str, str]) -> None:
    repos.create_ref("acme", "widgets", "refs/heads/feature", history["root"])
    repos.update_ref("acme", "widgets", "refs/heads/feature", history["second"])  # fast-forward
    assert repos.resolve("acme", "widgets", "feature") == history["second"]
    repos.update_ref("acme", "widgets", "heads/feature", history["third"])  # GitHub's short form works too
    assert repos.resolve("acme", "widgets", "feature") == history["third"]
    repos.update_ref("acme", "widgets", "heads/feature", history["third"])  # no move is fine

    with pytest.raises(ValueError, match="fast-forward"):
        repos.update_ref("acme", "widgets", "heads/feature", history["side"])  # sideways
    with pytest.raises(ValueError, match="fast-forward"):
        repos.update_ref("acme", "widgets", "heads/feature", history["root"])  # backwards
    assert repos.resolve("acme", "widgets", "feature") == history["third"]

    repos.update_ref("acme", "widgets", "heads/feature", history["side"], force=True)
    assert repos.resolve("acme", "widgets", "feature") == history["side"]


def test_update_ref_refuses_missing_refs_and_unknown_commits(repos: Repositories, history: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        repos.update_ref("acme", "widgets", "heads/nope", history["root"], force=True)
    assert repos.resolve("acme", "widgets", "nope") is None
    with pytest.raises(ValueError):
        repos.update_ref("acme", "widgets", "heads/main", "1" * 40, force=True)
    with pytest.raises(ValueError):
        repos.update_ref("acme", "widgets", "heads/../main", history["root"], force=True)


def test_delete_ref(repos: Repositories, history: dict[str, str]) -> None:
    repos.create_ref("acme", "widgets", "refs/heads/feature", history["side"])
    repos.delete_ref("acme", "widgets", "heads/feature")
    assert repos.resolve("acme", "widgets", "feature") is None
    assert [name for name, _ in repos.branches("acme", "widgets")] == ["main"]
    with pytest.raises(ValueError):
        repos.delete_ref("acme", "widgets", "refs/heads/feature")
    repos.create_ref("acme", "widgets", "refs/heads/feature", history["root"])  # can be made again


def test_is_ancestor(repos: Repositories, history: dict[str, str]) -> None:
    assert repos.is_ancestor("acme", "widgets", history["root"], history["third"])
    assert repos.is_ancestor("acme", "widgets", history["second"], history["third"])
    assert repos.is_ancestor("acme", "widgets", history["third"], history["third"])
    assert not repos.is_ancestor("acme", "widgets", history["third"], history["root"])
    assert not repos.is_ancestor("acme", "widgets", history["side"], history["third"])
    with pytest.raises(ValueError):
        repos.is_ancestor("acme", "widgets", "2" * 40, history["third"])


def test_commits_between(repos: Repositories, history: dict[str, str]) -> None:
    assert repos.commits_between("acme", "widgets", history["root"], history["third"]) == 2
    assert repos.commits_between("acme", "widgets", history["third"], history["root"]) == 0
    assert repos.commits_between("acme", "widgets", history["third"], history["third"]) == 0
    assert repos.commits_between("acme", "widgets", history["side"], history["third"]) == 2
    assert repos.commits_between("acme", "widgets", history["third"], history["side"]) == 1
    with pytest.raises(ValueError):
        repos.commits_between("acme", "widgets", history["root"], "3" * 40)
