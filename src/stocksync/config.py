"""One settings object, from STOCKSYNC_* environment variables (and a .env file if present).

Errors name the variable and the fix."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stocksync.domain.topology import Topology, TopologyError, parse_topology
from stocksync.topics import TopicNames

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOPOLOGY = REPO_ROOT / "deploy" / "config" / "topology.yaml"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the key and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKSYNC_", env_file=".env", extra="ignore")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap host:port list")
    app_id: str = Field("stocksync", description="Consumer group and changelog topic prefix")
    topic_prefix: str = Field("stocksync.", description="Prefix of every topic stocksync owns")
    partitions: int = Field(8, ge=1, le=1024, description="Partitions of event topics")
    replication_factor: int = Field(1, ge=1, description="Replication of created topics")
    topology_file: Path = Field(DEFAULT_TOPOLOGY, description="Locations and channels YAML")
    data_dir: Path = Field(Path(".state"), description="RocksDB table files of this worker")
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on")
    http_port: int = Field(8080, ge=1, le=65535, description="Port of the HTTP API")
    rocksdb_cache_mb: int = Field(64, ge=8, description="RocksDB block cache per partition")
    batch_max: int = Field(1000, ge=1, le=100_000, description="Most events folded per batch")
    batch_within_s: float = Field(
        0.002, gt=0, le=5, description="Longest wait to fill a batch (adds to latency)"
    )
    reservation_timeout_s: float = Field(
        5.0, gt=0, le=120, description="How long POST /v1/reservations waits for the decision"
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_json: bool = Field(False, description="Log JSON lines instead of console text")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("topic names cannot contain spaces")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error"}:
            raise ValueError("use one of debug, info, warning, error")
        return value

    @cached_property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix, self.app_id)

    def load_topology(self) -> Topology:
        return load_topology(self.topology_file)


def load_topology(path: Path) -> Topology:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"STOCKSYNC_TOPOLOGY_FILE: {path} does not exist; point it at a topology YAML "
            f"(see deploy/config/topology.yaml)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"STOCKSYNC_TOPOLOGY_FILE: {path} is not valid YAML: {exc}") from None
    try:
        return parse_topology(data, origin=str(path))
    except TopologyError as exc:
        raise ConfigError(str(exc)) from None


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = "STOCKSYNC_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems)) from None
