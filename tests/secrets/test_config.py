"""`[github_token]` in the agent config: checked when the config is read, shown by `bzzz config
show`, one line for every mistake; no secret can be written in it. Run as an operator does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_user_errors import bzzz, refused

HEAD = 'node_id = "walnut"\ndata_dir = "{data}"\n'


def show(tmp_path: Path, section: str) -> dict[str, dict[str, object]]:
    config = tmp_path / "bzzz.toml"
    config.write_text(HEAD.format(data=tmp_path / "data") + section)
    result = bzzz("config", "show", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    shown: dict[str, dict[str, object]] = json.loads(result.stdout)
    return shown


def test_without_a_section_the_token_comes_from_the_environment_as_before(tmp_path: Path) -> None:
    shown = show(tmp_path, "")
    assert shown["github_token.source"] == {"value": "env", "source": "default"}
    assert shown["github_token.vault"]["value"] is None


def test_a_vault_source_is_shown_with_its_defaults_and_where_each_value_comes_from(tmp_path: Path) -> None:
    shown = show(
        tmp_path,
        '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "http://127.0.0.1:8200"\n'
        'path = "bzzz/walnut"\nauth = "approle"\nrole_id = "r-1"\nsecret_id_file = "/run/secrets/sid"\n',
    )
    assert shown["github_token.source"]["value"] == "vault"
    assert shown["github_token.vault.path"]["value"] == "bzzz/walnut"
    assert str(shown["github_token.vault.path"]["source"]).startswith("file")
    assert shown["github_token.vault.mount"] == {"value": "secret", "source": "default"}
    assert shown["github_token.vault.max_stale_s"]["value"] == 3600.0


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ('[github_token]\nsource = "vault"\n', ("github_token", "source = vault needs a [github_token.vault]")),
        ('[github_token]\nsource = "file"\n', ("github_token", "source = file needs file")),
        ('[github_token]\nsource = "ldap"\n', ("github_token.source", "'ldap'")),
        (
            '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "http://v:8200"\npath = "p"\n'
            'auth = "approle"\nrole_id = "r"\n',
            ("github_token.vault", "auth = approle needs role_id and secret_id_file"),
        ),
        (
            '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "http://v:8200"\npath = "p"\n',
            ("github_token.vault", "auth = token_file needs token_file"),
        ),
        (
            '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "v:8200"\npath = "p"\nauth = "env"\n',
            ("github_token.vault.address", "should match pattern"),
        ),
        (
            '[github_token]\nfile = "/t"\n[github_token.vault]\naddress = "http://v"\npath = "p"\nauth = "env"\n',
            ("set source = 'vault'",),
        ),
    ],
)
def test_a_wrong_section_is_refused_in_one_line_naming_the_setting(
    tmp_path: Path, section: str, words: tuple[str, ...]
) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text(HEAD.format(data=tmp_path / "data") + section)
    refused(bzzz("config", "show", "--config", str(config)), 2, str(config), *words)


@pytest.mark.parametrize(
    "section",
    [
        '[github_token]\ntoken = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"\n',
        '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "http://v"\npath = "p"\nauth = "env"\n'
        'token = "hvs.0123456789abcdef"\n',
        '[github_token]\nsource = "vault"\n[github_token.vault]\naddress = "http://v"\npath = "p"\nauth = "approle"\n'
        'role_id = "r"\nsecret_id_file = "/s"\nsecret_id = "0123-4567"\n',
    ],
    ids=["github-token", "vault-token", "approle-secret-id"],
)
def test_no_secret_can_be_given_as_config_text(tmp_path: Path, section: str) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text(HEAD.format(data=tmp_path / "data") + section)
    line = refused(bzzz("config", "show", "--config", str(config)), 2, "Extra inputs are not permitted")
    assert "hvs.0123456789abcdef" not in line and "ghp_0123456789" not in line


def test_the_environment_overrides_the_section_like_every_setting(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text(HEAD.format(data=tmp_path / "data"))
    result = bzzz(
        "config",
        "show",
        "--json",
        "--config",
        str(config),
        BZZZ_GITHUB_TOKEN__SOURCE="file",
        BZZZ_GITHUB_TOKEN__FILE="/t",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["github_token.source"]["value"] == "file" and shown["github_token.file"]["value"] == "/t"
