"""The doctor's checks over plain facts: each failing row names the problem and its fix."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stocksync.adapters.kafka.api_versions import ApiVersions
from stocksync.doctor.checks import (
    Status,
    check_broker,
    check_broker_version,
    check_clock_skew,
    check_co_partitioning,
    check_schemas,
    check_topic,
    check_worker,
    check_worker_lag,
    healthy,
    run_checks,
)
from stocksync.doctor.facts import (
    BrokerFacts,
    Expectations,
    Facts,
    NodeFacts,
    Sample,
    TopicFacts,
    WorkerFacts,
)
from stocksync.provision import TopicSpec

BOOTSTRAP = "kafka:9092"
NOW = 1_800_000_000_000
COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
SPECS = (
    TopicSpec("s.stock-events", 4, FOREVER),
    TopicSpec("s.sale-events", 4, FOREVER),
    TopicSpec("s-atp-changelog", 4, COMPACTED),
    TopicSpec("s.topology", 1, COMPACTED),
)
EXPECT = Expectations(
    topics=SPECS,
    co_partitioned=("s.stock-events", "s.sale-events", "s-atp-changelog"),
    subjects={"s.stock-events": "stock-event", "s.sale-events": "sale-event"},
    schemas={1: ("stock-event", 1), 3: ("stock-event", 2), 2: ("sale-event", 1)},
    event_topics=("s.stock-events", "s.sale-events"),
)


def kafka(level: int = 30, finalized: int | None = None) -> ApiVersions:
    in_force = level if finalized is None else finalized
    return ApiVersions(
        0,
        {18: (0, 4)},
        {"metadata.version": (7, level)},
        {"metadata.version": (in_force, in_force)},
    )


BROKER = BrokerFacts(BOOTSTRAP, cluster_id="c1", nodes=(NodeFacts(1, "kafka:9092", kafka()),))
TOPICS = {spec.name: TopicFacts(spec.name, spec.partitions, dict(spec.config)) for spec in SPECS}
READY: dict[str, Any] = {
    "ready": True,
    "partitions": [0, 1],
    "recovered": True,
    "rebalancing": False,
    "stalled": False,
    "topology_version": 1,
    "applied": 300,
}
WORKER = WorkerFacts("http://w:8080", status=200, health=READY, lag=3)


def event(topic: str = "s.stock-events", at: int = NOW - 2_000, schema_id: int = 1) -> Sample:
    return Sample(topic, 0, 5, schema_id, event_time=at, source="pos-1")


def healthy_facts() -> Facts:
    samples = {
        "s.stock-events": (event(),),
        "s.sale-events": (event("s.sale-events", schema_id=2),),
    }
    return Facts(NOW, BROKER, TOPICS, (WORKER,), samples)


def test_a_healthy_deployment_passes_every_check() -> None:
    rows = run_checks(healthy_facts(), EXPECT)
    assert healthy(rows), [r for r in rows if r.status is not Status.OK]
    assert {r.check for r in rows} >= {
        "broker",
        "broker version",
        "topic s.stock-events",
        "co-partitioning",
        "worker http://w:8080",
        "worker http://w:8080 lag",
        "clock skew",
        "schemas s.stock-events",
    }
    assert all(row.fix == "" for row in rows)


def test_an_unreachable_broker_fails_with_the_settings_to_check() -> None:
    broker = BrokerFacts(BOOTSTRAP, error="Connection refused")
    row = check_broker(broker)
    assert row.status is Status.FAIL
    assert "Connection refused" in row.detail and "STOCKSYNC_BOOTSTRAP_SERVERS" in row.fix
    rows = run_checks(Facts(NOW, broker, None, (WORKER,)), EXPECT)
    assert not healthy(rows)
    assert [r.check for r in rows if r.status is Status.SKIP] == ["broker version", "topics"]


def test_the_broker_version_is_read_from_its_metadata_version() -> None:
    assert check_broker_version(BROKER, EXPECT).detail == "broker 1 (kafka:9092): Kafka 4.3"
    upgraded = BrokerFacts(BOOTSTRAP, nodes=(NodeFacts(1, "k:1", kafka(30, finalized=21)),))
    assert "(metadata.version of 3.9 in force)" in check_broker_version(upgraded, EXPECT).detail


def test_an_old_or_zookeeper_broker_fails_naming_the_release_to_run() -> None:
    old = BrokerFacts(BOOTSTRAP, nodes=(NodeFacts(1, "k:1", kafka(14)),))
    row = check_broker_version(old, EXPECT)
    assert row.status is Status.FAIL and "Kafka 3.6" in row.detail
    assert "Kafka 3.9 or newer in KRaft mode" in row.fix
    zookeeper = ApiVersions(0, {18: (0, 3)})
    row = check_broker_version(
        BrokerFacts(BOOTSTRAP, nodes=(NodeFacts(1, "k:1", zookeeper),)), EXPECT
    )
    assert row.status is Status.FAIL and "ZooKeeper" in row.detail


def test_a_missing_topic_fails_with_topics_create() -> None:
    row = check_topic(SPECS[0], None, BOOTSTRAP)
    assert (row.status, row.detail) == (Status.FAIL, "missing")
    assert "stocksync topics create" in row.fix


def test_a_topic_with_another_partition_count_fails_with_how_to_recreate_it() -> None:
    row = check_topic(SPECS[1], TopicFacts("s.sale-events", 3, dict(FOREVER)), BOOTSTRAP)
    assert row.status is Status.FAIL
    assert row.detail == "3 partitions, stocksync expects 4 (STOCKSYNC_PARTITIONS)"
    assert "--delete --topic s.sale-events" in row.fix and "stocksync topics create" in row.fix
    assert "STOCKSYNC_PARTITIONS=3" in row.fix


def test_a_changelog_that_is_not_compacted_fails_with_the_kafka_configs_command() -> None:
    found = TopicFacts(
        "s-atp-changelog", 4, {"cleanup.policy": "delete", "min.compaction.lag.ms": "0"}
    )
    row = check_topic(SPECS[2], found, BOOTSTRAP)
    assert row.status is Status.FAIL
    assert "cleanup.policy=delete (expected compact)" in row.detail
    assert row.fix.endswith("--entity-name s-atp-changelog --add-config cleanup.policy=compact")


def test_an_event_topic_without_retention_forever_fails() -> None:
    config = {**FOREVER, "retention.ms": "604800000"}
    row = check_topic(SPECS[0], TopicFacts("s.stock-events", 4, config), BOOTSTRAP)
    assert row.status is Status.FAIL and "retention.ms=604800000 (expected -1)" in row.detail


def test_topics_that_are_not_co_partitioned_fail_naming_the_odd_one() -> None:
    topics = {**TOPICS, "s.sale-events": TopicFacts("s.sale-events", 3, dict(FOREVER))}
    row = check_co_partitioning(EXPECT.co_partitioned, topics, 4)
    assert row.status is Status.FAIL
    assert "s.sale-events has 3, the others 4" in row.detail
    assert "STOCKSYNC_PARTITIONS=4" in row.fix


def test_a_stopped_worker_fails_with_how_to_start_one() -> None:
    stopped = WorkerFacts("http://w:8080", error="Connection refused")
    row = check_worker(stopped)
    assert row.status is Status.FAIL and "Connection refused" in row.detail
    assert "stocksync worker" in row.fix
    assert check_worker_lag(stopped, 10).status is Status.SKIP


def test_a_stalled_worker_fails_with_where_to_look() -> None:
    stalled = replace(WORKER, status=503, health={**READY, "ready": False, "stalled": True})
    row = check_worker(stalled)
    assert row.status is Status.FAIL and "nothing is folded" in row.detail
    assert "fold_stalled" in row.fix


def test_a_recovering_worker_fails_with_wait() -> None:
    recovering = replace(WORKER, status=503, health={**READY, "ready": False, "recovered": False})
    row = check_worker(recovering)
    assert row.detail == "not ready: recovering tables" and row.fix.startswith("wait")


def test_a_worker_behind_its_input_fails_over_the_limit() -> None:
    assert check_worker_lag(replace(WORKER, lag=1000), 1000).status is Status.OK
    row = check_worker_lag(replace(WORKER, lag=1001), 1000)
    assert row.status is Status.FAIL and "1001 input records wait" in row.detail
    assert "add workers" in row.fix


def test_events_stamped_in_the_future_fail_naming_their_source() -> None:
    samples = {"s.stock-events": (event(at=NOW + 600_000), event())}
    row = check_clock_skew(samples, NOW, EXPECT)
    assert row.status is Status.FAIL
    assert "1 of 2 newest events are stamped up to 10 min ahead" in row.detail
    assert "pos-1 on s.stock-events" in row.detail and "NTP" in row.fix


def test_old_event_times_are_reported_not_failed() -> None:
    row = check_clock_skew({"s.sale-events": (event(at=NOW - 3_600_000),)}, NOW, EXPECT)
    assert row.status is Status.OK and "the newest is 60 min old" in row.detail
    assert check_clock_skew({}, NOW, EXPECT).status is Status.OK


def test_known_schema_ids_pass_and_are_listed() -> None:
    samples = (event(schema_id=1), event(schema_id=3), event(schema_id=3))
    row = check_schemas("s.stock-events", samples, EXPECT)
    assert row.status is Status.OK
    assert row.detail == "3 newest records: ids 1 (stock-event v1) x1, 3 (stock-event v2) x2"


def test_an_unknown_schema_id_fails() -> None:
    row = check_schemas("s.stock-events", (event(schema_id=1), event(schema_id=999)), EXPECT)
    assert row.status is Status.FAIL and "999 (unknown) x1" in row.detail
    assert "schema id(s) 999 are not in schemas/registry.json" in row.fix


def test_a_sale_event_on_the_stock_topic_fails() -> None:
    row = check_schemas("s.stock-events", (event(schema_id=2),), EXPECT)
    assert row.status is Status.FAIL
    assert "2 (sale-event) do not belong on s.stock-events" in row.fix


def test_bytes_without_the_wire_format_fail() -> None:
    row = check_schemas("s.sale-events", (Sample("s.sale-events", 0, 1, None),), EXPECT)
    assert row.status is Status.FAIL and "1 not in the wire format" in row.detail
    assert "0x00, 4-byte" in row.fix
