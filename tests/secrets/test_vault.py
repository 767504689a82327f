"""The GitHub token in HashiCorp Vault (KV v2), against a real `vault server -dev`.

Skipped where the binary is not built (`make test-vault` builds it and runs these tests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
import pytest
from hvac.exceptions import Forbidden
from structlog.testing import capture_logs

from bzzz.redaction import contains_secret
from bzzz.secrets.settings import VaultAuth, VaultSettings
from bzzz.secrets.source import TokenError
from bzzz.secrets.vault import VaultToken
from tests.agents import wait_until
from tests.forge.harness import start_forge, stop_forge
from tests.secrets.harness import (
    NEW,
    OLD,
    SEED,
    assignees,
    environ_of,
    files_holding,
    github_agent,
    log_lines,
    open_issue,
    rotate_on_forge,
    settle,
    wait_done,
)
from tests.secrets.vault_dev import AGENT_TOKEN, SECRET_PATH, VaultDev, needs_vault, vault_section

pytestmark = needs_vault

KEPT = "Vault does not give the GitHub token; keeping the last one until it expires"
EXPIRED = "no GitHub token: Vault has not given one for longer than max_stale_s; taking no work until it answers"
BACK = "Vault gives the GitHub token"
PAST_ITS_EXPIRY = "no GitHub token: the one in Vault is past its expires_at; taking no work until Vault gives another"


def rfc3339(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat(timespec="seconds")


def token_file(tmp_path: Path, value: str = AGENT_TOKEN) -> Path:
    path = tmp_path / "secrets" / "vault-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return path


@pytest.fixture
def source(vault: VaultDev, tmp_path: Path) -> Iterator[Callable[..., VaultToken]]:
    """`source(**settings)`: a Vault token source for this test's Vault (closed at the end)."""
    opened: list[VaultToken] = []

    def make(**settings: object) -> VaultToken:
        fields: dict[str, object] = {
            "address": vault.address,
            "path": SECRET_PATH,
            "auth": "token_file",
            "token_file": token_file(tmp_path),
            **settings,
        }
        opened.append(VaultToken(VaultSettings.model_validate(fields), environ={}))
        return opened[-1]

    yield make
    for tokens in opened:
        tokens.close()


def test_kv_v2_holds_the_token_and_gives_back_each_version(vault: VaultDev) -> None:
    root = vault.root()
    root.secrets.kv.v2.create_or_update_secret(path=SECRET_PATH, secret={"token": OLD})
    root.secrets.kv.v2.create_or_update_secret(path=SECRET_PATH, secret={"token": NEW})
    latest = root.secrets.kv.v2.read_secret_version(path=SECRET_PATH, raise_on_deleted_version=True)
    first = root.secrets.kv.v2.read_secret_version(path=SECRET_PATH, version=1, raise_on_deleted_version=True)
    assert (latest["data"]["data"]["token"], latest["data"]["metadata"]["version"]) == (NEW, 2)
    assert first["data"]["data"]["token"] == OLD


def test_a_policy_scoped_token_reads_the_secret_and_is_refused_a_write(vault: VaultDev) -> None:
    vault.seed(OLD)
    scoped = hvac.Client(url=vault.address, token=AGENT_TOKEN)
    assert scoped.secrets.kv.v2.read_secret_version(path=SECRET_PATH, raise_on_deleted_version=True)["data"][
        "data"
    ] == {"token": OLD}
    with pytest.raises(Forbidden):
        scoped.secrets.kv.v2.create_or_update_secret(path=SECRET_PATH, secret={"token": "planted-by-an-agent-000"})
    vault.put(NEW)  # positive control: the same write is allowed to a token that may write
    assert scoped.secrets.kv.v2.read_secret_version(path=SECRET_PATH, raise_on_deleted_version=True)["data"][
        "data"
    ] == {"token": NEW}


def test_the_source_reads_the_token_with_a_token_file_and_registers_it_for_redaction(
    source: Callable[..., VaultToken], vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    tokens = source()
    assert tokens.current() == OLD
    assert contains_secret(OLD) and contains_secret(AGENT_TOKEN)  # the Vault token is a secret too


def test_auth_env_logs_in_with_vault_token_from_the_environment_and_needs_it(vault: VaultDev) -> None:
    vault.seed(OLD)
    settings = VaultSettings(address=vault.address, path=SECRET_PATH, auth=VaultAuth.ENV)
    tokens = VaultToken(settings, environ={"VAULT_TOKEN": AGENT_TOKEN})
    try:
        assert tokens.current() == OLD
    finally:
        tokens.close()
    with pytest.raises(TokenError, match="auth = env, but VAULT_TOKEN is not set"):
        VaultToken(settings, environ={})


def test_approle_logs_in_with_a_secret_id_from_a_file_and_again_before_its_login_expires(
    source: Callable[..., VaultToken], vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    root = vault.root()
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("bzzz", token_policies=["bzzz-read"], token_ttl="3s", token_max_ttl="3s")
    role_id = root.auth.approle.read_role_id("bzzz")["data"]["role_id"]
    secret_id_file = tmp_path / "secret-id"
    secret_id_file.write_text(root.auth.approle.generate_secret_id("bzzz")["data"]["secret_id"])
    tokens = source(auth="approle", token_file=None, role_id=role_id, secret_id_file=secret_id_file, refresh_s=0.2)
    assert tokens.settings.auth is VaultAuth.APPROLE
    assert tokens.current() == OLD
    first_login = tokens.client.token
    wait_until(lambda: tokens.client.token != first_login, 60, "a second AppRole login")
    first = hvac.Client(url=vault.address, token=first_login)
    wait_until(lambda: not first.is_authenticated(), 60, "the first login to expire (token_ttl 3 s)")
    vault.put(NEW)
    wait_until(lambda: tokens.current() == NEW, 60, "the rotated token, read with a login made since")


def test_a_vault_token_from_a_file_is_renewed_before_its_ttl_runs_out(
    source: Callable[..., VaultToken], vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    short = vault.root().auth.token.create(policies=["bzzz-read"], ttl="3s", explicit_max_ttl="1h")["auth"]
    tokens = source(token_file=token_file(tmp_path, short["client_token"]), refresh_s=0.2)
    assert tokens.current() == OLD
    created = time.monotonic()
    wait_until(lambda: tokens.current() and time.monotonic() - created > 6, 60, "twice the token's TTL to pass")
    vault.put(NEW)
    wait_until(lambda: tokens.current() == NEW, 60, "the rotated token, read with the renewed Vault token")


def test_vault_stopped_keeps_the_last_token_until_max_stale_s_and_says_so_once(
    source: Callable[..., VaultToken], vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    tokens = source(refresh_s=0.1, retry_s=0.1, max_stale_s=3)
    assert tokens.current() == OLD
    with capture_logs() as logs:  # the source's own thread logs: listen before Vault goes
        vault.stop()
        wait_until(lambda: tokens.current() is None, 60, "the last token to expire")
        answers_after = [tokens.current() for _ in range(20)]
        settle(1.0)  # ten more failed reads (retry_s): still no more lines
    events = [entry["event"] for entry in logs]
    assert events.count(KEPT) == 1 and events.count(EXPIRED) == 1, events
    assert answers_after == [None] * 20
    with capture_logs() as logs:
        vault.start()
        vault.seed(NEW)
        wait_until(lambda: tokens.current() == NEW, 60, "a token again once Vault answers")
    assert [entry["event"] for entry in logs].count(BACK) == 1


def test_a_running_agent_picks_up_a_token_rotated_in_vault_at_githubs_401(
    start_agent, vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        # refresh_s is long: only the forge's 401 to the old token can make the worker read again.
        agent = github_agent(start_agent, forge, vault_section(token_file(tmp_path), vault.address, refresh_s=3600))
        wait_done(forge, 1)
        pid = agent.worker("github")["pid"]

        vault.put(NEW)
        rotate_on_forge(forge, OLD, NEW)
        number = open_issue(forge, "Add --quiet")
        wait_done(forge, number)

        assert agent.worker("github")["pid"] == pid
        assert log_lines(agent, "github", "the GitHub token in Vault changed: using the new one")
        for worker in agent.call("status")["workers"]:
            assert not any(t.encode() in environ_of(worker["pid"]) for t in (OLD, NEW, AGENT_TOKEN)), worker
        assert files_holding(agent.data_dir, OLD, NEW, AGENT_TOKEN) == []
        control = agent.data_dir / "logs" / "control.txt"  # positive control: the search finds one where it is
        control.write_text(f"x{NEW}x")
        assert files_holding(agent.data_dir, OLD, NEW, AGENT_TOKEN) == [control]
    finally:
        stop_forge(forge)


def test_with_vault_down_a_running_agent_keeps_working_with_its_last_token_and_logs_one_line(
    start_agent, vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        section = vault_section(token_file(tmp_path), vault.address, refresh_s=0.5, retry_s=0.5, max_stale_s=3600)
        agent = github_agent(start_agent, forge, section)
        wait_done(forge, 1)
        vault.stop()
        wait_until(lambda: log_lines(agent, "github", KEPT), 60, "the worker to say Vault is down")
        number = open_issue(forge, "Add --quiet")
        wait_done(forge, number)
        settle(2.0)  # several more failed reads of Vault (every retry_s): still one line
        assert len(log_lines(agent, "github", KEPT)) == 1
        assert '"error": "cannot connect' in log_lines(agent, "github", KEPT)[0]
    finally:
        stop_forge(forge)


def test_past_max_stale_s_the_agent_takes_no_work_and_resumes_when_vault_is_back(
    start_agent, vault: VaultDev, tmp_path: Path
) -> None:
    vault.seed(OLD)
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        section = vault_section(token_file(tmp_path), vault.address, refresh_s=0.5, retry_s=0.5, max_stale_s=2)
        agent = github_agent(start_agent, forge, section)
        wait_done(forge, 1)
        pid = agent.worker("github")["pid"]
        vault.stop()
        wait_until(lambda: log_lines(agent, "github", EXPIRED), 60, "the worker to give its token up")
        number = open_issue(forge, "Add --quiet")
        settle(3.0)  # ten polls' worth: an agent with a token would have claimed it by now
        assert assignees(forge, number) == []

        vault.start()
        vault.seed(OLD)
        wait_done(forge, number)
        assert agent.worker("github")["pid"] == pid  # waited, never crashed or restarted
        assert len(log_lines(agent, "github", EXPIRED)) == 1
        assert log_lines(agent, "github", BACK)
    finally:
        stop_forge(forge)


def test_a_token_past_its_expires_at_is_never_handed_out_and_a_later_one_is(
    source: Callable[..., VaultToken], vault: VaultDev
) -> None:
    vault.seed(OLD)
    vault.put(OLD, expires_at=rfc3339(-60))
    with capture_logs() as logs:
        tokens = source(refresh_s=0.2, retry_s=0.2)
        assert tokens.current() is None  # Vault answers, and max_stale_s is an hour: only expires_at refuses it
        assert tokens.current() is None
    assert [entry["event"] for entry in logs].count(PAST_ITS_EXPIRY) == 1
    vault.put(NEW, expires_at=rfc3339(3600).replace("+00:00", "Z"))  # GitHub's own spelling of UTC
    wait_until(lambda: tokens.current() == NEW, 60, "the new token, whose expires_at is an hour away")


def test_with_vault_down_the_last_token_is_kept_only_until_its_expires_at(
    source: Callable[..., VaultToken], vault: VaultDev
) -> None:
    vault.seed(OLD)
    vault.put(OLD, expires_at=rfc3339(4))
    tokens = source(refresh_s=0.2, retry_s=0.2, max_stale_s=3600)
    assert tokens.current() == OLD
    with capture_logs() as logs:
        vault.stop()
        wait_until(lambda: KEPT in [entry["event"] for entry in logs], 60, "Vault's silence noticed")
        assert tokens.current() == OLD  # kept while Vault is down...
        wait_until(lambda: tokens.current() is None, 60, "the token's own expiry")  # ...until its expires_at
    events = [entry["event"] for entry in logs]
    assert events.count(PAST_ITS_EXPIRY) == 1 and EXPIRED not in events, events


def test_an_expires_at_that_is_not_a_time_refuses_the_secret(
    source: Callable[..., VaultToken], vault: VaultDev
) -> None:
    vault.seed(OLD)
    vault.put(OLD, expires_at="next tuesday")
    with capture_logs() as logs:
        tokens = source(refresh_s=0.2, retry_s=0.2)
        assert tokens.current() is None
    failing = [entry for entry in logs if entry["event"] == "no GitHub token from Vault yet"]
    assert failing and "expires_at is not an RFC 3339 time" in failing[0]["error"], logs
    vault.put(OLD)  # positive control: the same token without the bad field is handed out
    wait_until(lambda: tokens.current() == OLD, 60, "the token once the secret is well formed")
