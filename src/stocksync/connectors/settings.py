"""A connector's configuration: STOCKSYNC_CONNECTOR_* environment variables (or a .env file),
overridden by `stocksync connector run` options. Kafka settings (bootstrap servers, topic
prefix, topology) are the shared STOCKSYNC_* ones (stocksync.config.Settings)."""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stocksync.config import ConfigError
from stocksync.connectors.drift import DEFAULT_FLOOR_UNITS, DEFAULT_PERCENT, DriftRule
from stocksync.domain.topology import Topology

ENV_PREFIX = "STOCKSYNC_CONNECTOR_"
DEFAULT_LOW_STOCK = 5

# what to tell the user for a missing or wrong key
HINTS = {
    "channel": "a channel id from the topology, e.g. web",
    "endpoint_url": "the channel API's base URL, e.g. http://127.0.0.1:8181",
    "rate_per_s": "requests per second the channel allows, > 0 (e.g. 2.5 for ~9000/hour)",
    "burst": "requests the channel tolerates at once, >= 1",
}

# the `stocksync connector run` option of each key that has one
OPTIONS = {
    "channel": "--channel",
    "endpoint_url": "--endpoint",
    "rate_per_s": "--rate",
    "burst": "--burst",
    "concurrency": "--concurrency",
    "resync_interval_s": "--resync-interval",
    "drift_threshold_percent": "--drift-percent",
    "drift_floor_units": "--drift-floor",
    "http_port": "--http-port",
}


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    channel: str = Field(description="Channel id (from the topology) this connector serves")
    endpoint_url: str = Field(description="Base URL of the channel's API")
    rate_per_s: float = Field(5.0, gt=0, description="Request budget: requests per second")
    burst: int = Field(5, ge=1, le=10_000, description="Request budget: most requests at once")
    concurrency: int = Field(4, ge=1, le=256, description="Most requests in flight at once")
    resync_interval_s: float = Field(
        0.0, ge=0, description="Re-push every SKU's value this often, inside the budget; 0 = off"
    )
    drift_threshold_percent: float = Field(
        DEFAULT_PERCENT, ge=0, le=100, description="Drift: allowed difference, % of published"
    )
    drift_floor_units: int = Field(
        DEFAULT_FLOOR_UNITS, ge=0, description="Drift: allowed difference at least this many units"
    )
    drift_grace_s: float = Field(
        2.0, ge=0, description="Reports within this time of a push of the SKU are not checked"
    )
    low_stock_units: int | None = Field(
        None,
        ge=0,
        description="Changes to or below this go first; default: the channel's "
        f"low_stock policy, else {DEFAULT_LOW_STOCK}",
    )
    max_wait_s: float = Field(30.0, gt=0, description="A change waiting this long goes first")
    retry_base_s: float = Field(0.25, gt=0, description="First retry delay (doubles each time)")
    retry_max_s: float = Field(30.0, gt=0, description="Longest retry delay")
    request_timeout_s: float = Field(5.0, gt=0, description="HTTP timeout of one push")
    commit_interval_s: float = Field(0.5, gt=0, le=60, description="Ledger flush + offset commit")
    http_host: str = Field("127.0.0.1", description="Where the report/status API listens")
    http_port: int = Field(8090, ge=0, le=65535, description="Report/status API port; 0 = off")
    group_id: str | None = Field(
        None, description="Consumer group; default <STOCKSYNC_APP_ID>-connector-<channel>"
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not value or ":" in value or any(c.isspace() for c in value):
            raise ValueError("a channel id is non-empty, without ':' or spaces")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _retry(self) -> ConnectorSettings:
        if self.retry_max_s < self.retry_base_s:
            raise ValueError(
                f"retry_max_s ({self.retry_max_s}) must be >= retry_base_s ({self.retry_base_s})"
            )
        return self

    @property
    def drift_rule(self) -> DriftRule:
        return DriftRule(self.drift_threshold_percent, self.drift_floor_units)

    def consumer_group(self, app_id: str) -> str:
        return self.group_id or f"{app_id}-connector-{self.channel}"

    def low_stock(self, topology: Topology) -> int:
        if self.low_stock_units is not None:
            return self.low_stock_units
        channel = topology.channels.get(self.channel)
        if channel is not None and channel.policy.low_stock:
            return channel.policy.low_stock
        return DEFAULT_LOW_STOCK

    def check_channel(self, topology: Topology) -> None:
        if self.channel not in topology.channels:
            known = ", ".join(sorted(topology.channels))
            raise ConfigError(
                f"{ENV_PREFIX}CHANNEL (--channel): {self.channel!r} is not a channel of topology "
                f"version {topology.version} (channels: {known}); use one of them"
            )


def load_connector_settings(**overrides: object) -> ConnectorSettings:
    """Settings from the environment, with non-None overrides (CLI options) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return ConnectorSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = "_".join(str(p) for p in err["loc"])
            if not field:
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            option = OPTIONS.get(field)
            key = f"{ENV_PREFIX}{field.upper()}" + (f" ({option})" if option else "")
            message = err["msg"].removeprefix("Value error, ")
            hint = HINTS.get(field)
            got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
            problems.append(f"{key}: {message}{got}" + (f"; set it to {hint}" if hint else ""))
        raise ConfigError("invalid connector settings:\n  " + "\n  ".join(problems)) from None
