"""Git over smart HTTP: `git clone`/`git push`/`git fetch` through `http_backend`.

Nothing is mocked: the tests run real git against a real uvicorn server on 127.0.0.1 whose only
route hands requests to `http_backend`. The git client runs with a temporary HOME and no system
config, so it never reads the user's settings and never prompts.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bzzz.forge.git_http import http_backend
from bzzz.forge.repositories import Repositories
from tests.forge.harness import commit_on, git

TOKEN = "secret-token"


def authenticated_user(request: Request) -> str | None:
    """HTTP Basic with any user name and the password TOKEN; None for anyone else."""
    kind, _, credentials = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except ValueError:
        return None
    return user if password == TOKEN else None


@dataclass(frozen=True)
class Seen:
    """One request the test server got, with the headers that decide how its body is read."""

    method: str
    path: str
    content_encoding: str | None
    transfer_encoding: str | None


def forge_app(repos: Repositories, seen: list[Seen]) -> Starlette:
    async def smart_http(request: Request) -> Response:
        params = request.path_params
        headers = request.headers
        encodings = headers.get("content-encoding"), headers.get("transfer-encoding")
        seen.append(Seen(request.method, request.url.path, *encodings))
        return await http_backend(
            request, repos, params["owner"], params["name"], f"/{params['rest']}", authenticated_user(request)
        )

    return Starlette(routes=[Route("/{owner}/{name}.git/{rest:path}", smart_http, methods=["GET", "POST"])])


class Server:
    """A uvicorn server in a background thread, on a free port of 127.0.0.1."""

    def __init__(self, repos: Repositories) -> None:
        self.seen: list[Seen] = []
        app = forge_app(repos, self.seen)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def http_repos(tmp_path_factory: pytest.TempPathFactory) -> Repositories:
    return Repositories(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(http_repos: Repositories) -> Iterator[Server]:
    with Server(http_repos) as running:
        yield running


@pytest.fixture
def widgets(http_repos: Repositories) -> Iterator[str]:
    """A fresh acme/widgets with a README on main; its initial commit's sha."""
    sha = http_repos.create("acme", "widgets", files={"README.md": "# Widgets\n", "src/w.py": "x = 1\n"})
    assert sha is not None
    yield sha
    http_repos.delete("acme", "widgets")


def url(server: Server, path: str = "acme/widgets.git", *, token: str | None = None) -> str:
    credentials = f"x-access-token:{token}@" if token is not None else ""
    return f"http://{credentials}127.0.0.1:{server.port}/{path}"


def test_anonymous_clone_over_http(server: Server, widgets: str, client_env: dict[str, str], tmp_path: Path) -> None:
    git(client_env, "clone", "--quiet", url(server), str(tmp_path / "w"))
    assert (tmp_path / "w" / "README.md").read_text() == "# Widgets\n"
    assert (tmp_path / "w" / "src" / "w.py").read_text() == "x = 1\n"
    assert git(client_env, "rev-parse", "HEAD", cwd=tmp_path / "w").stdout.strip() == widgets
    assert git(client_env, "rev-parse", "--abbrev-ref", "HEAD", cwd=tmp_path / "w").stdout.strip() == "main"


def test_clone_with_protocol_v0_too(server: Server, widgets: str, client_env: dict[str, str], tmp_path: Path) -> None:
    git(client_env, "-c", "protocol.version=0", "clone", "--quiet", url(server), str(tmp_path / "w"))
    assert git(client_env, "rev-parse", "HEAD", cwd=tmp_path / "w").stdout.strip() == widgets


def test_push_a_new_branch_with_a_token(
    server: Server, http_repos: Repositories, widgets: str, client_env: dict[str, str], tmp_path: Path
) -> None:
    checkout = tmp_path / "w"
    git(client_env, "clone", "--quiet", url(server), str(checkout))
    git(client_env, "switch", "--quiet", "-c", "feature", cwd=checkout)
    (checkout / "new.txt").write_text("new\n")
    git(client_env, "add", "new.txt", cwd=checkout)
    git(client_env, "commit", "--quiet", "-m", "Add new.txt", cwd=checkout)
    head = git(client_env, "rev-parse", "HEAD", cwd=checkout).stdout.strip()

    git(client_env, "push", "--quiet", url(server, token=TOKEN), "feature", cwd=checkout)

    assert http_repos.branches("acme", "widgets") == [("feature", head), ("main", widgets)]
    pushed = http_repos.commit("acme", "widgets", head)
    assert pushed is not None
    assert (pushed.message, pushed.author_name, pushed.parents) == ("Add new.txt", "Client Person", (widgets,))


def test_push_without_a_valid_token_is_refused(
    server: Server, http_repos: Repositories, widgets: str, client_env: dict[str, str], tmp_path: Path
) -> None:
    checkout = tmp_path / "w"
    git(client_env, "clone", "--quiet", url(server), str(checkout))
    git(client_env, "commit", "--quiet", "--allow-empty", "-m", "sneaky", cwd=checkout)

    anonymous = git(client_env, "push", url(server), "HEAD:refs/heads/sneaky", cwd=checkout, check=False)
    assert anonymous.returncode != 0
    wrong = git(client_env, "push", url(server, token="wrong"), "HEAD:refs/heads/sneaky", cwd=checkout, check=False)
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr
    assert http_repos.branches("acme", "widgets") == [("main", widgets)]


def test_push_and_fetch_a_large_file(
    server: Server, http_repos: Repositories, widgets: str, client_env: dict[str, str], tmp_path: Path
) -> None:
    """5 MB that do not compress: a chunked request body, streamed both ways without deadlock."""
    pusher, fetcher = tmp_path / "pusher", tmp_path / "fetcher"
    git(client_env, "clone", "--quiet", url(server), str(pusher))
    git(client_env, "clone", "--quiet", url(server), str(fetcher))
    big = os.urandom(5 * 1024 * 1024)
    (pusher / "big.bin").write_bytes(big)
    git(client_env, "add", "big.bin", cwd=pusher)
    git(client_env, "commit", "--quiet", "-m", "Add a big file", cwd=pusher)
    head = git(client_env, "rev-parse", "HEAD", cwd=pusher).stdout.strip()

    server.seen.clear()
    git(client_env, "push", "--quiet", url(server, token=TOKEN), "main", cwd=pusher)
    assert http_repos.resolve("acme", "widgets", "main") == head
    assert Seen("POST", "/acme/widgets.git/git-receive-pack", None, "chunked") in server.seen

    git(client_env, "pull", "--quiet", "--ff-only", cwd=fetcher)
    assert git(client_env, "rev-parse", "HEAD", cwd=fetcher).stdout.strip() == head
    assert (fetcher / "big.bin").read_bytes() == big
    git(client_env, "fsck", "--no-progress", cwd=fetcher)


def test_fetch_sees_refs_made_through_the_api(
    server: Server, http_repos: Repositories, widgets: str, client_env: dict[str, str], tmp_path: Path
) -> None:
    checkout = tmp_path / "w"
    git(client_env, "clone", "--quiet", url(server), str(checkout))
    http_repos.create_ref("acme", "widgets", "refs/heads/from-api", widgets)
    git(client_env, "fetch", "--quiet", "origin", cwd=checkout)
    assert git(client_env, "rev-parse", "origin/from-api", cwd=checkout).stdout.strip() == widgets


def test_fetch_with_a_long_negotiation(
    server: Server, http_repos: Repositories, widgets: str, client_env: dict[str, str], tmp_path: Path
) -> None:
    """200 local commits the server lacks: the client sends "have" lines for rounds, and the
    later rounds' request bodies are over 1 KB, which git sends gzipped (Content-Encoding)."""
    checkout = tmp_path / "w"
    git(client_env, "clone", "--quiet", url(server), str(checkout))
    now = int(time.time())  # newer than the common commit, so the client offers them all first
    stream = "".join(
        f"commit refs/heads/main\ncommitter L <l@example.com> {now + n} +0000\n"
        f"data {len(f'local {n}')}\nlocal {n}\n" + (f"from {widgets}\n" if n == 0 else "") + "\n"
        for n in range(200)
    )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=checkout, env=client_env, input=stream.encode(), check=True)
    assert git(client_env, "rev-list", "--count", "main", cwd=checkout).stdout.strip() == "201"
    upstream = commit_on(client_env, http_repos.path("acme", "widgets"), widgets, "upstream")
    http_repos.update_ref("acme", "widgets", "heads/main", upstream)
    server.seen.clear()
    git(client_env, "fetch", "--quiet", "origin", cwd=checkout)
    assert git(client_env, "rev-parse", "origin/main", cwd=checkout).stdout.strip() == upstream
    assert Seen("POST", "/acme/widgets.git/git-upload-pack", "gzip", None) in server.seen


def test_unknown_repository_cannot_be_cloned(server: Server, client_env: dict[str, str], tmp_path: Path) -> None:
    result = git(client_env, "clone", url(server, "acme/nothing.git"), str(tmp_path / "n"), check=False)
    assert result.returncode != 0
    assert "not found" in result.stderr
    assert not (tmp_path / "n").exists()


def test_only_smart_http_paths_are_served(server: Server, widgets: str) -> None:
    import urllib.error
    import urllib.request

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(url(server, path), timeout=10) as response:
                code: int = response.status
                return code
        except urllib.error.HTTPError as error:
            return error.code

    assert status("acme/widgets.git/info/refs?service=git-upload-pack") == 200
    assert status("acme/widgets.git/HEAD") == 200
    assert status("acme/widgets.git/info/refs?service=git-receive-pack") == 401  # anonymous
    assert status("acme/widgets.git/config") == 404
    assert status("acme/widgets.git/objects/info/packs") == 404
    assert status("acme/nothing.git/info/refs?service=git-upload-pack") == 404
    assert status("acme/..%2F..%2Fetc.git/HEAD") == 404
