"""A GitHub token in a file, rotated the way Swarm, Kubernetes and systemd rotate secrets: the
source hands out the new token at the next request, a running agent uses it without restarting
its workers, and the token never lands in the agent's data dir or its workers' environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bzzz.redaction import contains_secret
from bzzz.secrets.files import FileToken
from bzzz.secrets.settings import Source, TokenSourceSettings
from bzzz.secrets.source import TokenError, open_source
from tests.forge.harness import start_forge, stop_forge
from tests.secrets.harness import (
    NEW,
    OLD,
    SEED,
    environ_of,
    files_holding,
    github_agent,
    log_lines,
    open_issue,
    rotate_on_forge,
    wait_done,
)


def replace_file(path: Path, text: str) -> None:
    """As Docker and systemd do: a new file renamed over the old one (a new inode)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text)
    fresh.rename(path)


def test_a_file_replaced_by_a_rotation_gives_its_new_token_at_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "github-token"
    path.write_text("first-token-value-0001\n")
    source = FileToken(path)
    assert source.current() == "first-token-value-0001"
    replace_file(path, "second-token-value-0002\n")
    assert source.current() == "second-token-value-0002"
    assert contains_secret("second-token-value-0002")  # registered with redaction before it is handed out


def test_a_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "github-token"
    path.write_text("first-token-value-0001\n")
    source = FileToken(path)
    assert source.current() == "first-token-value-0001"
    path.write_text("rewritten-token-value-03\n")  # another size: a new stamp whatever the clock's grain
    assert source.current() == "rewritten-token-value-03"


def test_a_kubernetes_style_symlink_swap_is_noticed(tmp_path: Path) -> None:
    # Kubernetes mounts token -> ..data/token, ..data -> ..2026_01_01; a rotation swaps ..data.
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "token").write_text("kubernetes-token-one-01\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "token").symlink_to("..data/token")
    source = FileToken(tmp_path / "token")
    assert source.current() == "kubernetes-token-one-01"
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "token").write_text("kubernetes-token-two-02\n")
    (tmp_path / "..data.tmp").symlink_to("v2")
    os.replace(tmp_path / "..data.tmp", tmp_path / "..data")
    assert source.current() == "kubernetes-token-two-02"


def test_a_file_missing_mid_rotation_keeps_the_last_token_and_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "github-token"
    path.write_text("steady-token-value-0001\n")
    source = FileToken(path)
    path.unlink()
    with capture_logs() as logs:
        answers = [source.current() for _ in range(50)]
        path.write_text("after-gap-token-value-02\n")
        assert source.current() == "after-gap-token-value-02"
    assert answers == ["steady-token-value-0001"] * 50
    events = [entry["event"] for entry in logs]
    assert events.count("cannot read the GitHub token file; keeping the last token") == 1, events
    assert "the GitHub token file is readable again" in events


@pytest.mark.parametrize(("content", "words"), [(None, "cannot read the GitHub token file"), ("\n", "is empty")])
def test_a_file_that_never_held_a_token_is_an_error_at_start(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "github-token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokenError, match=words):
        FileToken(path)


def test_the_default_source_is_the_environment_as_before() -> None:
    settings = TokenSourceSettings()
    assert settings.source is Source.ENV
    assert open_source(settings, {"GITHUB_TOKEN": "from-the-environment-01"}).current() == "from-the-environment-01"
    with pytest.raises(TokenError, match="no GitHub token: set GITHUB_TOKEN_FILE"):
        open_source(settings, {})


def test_a_running_agent_uses_a_rotated_token_file_without_restarting_its_workers(start_agent, tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        token_file = tmp_path / "secrets" / "github-token"
        token_file.parent.mkdir()
        token_file.write_text(OLD + "\n")
        agent = github_agent(start_agent, forge, f'[github_token]\nsource = "file"\nfile = "{token_file}"\n')
        wait_done(forge, 1)
        pid = agent.worker("github")["pid"]

        rotate_on_forge(forge, OLD, NEW)
        replace_file(token_file, NEW + "\n")
        number = open_issue(forge, "Add --quiet")
        wait_done(forge, number)  # the old token is refused by the forge: only the new one can do this

        assert agent.worker("github")["pid"] == pid
        assert log_lines(agent, "github", "the GitHub token file changed: using its token")
        assert not any(OLD.encode() in environ_of(w["pid"]) for w in agent.call("status")["workers"] if w["pid"])
        assert files_holding(agent.data_dir, OLD, NEW) == []
        control = agent.data_dir / "control.txt"  # positive control: the search finds a token where one is
        control.write_text(f"x{NEW}x")
        assert files_holding(agent.data_dir, OLD, NEW) == [control]
    finally:
        stop_forge(forge)
