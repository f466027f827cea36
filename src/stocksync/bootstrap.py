"""The composition root: where settings become the objects an entry point runs with.

Every entry point (the worker, the CLI's commands, a connector, the simulator) loads its
settings (stocksync.config, which only reads them), then asks here for what needs files or
Kafka to build: the topology in force, the API keys. Kafka clients come from one factory
(stocksync.adapters.kafka.clients); the worker's stores are faust's tables (stocksync.streams).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from stocksync.api.auth import ApiKeys, load_keys
from stocksync.config import Settings, read_yaml
from stocksync.domain.topology import Topology, TopologyError, parse_topology
from stocksync.errors import ConfigError
from stocksync.topology_log import read_latest_topology

log = structlog.get_logger("stocksync.bootstrap")


def load_topology(path: Path) -> Topology:
    """A topology file, or ConfigError naming the setting and the fix."""
    data = read_yaml(
        path,
        "STOCKSYNC_TOPOLOGY_FILE",
        "point it at a topology YAML (see deploy/config/topology.yaml)",
    )
    try:
        return parse_topology(data, origin=str(path))
    except TopologyError as exc:
        raise ConfigError(str(exc)) from None


def file_topology(settings: Settings) -> Topology:
    return load_topology(settings.topology_file)


def topology_in_force(from_file: Topology, published: Topology | None) -> Topology:
    """The newest version published to the topology topic, unless the file's version is newer
    (a first start, or a file bumped before it was published)."""
    if published is not None and published.version > from_file.version:
        return published
    return from_file


def current_topology(settings: Settings) -> Topology:
    from_file = file_topology(settings)
    topology = topology_in_force(from_file, read_latest_topology(settings))
    if topology is not from_file:
        log.info("topology_from_topic", version=topology.version, file_version=from_file.version)
    return topology


def api_keys(settings: Settings, topology: Topology) -> ApiKeys | None:
    """The HTTP API's keys (None: the API needs no key), read once. A key scoped to a channel
    the topology does not know is a configuration error, named with its entry."""
    if settings.api_keys_file is None:
        return None
    keys = load_keys(  # KeysFileError (a ConfigError) names the key file's entry and the fix
        settings.api_keys_file,
        channels=topology.channels,
        default_rate_per_s=settings.api_rate_per_s,
        default_burst=settings.api_burst,
    )
    log.info("api_keys_loaded", keys=len(keys), file=str(settings.api_keys_file))
    return keys


@dataclass(frozen=True, slots=True)
class WorkerWiring:
    """What a worker process starts from."""

    settings: Settings
    topology: Topology
    keys: ApiKeys | None


def worker_wiring(settings: Settings) -> WorkerWiring:
    """Raises ConfigError (bad topology or keys file) before anything joins the group."""
    topology = current_topology(settings)
    return WorkerWiring(settings, topology, api_keys(settings, topology))
