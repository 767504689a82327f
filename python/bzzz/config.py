"""Agent configuration: one TOML file, overridable by `BZZZ_*` environment variables.

Precedence, highest first (set in one place, `AgentConfig.settings_customise_sources`):
init arguments > environment (`BZZZ_DATA_DIR`, `BZZZ_SUPERVISOR__MAX_RESTARTS`, ...) >
the TOML file (`--config`, else `$BZZZ_CONFIG`) > the defaults below.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bzzz.paths import DataDir, default_data_dir
from bzzz.secrets.settings import TokenSourceSettings

# module -> "package.module:Class". Imported on demand: reading a config must not load libp2p.
BUILT_IN_SETTINGS: dict[str, str] = {
    "bzzz.workers.log": "bzzz.log.service:LogWorkerSettings",
    "bzzz.workers.mesh": "bzzz.mesh.settings:MeshSettings",
    "bzzz.workers.hmmm": "bzzz.hmmm.settings:HmmmWorkerSettings",
    "bzzz.workers.executor": "bzzz.executor.settings:ExecutorWorkerSettings",
    "bzzz.workers.github": "bzzz.github.settings:GithubWorkerSettings",
    "bzzz.workers.monitor": "bzzz.monitor.settings:MonitorSettings",
}


def settings_model(module: str) -> type[BaseModel] | None:
    """The settings model of built-in worker `module`, or None for any other module."""
    where = BUILT_IN_SETTINGS.get(module)
    if where is None:
        return None
    module_name, _, attribute = where.partition(":")
    model: Any = getattr(importlib.import_module(module_name), attribute)
    return model  # type: ignore[no-any-return]


class Restart(str, Enum):
    """When a worker that exited is started again (OTP's restart types)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal exit (non-zero status, killed, hung)
    TEMPORARY = "temporary"  # never


class WorkerConfig(BaseModel):
    """One worker process. `module` is run as `python -m module`.

    A built-in worker (`BUILT_IN_SETTINGS`) takes its typed settings from
    `[workers.NAME.settings]`: checked here, when the config is read, and filled with their
    defaults, so `bzzz config show` shows every one and a mistake stops the agent before it
    starts. A module of your own gets `settings` unchecked (`BZZZ_WORKER_SETTINGS`) and `args`."""

    model_config = ConfigDict(extra="forbid")

    module: str
    args: list[str] = Field(default_factory=list, description="Command-line arguments (your own modules only).")
    settings: dict[str, Any] = Field(default_factory=dict, description="The worker's own settings.")
    restart: Restart = Restart.PERMANENT
    heartbeat_timeout_s: float | None = Field(
        default=10.0, gt=0, description="Kill and restart a worker silent this long; None: no heartbeat expected."
    )
    shutdown_timeout_s: float = Field(default=5.0, gt=0, description="SIGTERM, then SIGKILL after this long.")
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _built_in_settings(self) -> WorkerConfig:
        model = settings_model(self.module)
        if model is None:
            return self
        if self.args:
            raise ValueError(f"{self.module} takes no args: give its settings in [workers.<name>.settings]")
        try:
            checked = model.model_validate(self.settings)
        except ValidationError as err:
            raise ValueError(
                "; ".join(
                    ".".join(("settings", *map(str, error["loc"])))  # a check of the whole model has no loc
                    + f": {error['ctx']['error'] if error['type'] == 'value_error' else error['msg']}"
                    + (
                        ""
                        if error["type"] in ("missing", "extra_forbidden") or isinstance(error["input"], dict)
                        else f" (got {error['input']!r})"
                    )
                    for error in err.errors(include_url=False)
                )
            ) from None
        self.settings = checked.model_dump(mode="json")
        return self


class SupervisorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_restarts: int = Field(default=5, ge=0, description="R: restarts allowed within max_seconds ...")
    max_seconds: float = Field(default=30.0, gt=0, description="... P: past R restarts in P seconds the agent stops.")
    backoff_initial_s: float = Field(default=0.1, ge=0, description="Delay before the second quick restart.")
    backoff_max_s: float = Field(default=10.0, ge=0)
    stable_after_s: float = Field(default=5.0, gt=0, description="Up this long, a worker's backoff starts over.")
    heartbeat_interval_s: float = Field(default=1.0, gt=0, description="How often workers send a heartbeat.")


def parse_host_port(value: str) -> tuple[str, int]:
    """Parse "HOST:PORT" (an IPv6 host in brackets: "[::1]:9464") into (host, port); ValueError saying why."""
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not host or any(c.isspace() or c in "[]/" for c in host):
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
    if ":" in host and not bracketed:
        raise ValueError("an IPv6 host goes in brackets: [::1]:9464")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("the port must be a number from 0 to 65535")
    return host, int(port)


class MetricsConfig(BaseModel):
    """`[metrics]`: the agent's one Prometheus endpoint, served by the supervisor for all its workers."""

    model_config = ConfigDict(extra="forbid")

    listen: str | None = Field(
        default=None,
        description='Serve /metrics on "HOST:PORT" (port 0: any free port; the bound address goes to '
        "<run_dir>/metrics.addr). Unset: no listener.",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str | None) -> str | None:
        if listen is not None:
            parse_host_port(listen)
        return listen

    @property
    def address(self) -> tuple[str, int] | None:
        return parse_host_port(self.listen) if self.listen is not None else None


def default_workers() -> dict[str, WorkerConfig]:
    """What an agent runs unless its config names its workers: its signed log, the mesh
    (listening on port 4001 of every address, finding peers by mDNS and the DHT), and hmmm
    (following and journalling its peers' discussions; it reviews only with `ollama_endpoints`)."""
    return {
        "log": WorkerConfig(module="bzzz.workers.log"),
        "mesh": WorkerConfig(module="bzzz.workers.mesh"),
        "hmmm": WorkerConfig(module="bzzz.workers.hmmm"),
    }


class AgentConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BZZZ_", env_nested_delimiter="__", extra="forbid")

    node_id: str = Field(default_factory=lambda: os.uname().nodename)
    data_dir: Path = Field(default_factory=default_data_dir)
    run_dir: Path | None = Field(default=None, description="Sockets and pid file; default: <data_dir>/run.")
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    workers: dict[str, WorkerConfig] = Field(default_factory=default_workers)
    github_token: TokenSourceSettings = Field(
        default_factory=TokenSourceSettings,
        description="Where the github and executor workers get the GitHub token (bzzz.secrets).",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="The agent's /metrics endpoint.")

    @field_validator("data_dir", "run_dir")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Workers, git and the sandbox each run with their own working directory: a relative
        # path would point somewhere else in each. Relative means relative to where the agent
        # was started.
        if path is None:
            return None
        try:
            return path.expanduser().absolute()
        except RuntimeError as err:  # "~nobody/x": no such user's home
            raise ValueError(str(err)) from None

    @field_validator("workers")
    @classmethod
    def _names_are_plain(cls, workers: dict[str, WorkerConfig]) -> dict[str, WorkerConfig]:
        for name in workers:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"worker name {name!r} must be letters, digits, '-' or '_'")
        return workers

    @property
    def runtime_dir(self) -> Path:
        return self.run_dir if self.run_dir is not None else DataDir(self.data_dir).run

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file (or variable) and says why, in one line."""


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def read_file(path: Path) -> dict[str, Any]:
    """The TOML table in `path`, or a ConfigError saying where and why it cannot be read."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it: {err.strerror or err}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text (byte {raw[err.start]:#04x})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        position = _TOML_POSITION.search(message)
        if position is None:
            raise ConfigError(f"{path}: not valid TOML: {message}") from None
        row, column = position.groups()
        raise ConfigError(f"{path} line {row}, column {column}: {message[: position.start()]}") from None


def _describe(err: ValidationError, path: Path | None) -> str:
    problems = []
    for error in err.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        env = "BZZZ_" + "__".join(str(part) for part in error["loc"]).upper()
        where = f" (env {env})" if env in os.environ else ""
        # An unknown key's value is not echoed: it may be a secret written where none belongs.
        quiet = error["type"] in ("missing", "extra_forbidden") or isinstance(error["input"], dict)
        value = "" if quiet else f" (got {error['input']!r})"
        # A check of our own (a worker's settings) says it all; pydantic would prefix "Value error, ".
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        problems.append(f"{key}{where}: {message}{value}")
    return f"{path if path is not None else 'the environment'}: invalid configuration: " + "; ".join(problems)


def load(path: Path | None = None, **overrides: Any) -> AgentConfig:
    """Read the config from `path`, else `$BZZZ_CONFIG`, else defaults and environment.

    Raises ConfigError, with the file, the line or the setting, for anything a user can get wrong."""
    if path is None and os.environ.get("BZZZ_CONFIG"):
        path = Path(os.environ["BZZZ_CONFIG"])
    try:
        if path is None:
            return AgentConfig(**overrides)
        read_file(path)  # a syntax error is reported with its line, not as pydantic's "error parsing"
        from_file = type(
            "AgentConfig", (AgentConfig,), {"model_config": {**AgentConfig.model_config, "toml_file": path}}
        )
        config: AgentConfig = from_file(**overrides)
        return config
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from None
    except SettingsError as err:  # e.g. BZZZ_WORKERS that is not JSON
        raise ConfigError(f"invalid configuration from the environment: {err}") from None
