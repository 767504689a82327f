"""`[github_token]`: where the agent's GitHub token comes from (`bzzz.secrets`).

    [github_token]                   # default: source = "env" (GITHUB_TOKEN_FILE, else GITHUB_TOKEN)
    source = "vault"                 # "env" | "file" | "vault"
    [github_token.vault]
    address = "https://vault.internal:8200"
    mount = "secret"                 # the KV v2 engine
    path = "bzzz/walnut"             # the secret; its field `key` holds the token
    key = "token"
    auth = "approle"                 # "token_file" | "approle" | "env" ($VAULT_TOKEN)
    role_id = "2b9f…"                # not a secret on its own; the secret_id is read from a file
    secret_id_file = "/run/secrets/vault-secret-id"
    refresh_s = 300                  # re-read the secret this often (and at once on a GitHub 401)
    max_stale_s = 3600               # Vault silent this long past the last read: no token, no work

Secrets are never config text: the Vault token and AppRole secret_id are named by file (or
`$VAULT_TOKEN`), the GitHub token lives in the file, the environment or Vault. No hvac here:
reading a config must not load the Vault client.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

# How the supervisor hands `[github_token]` to its workers, beside their own settings (JSON).
SETTINGS_ENV = "BZZZ_TOKEN_SOURCE"


class Source(str, Enum):
    ENV = "env"  # $GITHUB_TOKEN_FILE (watched), else $GITHUB_TOKEN: what agents did before Vault
    FILE = "file"  # `file`, watched
    VAULT = "vault"  # [github_token.vault]


class VaultAuth(str, Enum):
    TOKEN_FILE = "token_file"  # a Vault token in a file (a Vault Agent sink, a Swarm secret), renewed
    APPROLE = "approle"  # role_id here, secret_id in a file: logs in again before the token expires
    ENV = "env"  # $VAULT_TOKEN in the agent's environment, renewed


class VaultSettings(BaseModel):
    """`[github_token.vault]`."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(pattern=r"^https?://", description="Vault's URL, e.g. https://vault.internal:8200.")
    mount: str = Field(default="secret", min_length=1, description="Where the KV v2 engine is mounted.")
    path: str = Field(min_length=1, description="The secret's path under the mount.")
    key: str = Field(default="token", min_length=1, description="The secret's field that holds the GitHub token.")
    auth: VaultAuth = Field(default=VaultAuth.TOKEN_FILE, description="How the agent logs in to Vault.")
    token_file: Path | None = Field(default=None, description="auth = token_file: the file with a Vault token.")
    role_id: str | None = Field(default=None, min_length=1, description="auth = approle: the role's id.")
    secret_id_file: Path | None = Field(default=None, description="auth = approle: the file with a secret_id.")
    approle_mount: str = Field(default="approle", min_length=1, description="Where the AppRole method is mounted.")
    namespace: str | None = Field(default=None, description="A Vault Enterprise namespace.")
    ca_file: Path | None = Field(default=None, description="CA bundle for Vault's TLS certificate.")
    timeout_s: float = Field(default=5.0, gt=0, description="Each Vault request gives up after this long.")
    refresh_s: float = Field(
        default=300.0, gt=0, description="Re-read the secret this often (or its lease, if shorter)."
    )
    retry_s: float = Field(default=10.0, gt=0, description="While Vault fails, ask again this often (not every call).")
    max_stale_s: float = Field(
        default=3600.0,
        gt=0,
        description="Keep using the last token read this long after Vault stops answering; past it the agent "
        "has no token and takes no work until Vault answers.",
    )

    @model_validator(mode="after")
    def _auth_has_what_it_needs(self) -> VaultSettings:
        if self.auth is VaultAuth.TOKEN_FILE and self.token_file is None:
            raise ValueError("auth = token_file needs token_file (the file holding a Vault token)")
        if self.auth is VaultAuth.APPROLE and (self.role_id is None or self.secret_id_file is None):
            raise ValueError("auth = approle needs role_id and secret_id_file")
        return self


class TokenSourceSettings(BaseModel):
    """`[github_token]`: the agent's GitHub token, for its github and executor workers."""

    model_config = ConfigDict(extra="forbid")

    source: Source = Field(default=Source.ENV, description="env (GITHUB_TOKEN_FILE, else GITHUB_TOKEN), file or vault.")
    file: Path | None = Field(default=None, description="source = file: the token's file, re-read when it changes.")
    vault: VaultSettings | None = Field(default=None, description="source = vault: where and how.")

    @model_validator(mode="after")
    def _source_has_what_it_needs(self) -> TokenSourceSettings:
        if self.source is Source.FILE and self.file is None:
            raise ValueError("source = file needs file (the path of the token's file)")
        if self.source is Source.VAULT and self.vault is None:
            raise ValueError("source = vault needs a [github_token.vault] section")
        if self.source is not Source.VAULT and self.vault is not None:
            raise ValueError(f"[github_token.vault] is set but source = {self.source.value!r}: set source = 'vault'")
        return self

    def secret_files(self) -> tuple[Path, ...]:
        """Files holding secrets this source reads: hidden from every task's sandbox."""
        vault = self.vault
        named = (self.file, vault.token_file if vault else None, vault.secret_id_file if vault else None)
        return tuple(path for path in named if path is not None)
