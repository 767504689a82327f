"""The model executor against an Ollama-compatible server with scripted answers: a good answer
becomes the change; a bad one goes back with the reason; nothing escapes the workspace."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ollama
import pytest

from bzzz.capabilities import choose_model
from bzzz.executor.edits import EditError, apply_edits, parse_edits
from bzzz.executor.model import ModelExecutor, ModelSettings, ModelUnavailable
from bzzz.executor.sandbox import Sandbox, clean_stale
from bzzz.executor.workspace import Workspace, git_url
from tests.executor.fake_ollama import fake_ollama
from tests.forge.harness import Forge, start_forge, stop_forge

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

GOOD = "Here you go.\n<<<FILE GREETING.md>>>\nhello\n<<<END>>>\n"
WRONG = "<<<FILE GREETING.md>>>\ngoodbye\n<<<END>>>\n"
NONSENSE = "The the the greeting is a greeting of greetings."
ESCAPE = "<<<FILE ../outside.txt>>>\npwned\n<<<END>>>\n"
CHECK = [("grep", "-q", "hello", "GREETING.md")]


SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    files: {README.md: "# Demo\\n"}
"""


@dataclass
class Task:
    """What the runner gives the model executor: the pristine clone and the sandbox's copy of it."""

    workspace: Workspace
    sandbox: Sandbox

    @property
    def files(self) -> Path:
        return self.sandbox.files


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = start_forge(tmp_path_factory.mktemp("forge"), seed=SEED)
    yield running
    stop_forge(running)


@pytest.fixture
def task(forge: Forge, tmp_path: Path) -> Iterator[Task]:
    # The sandbox's parent is not under pytest's tmp_path: as root that is mode 0700, and
    # bubblewrap resolves the paths it binds as the (unprivileged) sandbox uid.
    parent = Path(tempfile.mkdtemp(prefix="bzzz-model-test-", dir="/var/tmp"))
    parent.chmod(0o711)
    ws = Workspace.clone(
        tmp_path / "work",
        git_url(forge.url, "alice/tasks"),
        token="agent-1-token",
        branch="bzzz/1-agent",
        author=("agent", "a@b"),
    )
    try:
        with Sandbox.open(parent) as sandbox:
            ws.export(sandbox.files)
            yield Task(ws, sandbox)
    finally:
        ws.remove()
        clean_stale(parent)
        shutil.rmtree(parent, ignore_errors=True)


def work(server_url: str, task: Task, rounds: int = 3, needs: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    executor = ModelExecutor(ModelSettings(endpoints=(server_url,), rounds=rounds))
    return executor.work(
        task.files,
        "Add a greeting",
        "Write hello into GREETING.md",
        needs,
        CHECK,
        lambda argv: task.sandbox.run(argv),
        lambda: task.workspace.export(task.files),
    )


@needs_bwrap
def test_a_good_answer_is_applied_and_checked_in_one_round(task: Task) -> None:
    with fake_ollama(["gemma3:270m"], [GOOD]) as server:
        result = work(server.url, task)
    assert result.ok and result.rounds == 1 and result.model == "gemma3:270m"
    assert (task.files / "GREETING.md").read_text() == "hello\n"
    prompt = server.requests[0]["messages"][1]["content"]
    assert "Write hello into GREETING.md" in prompt and "README.md" in prompt


@needs_bwrap
def test_a_bad_answer_goes_back_with_the_reason_and_a_later_good_one_wins(task: Task) -> None:
    with fake_ollama(["gemma3:270m"], [NONSENSE, WRONG, GOOD]) as server:
        result = work(server.url, task)
    assert result.ok and result.rounds == 3
    second, third = server.requests[1]["messages"], server.requests[2]["messages"]
    assert "holds no edits" in second[-1]["content"]
    assert "grep -q hello GREETING.md" in third[-1]["content"] and "exited with status 1" in third[-1]["content"]
    assert (task.files / "GREETING.md").read_text() == "hello\n"


@needs_bwrap
def test_rounds_are_bounded_and_leave_the_clone_clean(task: Task) -> None:
    with fake_ollama(["gemma3:270m"], [WRONG]) as server:
        result = work(server.url, task, rounds=2)
    assert not result.ok and result.rounds == 2 and len(server.requests) == 2
    assert "no working change in 2 round(s)" in result.summary
    assert task.workspace.collect(task.files) == []


@needs_bwrap
def test_an_answer_that_writes_outside_the_repository_is_refused(task: Task, tmp_path: Path) -> None:
    with fake_ollama(["gemma3:270m"], [ESCAPE, GOOD]) as server:
        result = work(server.url, task)
    assert result.ok and result.rounds == 2
    assert (
        "leads outside" in server.requests[1]["messages"][-1]["content"]
        or "not a relative path" in server.requests[1]["messages"][-1]["content"]
    )
    assert not (task.files.parent / "outside.txt").exists()


@needs_bwrap
def test_an_endpoint_that_goes_down_mid_task_makes_the_model_unavailable(task: Task) -> None:
    # The real crash (a malformed model takes ollama serve down) is in test_ollama_crash.py.
    with fake_ollama(["gemma3:270m"], [WRONG]) as server:

        def reset() -> None:  # after the first answer: the endpoint is gone before the second
            task.workspace.export(task.files)
            server.close()

        executor = ModelExecutor(ModelSettings(endpoints=(server.url,), rounds=3))
        with pytest.raises(ModelUnavailable, match=f"the Ollama at {server.url} failed while gemma3:270m worked"):
            executor.work(
                task.files,
                "Add a greeting",
                "Write hello into GREETING.md",
                frozenset(),
                CHECK,
                task.sandbox.run,
                reset,
            )
    assert len(server.requests) == 1


def test_no_endpoint_or_no_fitting_model_means_not_here(task: Task) -> None:
    with pytest.raises(ModelUnavailable, match="no Ollama endpoint answers"):
        ModelExecutor(ModelSettings(endpoints=("http://127.0.0.1:9",))).pick(frozenset())
    with fake_ollama(["gemma3:270m"], [GOOD]) as server:
        with pytest.raises(ModelUnavailable, match="wanted qwen2.5-coder"):
            ModelExecutor(ModelSettings(endpoints=(server.url,))).pick(frozenset({"qwen2.5-coder"}))


def test_models_are_chosen_by_need_then_default_then_first() -> None:
    installed = ["gemma3:270m", "qwen2.5-coder:7b", "llama3:latest"]
    assert choose_model(frozenset({"qwen2.5-coder"}), installed, None) == "qwen2.5-coder:7b"
    assert choose_model(frozenset({"qwen2.5-coder:32b"}), installed, None) is None
    assert choose_model(frozenset(), installed, "llama3") == "llama3:latest"
    assert choose_model(frozenset(), installed, "phi3") is None
    assert choose_model(frozenset(), installed, None) == "gemma3:270m"


def test_the_fake_server_speaks_ollamas_api_to_the_real_client() -> None:
    with fake_ollama(["gemma3:270m"], ["one two three"]) as server:
        client = ollama.Client(host=server.url)
        assert [m.model for m in client.list().models] == ["gemma3:270m"]
        whole = client.chat(model="gemma3:270m", messages=[{"role": "user", "content": "hi"}])
        assert whole.message.content == "one two three" and whole.done
        streamed = "".join(
            p.message.content or ""
            for p in client.chat(model="gemma3:270m", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert streamed.strip() == "one two three"
        assert client.generate(model="gemma3:270m", prompt="hi").response == "one two three"
        with pytest.raises(ollama.ResponseError):
            client.chat(model="missing", messages=[])


def test_edits_name_files_inside_the_repository_only(tmp_path: Path) -> None:
    (tmp_path / "ws" / ".git").mkdir(parents=True)
    ws = tmp_path / "ws"
    (tmp_path / "secret").write_text("s")
    (ws / "link").symlink_to(tmp_path)
    for bad in ("../x", "/etc/passwd", ".git/config", "link/secret", "a\\b"):
        with pytest.raises(EditError):
            apply_edits(ws, parse_edits(f"<<<FILE {bad}>>>\nx\n<<<END>>>\n"))
    assert apply_edits(ws, parse_edits("<<<FILE src/new.py>>>\nprint(1)\n<<<END>>>\n")) == ["src/new.py"]
    assert apply_edits(ws, parse_edits("<<<DELETE src/new.py>>>\n")) == ["src/new.py"]
    assert not (ws / "src" / "new.py").exists()
    with pytest.raises(EditError, match="not closed"):
        parse_edits("<<<FILE a.py>>>\nno end")


def test_the_server_refuses_bad_requests_and_bounds_every_answer() -> None:
    import httpx

    with fake_ollama(["gemma3:270m"], ["fine"]) as server:
        bad = httpx.post(f"{server.url}/api/chat", content=b"{not json")
        assert bad.status_code == 400 and "invalid request" in bad.json()["error"]
        assert httpx.post(f"{server.url}/api/chat", json={"model": "gemma3:270m", "messages": "x"}).status_code == 400
        answer = httpx.post(
            f"{server.url}/api/generate",
            json={"model": "gemma3:270m", "prompt": "p", "system": "be brief", "stream": False},
        ).json()
        assert answer["response"] == "fine" and answer["done"] and answer["done_reason"] == "stop"
        seen = server.requests[-1]
        assert seen["prompt"] == "be brief\n\np" and seen["options"]["num_predict"] == 256
        assert httpx.get(f"{server.url}/api/version").json()["version"]
