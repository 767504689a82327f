"""`[workers.hmmm.settings]`: the webhooks are checked when the config is read, and the Slack
webhook, a secret, can come from a file that is read but never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bzzz.config import ConfigError, load
from bzzz.hmmm.settings import HmmmWorkerSettings

SECRET = "https://hooks.slack.example/services/T000/B000/very-secret"


def hmmm_config(tmp_path: Path, settings: str) -> Path:
    config = tmp_path / "bzzz.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[workers.hmmm]\nmodule = "bzzz.workers.hmmm"\nsettings = {{ {settings} }}\n'
    )
    return config


def test_the_slack_webhook_is_read_from_its_file_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slack-webhook").write_text(SECRET + "\n")
    monkeypatch.chdir(tmp_path)
    config = load(hmmm_config(tmp_path, 'slack_webhook_file = "slack-webhook", window_s = 8'))
    shown = config.workers["hmmm"].settings
    assert shown["slack_webhook_file"] == str(tmp_path / "slack-webhook")  # where the agent was started
    assert shown["window_s"] == 8.0 and shown["gather_s"] == 5.0
    assert SECRET not in str(shown)
    # What the worker gets (the JSON the supervisor passes) gives it the URL.
    assert HmmmWorkerSettings.model_validate(shown).slack_url() == SECRET
    assert (
        HmmmWorkerSettings(
            slack_webhook="https://other.example/hook", slack_webhook_file=tmp_path / "slack-webhook"
        ).slack_url()
        == "https://other.example/hook"
    )
    assert HmmmWorkerSettings().slack_url() is None


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ('n8n_webhook = "ftp://n8n.example/hook"', "settings.n8n_webhook: a webhook must be an http(s) URL"),
        ('slack_webhook = "hooks.slack.example"', "settings.slack_webhook: a webhook must be an http(s) URL"),
        ('slack_webhook_file = "missing"', "settings.slack_webhook_file: cannot read it"),
        ('slack_webhook_file = "not-a-url"', "it does not hold an http(s) URL"),
        ("window_s = 0", "settings.window_s: Input should be greater than 0"),
        ("model_timeout_s = -1", "settings.model_timeout_s: Input should be greater than 0"),
        ('ollama = ["http://127.0.0.1:11434"]', "settings.ollama: Extra inputs are not permitted"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: str, says: str
) -> None:
    (tmp_path / "not-a-url").write_text("hooks.slack.example/services/T000\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load(hmmm_config(tmp_path, settings))
    message = str(refused.value)
    assert "workers.hmmm: " in message and says in message and "\n" not in message
    assert "hooks.slack.example/services" not in message  # a file's content is not repeated


def test_every_setting_says_what_it_is_for() -> None:
    assert [name for name, field in HmmmWorkerSettings.model_fields.items() if not field.description] == []
