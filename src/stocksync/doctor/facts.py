"""What `stocksync doctor` knows about a deployment: plain data, gathered once (gather.py) and
judged by pure checks (checks.py). A fact that could not be gathered carries the error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stocksync.adapters.kafka.api_versions import ApiVersions
from stocksync.provision import TopicSpec


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """One broker of the cluster, and what it said to ApiVersions."""

    node_id: int
    address: str  # host:port
    versions: ApiVersions | None = None
    error: str | None = None  # why there are no versions


@dataclass(frozen=True, slots=True)
class BrokerFacts:
    bootstrap: str
    error: str | None = None  # None: the cluster answered
    cluster_id: str | None = None
    nodes: tuple[NodeFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicFacts:
    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)  # as the broker describes it
    config_error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """What a worker's /readyz and /metrics said."""

    url: str
    error: str | None = None  # no answer at all
    status: int | None = None  # /readyz status
    health: Mapping[str, Any] = field(default_factory=dict)  # /readyz body
    lag: float | None = None  # stocksync_consumer_lag_total
    metrics_error: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One of the newest records of a topic."""

    topic: str
    partition: int
    offset: int
    schema_id: int | None  # None: not the Confluent wire format (0x00, 4-byte id, Avro)
    event_time: int | None = None  # an event's occurred_at, epoch ms (input topics only)
    source: str | None = None  # an event's source


@dataclass(frozen=True, slots=True)
class Expectations:
    """What this deployment should look like: its settings and the project's contracts."""

    topics: tuple[TopicSpec, ...]  # every topic, as provisioned
    co_partitioned: tuple[str, ...]  # input topics and table changelogs: one partition count
    subjects: Mapping[str, str]  # Avro topic -> the schema subject its records must have
    schemas: Mapping[int, tuple[str, int]]  # schema id -> (subject, version), registry.json
    event_topics: tuple[str, ...]  # where event times are read for the clock check
    max_lag: int = 1000
    max_skew_ms: int = 30_000
    min_release: tuple[int, int] = (3, 9)
    tested_release: str = "4.3.1"


@dataclass(frozen=True, slots=True)
class Facts:
    now_ms: int  # this machine's clock when the samples were read
    broker: BrokerFacts
    topics: Mapping[str, TopicFacts] | None  # None: Kafka could not be asked
    workers: tuple[WorkerFacts, ...] = ()
    samples: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)  # topic -> newest
    sample_errors: Mapping[str, str] = field(default_factory=dict)  # topic -> why not read
