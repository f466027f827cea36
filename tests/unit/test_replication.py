"""Replication of the topics stocksync creates: STOCKSYNC_REPLICATION_FACTOR and
STOCKSYNC_MIN_INSYNC_REPLICAS, and the refusal of a cluster too small for them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from stocksync import provision
from stocksync.config import ConfigError, load_settings
from stocksync.provision import (
    ReplicationRefused,
    check_replication,
    ensure_topics,
    min_insync_replicas,
    topic_specs,
)


def test_unreplicated_topics_leave_min_insync_replicas_to_the_broker() -> None:
    settings = load_settings()
    assert settings.replication_factor == 1
    assert min_insync_replicas(settings) is None
    assert all("min.insync.replicas" not in spec.config for spec in topic_specs(settings))


@pytest.mark.parametrize(("factor", "expected"), [(2, "2"), (3, "2"), (5, "2")])
def test_replicated_topics_keep_writing_with_one_broker_down(factor: int, expected: str) -> None:
    specs = topic_specs(load_settings(replication_factor=factor))
    # every topic, changelogs, the topology and the dead letter included
    assert {spec.config["min.insync.replicas"] for spec in specs} == {expected}


def test_min_insync_replicas_setting_wins_over_the_default() -> None:
    settings = load_settings(replication_factor=3, min_insync_replicas=3)
    assert {spec.config["min.insync.replicas"] for spec in topic_specs(settings)} == {"3"}
    settings = load_settings(replication_factor=1, min_insync_replicas=1)
    assert {spec.config["min.insync.replicas"] for spec in topic_specs(settings)} == {"1"}


def test_a_cluster_with_fewer_brokers_than_the_factor_is_refused_by_name() -> None:
    settings = load_settings(replication_factor=4, bootstrap_servers="k1:9092,k2:9092")
    check_replication(settings, brokers=4)
    check_replication(settings, brokers=5)
    with pytest.raises(ReplicationRefused) as refused:
        check_replication(settings, brokers=3)
    message = str(refused.value)
    assert "STOCKSYNC_REPLICATION_FACTOR=4" in message
    assert "has 3 brokers up" in message
    assert "k1:9092,k2:9092" in message
    assert "at most 3" in message
    with pytest.raises(ReplicationRefused, match="has 1 broker up"):
        check_replication(load_settings(replication_factor=2), brokers=1)


def test_more_in_sync_replicas_than_copies_is_refused_by_name() -> None:
    settings = load_settings(replication_factor=2, min_insync_replicas=3)
    with pytest.raises(ReplicationRefused) as refused:
        check_replication(settings)
    message = str(refused.value)
    assert "STOCKSYNC_MIN_INSYNC_REPLICAS=3" in message
    assert "STOCKSYNC_REPLICATION_FACTOR=2" in message
    assert "at most 2" in message


def test_a_min_insync_replicas_below_one_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOCKSYNC_MIN_INSYNC_REPLICAS", "0")
    with pytest.raises(ConfigError, match="STOCKSYNC_MIN_INSYNC_REPLICAS"):
        load_settings()


class FakeAdmin:
    """An AdminClient whose metadata lists `brokers` brokers and the given topics (name ->
    replicas per partition); creating a topic fails the test."""

    def __init__(self, brokers: int, topics: dict[str, list[int]] | None = None) -> None:
        self.metadata = SimpleNamespace(
            brokers={i: SimpleNamespace(id=i) for i in range(1, brokers + 1)},
            topics={
                name: SimpleNamespace(
                    topic=name,
                    error=None,
                    partitions={
                        p: SimpleNamespace(id=p, replicas=list(range(copies)))
                        for p, copies in enumerate(replicas)
                    },
                )
                for name, replicas in (topics or {}).items()
            },
        )

    def list_topics(self, timeout: float) -> Any:
        return self.metadata

    def create_topics(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("no topic may be created")


def test_provisioning_refuses_before_creating_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(replication_factor=4)
    monkeypatch.setattr(provision, "admin_client", lambda *_: FakeAdmin(brokers=3))
    with pytest.raises(ReplicationRefused, match="has 3 brokers up"):
        ensure_topics(settings)


def test_inconsistent_settings_are_refused_without_asking_kafka(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_kafka(*_: object) -> Any:
        raise AssertionError("Kafka must not be asked")

    monkeypatch.setattr(provision, "admin_client", no_kafka)
    with pytest.raises(ReplicationRefused, match="STOCKSYNC_MIN_INSYNC_REPLICAS=4"):
        ensure_topics(load_settings(replication_factor=3, min_insync_replicas=4))


def test_existing_topics_with_fewer_copies_are_kept_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Existing topics are not recreated, so a smaller cluster than the factor does not stop a
    worker whose topics all exist; those with fewer copies than asked are logged."""
    settings = load_settings(replication_factor=3, partitions=2)
    topics = {spec.name: [3] * spec.partitions for spec in topic_specs(settings)}
    topics[settings.topics.stock_events] = [3, 1]
    monkeypatch.setattr(provision, "admin_client", lambda *_: FakeAdmin(2, topics))
    with capture_logs() as logs:
        assert ensure_topics(settings) == []
    warnings = [entry for entry in logs if entry["event"] == "topics_under_replicated"]
    assert len(warnings) == 1
    assert warnings[0]["topics"] == {settings.topics.stock_events: 1}
    assert warnings[0]["wanted"] == 3
