"""Running a forge: rate limits, injected faults, seeding from the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.forge.harness import SEED


def test_the_rate_limit_runs_out_with_githubs_answer(forge_factory) -> None:
    forge = forge_factory("--rate-limit", "3")
    statuses = [forge.call("GET", "/user").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 403]
    refused = forge.call("GET", "/user")
    assert refused.json()["message"].startswith("API rate limit exceeded")
    assert refused.headers["X-RateLimit-Remaining"] == "0" and int(refused.headers["X-RateLimit-Reset"]) > time.time()
    other = forge.call("GET", "/user", token="agent-2-token")  # limits are per user
    assert other.status_code == 200


def test_anonymous_calls_have_their_own_smaller_limit(forge_factory) -> None:
    forge = forge_factory("--anonymous-rate-limit", "2")
    assert [forge.call("GET", "/repos/alice/widgets", token=None).status_code for _ in range(3)] == [200, 200, 403]
    assert forge.call("GET", "/repos/alice/widgets").status_code == 200


def test_an_outage_window_answers_503_then_ends(forge_factory) -> None:
    forge = forge_factory("--outage", "0-1.5")
    during = forge.call("GET", "/user")
    assert during.status_code == 503 and "documentation_url" in during.json()
    time.sleep(1.6)
    assert forge.call("GET", "/user").status_code == 200


def test_an_error_rate_fails_about_that_share_of_requests_repeatably(forge_factory) -> None:
    forge = forge_factory("--error-rate", "0.3", "--fault-seed", "7")
    first = [forge.call("GET", "/user").status_code for _ in range(60)]
    failed = first.count(503)
    assert 8 <= failed <= 30 and set(first) == {200, 503}
    again = forge_factory("--error-rate", "0.3", "--fault-seed", "7", name="again")
    assert [again.call("GET", "/user").status_code for _ in range(60)] == first  # same seed, same failures


def test_latency_is_added_and_faults_change_at_run_time(forge_factory) -> None:
    forge = forge_factory()
    settings = forge.call("PUT", "/_forge/faults", token="alice-token", json={"latency_ms": 300, "jitter_ms": 50})
    assert settings.status_code == 200 and settings.json()["latency_ms"] == 300
    started = time.monotonic()
    forge.call("GET", "/user")
    slow = time.monotonic() - started
    forge.call("PUT", "/_forge/faults", token="alice-token", json={})
    started = time.monotonic()
    forge.call("GET", "/user")
    fast = time.monotonic() - started
    assert slow >= 0.25 and slow > fast  # the added latency is what separates them
    assert forge.call("PUT", "/_forge/faults", token="agent-1-token", json={}).status_code == 403
    bad = forge.call("PUT", "/_forge/faults", token="alice-token", json={"error_rate": 2})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "error_rate"


def bzzz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bzzz.cli.main", *args], capture_output=True, text=True, timeout=60)


def test_seeding_from_the_command_line_is_idempotent(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    first = bzzz("forge", "seed", str(seed), "--data", str(tmp_path / "data"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "created 4 users, 2 repos, 3 issues"
    again = bzzz("forge", "seed", str(seed), "--data", str(tmp_path / "data"))
    assert again.stdout.strip() == "created 0 users, 0 repos, 0 issues"
    assert (tmp_path / "data" / "repos" / "alice" / "widgets.git").is_dir()


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("users: [{login: a}]\nrepos: [{owner: nobody, name: x}]", "no user 'nobody'"),
        ("users: [{login: 'bad login!'}]", "login"),
        ("users: [{login: a, colour: red}]", "colour"),
        ("users: [oops", "not valid YAML"),
    ],
)
def test_a_bad_seed_file_is_a_clear_error(tmp_path: Path, text: str, complaint: str) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(text)
    result = bzzz("forge", "seed", str(seed), "--data", str(tmp_path / "data"))
    assert result.returncode == 2 and complaint in result.stderr and "Traceback" not in result.stderr


def test_serve_explains_itself_and_refuses_a_bad_outage(tmp_path: Path) -> None:
    helped = bzzz("forge", "serve", "--help")
    assert helped.returncode == 0 and "--error-rate" in helped.stdout and "--seed" in helped.stdout
    bad = bzzz("forge", "serve", "--data", str(tmp_path), "--port", "0", "--outage", "soon")
    assert bad.returncode == 2 and "START-END" in bad.stderr
