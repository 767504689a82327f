"""A real `vault server -dev` for the tests: the binary `make vault` builds into the tools cache.

Dev mode keeps everything in memory: a restarted server has lost its secrets, policies and
tokens, so `seed` writes them again (the same token id, the same secret)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import pytest
import requests

from tests.agents import free_port, wait_until

VERSION = "1.21.4"
BINARY = Path(os.environ.get("TOOLS_CACHE") or Path.home() / ".cache" / "bzzz") / f"vault-{VERSION}" / "vault"
ROOT = "root-token-for-the-tests"
AGENT_TOKEN = "bzzz-agent-1-vault-token"  # a Vault token with the read-only policy below
SECRET_PATH = "bzzz/agent-1"
READ_POLICY = 'path "secret/data/bzzz/*" { capabilities = ["read"] }'

needs_vault = pytest.mark.skipif(
    not BINARY.is_file(), reason=f"vault {VERSION} is not built: `make test-vault` builds it and runs these tests"
)


@dataclass
class VaultDev:
    home: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "vault.log").open("ab")
        self.process = subprocess.Popen(
            [BINARY, "server", "-dev", f"-dev-root-token-id={ROOT}", f"-dev-listen-address=127.0.0.1:{self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], "HOME": str(self.home)},  # dev mode writes ~/.vault-token
        )
        wait_until(self._answers, 60, "vault -dev to answer")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "vault -dev exited"
        try:
            return requests.get(f"{self.address}/v1/sys/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=ROOT, timeout=10)

    def seed(self, github_token: str) -> None:
        """The agent's GitHub token at secret/bzzz/agent-1, readable with AGENT_TOKEN only."""
        root = self.root()
        root.sys.create_or_update_policy(name="bzzz-read", policy=READ_POLICY)
        root.auth.token.create(id=AGENT_TOKEN, policies=["bzzz-read"], ttl="1h", no_default_policy=False)
        self.put(github_token)

    def put(self, github_token: str, **beside: str) -> None:
        secret = {"token": github_token, **beside}
        self.root().secrets.kv.v2.create_or_update_secret(path=SECRET_PATH, secret=secret)


def vault_section(token_file: Path, address: str, **vault: object) -> str:
    """`[github_token]` for the agent: token_file auth, the secret the seed writes."""
    extra = "".join(f"{key} = {value}\n" for key, value in vault.items())
    return (
        '[github_token]\nsource = "vault"\n[github_token.vault]\n'
        f'address = "{address}"\npath = "{SECRET_PATH}"\nauth = "token_file"\ntoken_file = "{token_file}"\n{extra}'
    )
