"""One settings object, from STOCKSYNC_* environment variables, a .env file and an optional
YAML settings file (STOCKSYNC_CONFIG_FILE), in that order of precedence: the environment wins.

Errors name the variable and the fix."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from stocksync.errors import ConfigError as ConfigError  # where callers have always found it
from stocksync.topics import TopicNames

if TYPE_CHECKING:
    import ssl


REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOPOLOGY = REPO_ROOT / "deploy" / "config" / "topology.yaml"
ENV_PREFIX = "STOCKSYNC_"
CONFIG_FILE_VAR = "STOCKSYNC_CONFIG_FILE"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class ConfigFileSource(PydanticBaseSettingsSource):
    """Settings from a YAML (or JSON) file: keys are the field names (`bootstrap_servers`) or
    the variable names (`STOCKSYNC_BOOTSTRAP_SERVERS`). Below the environment in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | Path | None) -> None:
        super().__init__(settings_cls)
        self.path = Path(path) if path else None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read at once in __call__

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        return read_config_file(self.path, set(self.settings_cls.model_fields))


def read_yaml(path: Path, setting: str, missing_fix: str) -> Any:
    """A YAML file a setting names, or ConfigError naming the setting and the fix."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{setting}: {path} does not exist; {missing_fix}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{setting}: {path} is not valid YAML: {exc}") from None


def read_config_file(path: Path, known: set[str]) -> dict[str, Any]:
    data = read_yaml(path, CONFIG_FILE_VAR, "point it at a YAML settings file or unset it")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{CONFIG_FILE_VAR}: {path} must be a mapping of setting: value "
            f"(e.g. `bootstrap_servers: kafka:9092`)"
        )
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).lower()
        key = key.removeprefix(ENV_PREFIX.lower())
        if key not in known or key == "config_file":
            raise ConfigError(
                f"{CONFIG_FILE_VAR}: {path} has an unknown setting {raw_key!r}; "
                f"known settings: {', '.join(sorted(known - {'config_file'}))}"
            )
        values[key] = value
    return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    config_file: Path | None = Field(
        None, description="YAML file of settings (field names as keys); the environment wins"
    )
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap host:port list")
    app_id: str = Field("stocksync", description="Consumer group and changelog topic prefix")
    topic_prefix: str = Field("stocksync.", description="Prefix of every topic stocksync owns")
    partitions: int = Field(8, ge=1, le=1024, description="Partitions of event topics")
    replication_factor: int = Field(1, ge=1, description="Replication of created topics")
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of created topics (acks=all writes fail with fewer "
        "replicas in sync); default min(2, replication factor) when it is above 1",
    )
    topology_file: Path = Field(DEFAULT_TOPOLOGY, description="Locations and channels YAML")
    data_dir: Path = Field(Path(".state"), description="RocksDB table files of this worker")
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on")
    http_port: int = Field(8080, ge=1, le=65535, description="Port of the HTTP API")
    advertised_url: str | None = Field(
        None,
        description="URL other workers use to reach this one's HTTP API (requests for SKUs "
        "it owns are forwarded there); default http://<host or hostname>:<port>",
    )
    http_max_body_bytes: int = Field(
        256 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest HTTP request body (413)"
    )
    import_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        le=64 * 1024**3,
        description="Largest stock snapshot POST /v1/imports takes (413); it is spooled to "
        "<data dir>/imports, not held in memory",
    )
    source_topics: str = Field(
        "",
        description="Comma-separated sources that write to event topics of their own "
        "(<prefix>src.<source>.stock-events/.sale-events), for per-channel ACLs",
    )
    bulk_restore: bool = Field(
        True,
        description="Rebuild missing RocksDB partitions from their changelogs with librdkafka "
        "before joining the group (faster cold starts; every partition, not only the owned)",
    )
    rocksdb_cache_mb: int = Field(64, ge=8, description="RocksDB block cache per partition")
    batch_max: int = Field(
        5000, ge=1, le=100_000, description="Most events fetched (and then folded) at once"
    )
    stall_after_s: float = Field(
        30.0,
        gt=0,
        description="Input waiting and nothing folded for this long: the worker says not ready",
    )
    stall_fail_after_s: float = Field(
        60.0,
        gt=0,
        description="Stalled this much longer: /livez fails, so the orchestrator restarts it",
    )
    history_per_sku: int = Field(
        50, ge=1, le=10_000, description="Audit records kept per SKU (GET .../history)"
    )
    history_max_age_days: int = Field(
        30, ge=1, description="Audit records older than this (event time) are not shown"
    )
    batch_within_s: float = Field(
        0.002, gt=0, le=5, description="Longest wait to fill a batch (adds to latency)"
    )
    reservation_timeout_s: float = Field(
        5.0, gt=0, le=120, description="How long POST /v1/reservations waits for the decision"
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_json: bool = Field(False, description="Log JSON lines instead of console text")
    faust_verbose: bool = Field(
        False,
        description="Also log faust's, mode's and aiokafka's own info lines (service starts, "
        "recovery tables) and faust's start spinner; off: only their warnings and errors",
    )

    # -- HTTP API keys (off when no file is given) -------------------------------------------
    api_keys_file: Path | None = Field(
        None, description="YAML/JSON file of API keys; unset = the HTTP API needs no key"
    )
    api_rate_per_s: float = Field(
        100.0,
        ge=0,
        description="Requests per second per key when its entry sets none; 0 = no limit",
    )
    api_burst: int = Field(200, ge=1, description="Requests a key may send at once")
    dashboard_interval_s: float = Field(
        0.5, gt=0, le=60, description="How often /v1/stream pushes a snapshot"
    )

    # -- Kafka security -----------------------------------------------------------------------
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN"
    )
    sasl_username: str | None = Field(None, description="SASL user (the principal's name)")
    sasl_password: SecretStr | None = Field(None, description="SASL password")
    ssl_ca_file: Path | None = Field(None, description="PEM file of the CA that signed the broker")
    ssl_cert_file: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_key_file: Path | None = Field(None, description="PEM private key of the client cert")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the key file")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        path = init_kwargs.get("config_file") or os.environ.get(CONFIG_FILE_VAR)
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            ConfigFileSource(settings_cls, path),
            file_secret_settings,
        )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("topic names cannot contain spaces")
        return value

    @field_validator("source_topics")
    @classmethod
    def _source_topics(cls, value: str) -> str:
        for source in (s.strip() for s in value.split(",")):
            if source and not all(c.isalnum() or c in "-_." for c in source):
                raise ValueError(
                    f"source {source!r} cannot be part of a topic name: use letters, digits, "
                    "'-', '_' and '.', separated by commas"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error"}:
            raise ValueError("use one of debug, info, warning, error")
        return value

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _protocol_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _mechanism_upper(cls, value: Any) -> Any:
        return value.upper().replace("_", "-") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _security_consistent(self) -> Settings:
        problems = security_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def http_url(self) -> str:
        """Where other workers reach this worker's HTTP API."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):
            import socket

            host = socket.gethostname()
        return f"http://{host}:{self.http_port}"

    @cached_property
    def topics(self) -> TopicNames:
        sources = tuple(s.strip() for s in self.source_topics.split(",") if s.strip())
        return TopicNames(self.topic_prefix, self.app_id, sources)

    # -- Kafka clients ---------------------------------------------------------------------

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def librdkafka_config(self) -> dict[str, Any]:
        """`bootstrap.servers` and the security properties of a confluent-kafka client; merge
        it into every Producer, Consumer and AdminClient config."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.uses_sasl:
            assert self.sasl_username is not None and self.sasl_password is not None
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.uses_tls:
            if self.ssl_ca_file is not None:
                config["ssl.ca.location"] = str(self.ssl_ca_file)
            if self.ssl_cert_file is not None:
                config["ssl.certificate.location"] = str(self.ssl_cert_file)
            if self.ssl_key_file is not None:
                config["ssl.key.location"] = str(self.ssl_key_file)
            if self.ssl_key_password is not None:
                config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of faust's (aiokafka's) connections, None without TLS."""
        if not self.uses_tls:
            return None
        import ssl

        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None,
        )
        if self.ssl_cert_file is not None:
            context.load_cert_chain(
                str(self.ssl_cert_file),
                str(self.ssl_key_file) if self.ssl_key_file else None,
                self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
            )
        return context


def security_problems(settings: Settings) -> list[str]:
    """What is inconsistent in the Kafka security settings, each naming the key and the fix."""
    problems: list[str] = []
    protocol = settings.security_protocol
    if settings.uses_sasl:
        for field in ("sasl_username", "sasl_password"):
            value = getattr(settings, field)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                problems.append(
                    f"{env_name(field)}: required when STOCKSYNC_SECURITY_PROTOCOL={protocol}; "
                    f"set it to the SASL/{settings.sasl_mechanism} credentials of this "
                    f"service's Kafka principal"
                )
    else:
        problems.extend(
            f"{env_name(field)}: set, but STOCKSYNC_SECURITY_PROTOCOL={protocol} does not use "
            f"SASL; set STOCKSYNC_SECURITY_PROTOCOL=SASL_SSL or unset {env_name(field)}"
            for field in ("sasl_username", "sasl_password")
            if getattr(settings, field) is not None
        )
    tls_files = ("ssl_ca_file", "ssl_cert_file", "ssl_key_file")
    for field in tls_files:
        path = getattr(settings, field)
        if path is None:
            continue
        if not settings.uses_tls:
            problems.append(
                f"{env_name(field)}: set, but STOCKSYNC_SECURITY_PROTOCOL={protocol} does not "
                f"use TLS; set STOCKSYNC_SECURITY_PROTOCOL=SSL or SASL_SSL, or unset it"
            )
        elif not Path(path).is_file():
            problems.append(f"{env_name(field)}: {path} is not a file; give the path of a PEM file")
    if (settings.ssl_cert_file is None) != (settings.ssl_key_file is None):
        missing = "ssl_key_file" if settings.ssl_key_file is None else "ssl_cert_file"
        problems.append(
            f"{env_name(missing)}: mutual TLS needs both STOCKSYNC_SSL_CERT_FILE and "
            f"STOCKSYNC_SSL_KEY_FILE; set {env_name(missing)}"
        )
    return problems


def load_settings(**overrides: object) -> Settings:
    """The settings, or ConfigError listing every bad key with its fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    problems = []
    fields = Settings.model_fields
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a check across settings: its message names the keys
            problems.extend(message.split("\n"))
            continue
        field = str(err["loc"][0])
        info = fields.get(field)
        hint = f"; expected: {info.description}" if info and info.description else ""
        shown = "***" if field in ("sasl_password", "ssl_key_password") else err.get("input")
        problems.append(f"{env_name(field)}: {message} (got {shown!r}){hint}")
    return "invalid settings:\n  " + "\n  ".join(problems)
