"""The checks of `stocksync doctor`: each a pure function from gathered facts to rows of
(check, status, detail, fix). A failing row always says what to do about it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from stocksync.doctor.facts import (
    BrokerFacts,
    Expectations,
    Facts,
    Sample,
    TopicFacts,
    WorkerFacts,
)
from stocksync.doctor.releases import release_of, shown
from stocksync.provision import TopicSpec

METADATA_VERSION = "metadata.version"


class Status(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"  # could not be checked because something it needs failed (its own row)


@dataclass(frozen=True, slots=True)
class CheckRow:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(check: str, detail: str) -> CheckRow:
    return CheckRow(check, Status.OK, detail)


def fail(check: str, detail: str, fix: str) -> CheckRow:
    return CheckRow(check, Status.FAIL, detail, fix)


def healthy(rows: Iterable[CheckRow]) -> bool:
    return all(row.status is Status.OK for row in rows)


# -- broker -----------------------------------------------------------------------------------


def check_broker(broker: BrokerFacts) -> CheckRow:
    if broker.error is not None:
        return fail(
            "broker",
            f"no answer from {broker.bootstrap}: {broker.error}",
            "start Kafka (`stocksync kafka up` for the local one), or point "
            "STOCKSYNC_BOOTSTRAP_SERVERS at it; if it runs, check the security settings "
            "(STOCKSYNC_SECURITY_PROTOCOL, STOCKSYNC_SASL_*, STOCKSYNC_SSL_*)",
        )
    addresses = ", ".join(node.address for node in broker.nodes)
    return ok(
        "broker",
        f"{len(broker.nodes)} broker(s) ({addresses}), cluster {broker.cluster_id or '?'}",
    )


def check_broker_version(broker: BrokerFacts, expect: Expectations) -> CheckRow:
    name = "broker version"
    if broker.error is not None:
        return CheckRow(name, Status.SKIP, "no broker answered")
    upgrade = (
        f"run Kafka {shown(expect.min_release)} or newer in KRaft mode (stocksync is tested "
        f"with {expect.tested_release}): upgrade the brokers"
    )
    seen: list[str] = []
    problems: list[str] = []
    for node in broker.nodes:
        where = f"broker {node.node_id} ({node.address})"
        if node.versions is None:
            problems.append(f"{where} did not answer ApiVersions: {node.error}")
            continue
        level = node.versions.supported_features.get(METADATA_VERSION)
        release = release_of(level[1]) if level else None
        if release is None:
            problems.append(f"{where} is older than Kafka 3.3 or runs in ZooKeeper mode")
            continue
        finalized = node.versions.finalized_features.get(METADATA_VERSION)
        in_force = release_of(finalized[1]) if finalized else None
        text = f"{where}: Kafka {shown(release)}"
        if in_force is not None and in_force != release:
            text += f" (metadata.version of {shown(in_force)} in force)"
        seen.append(text)
        if release < expect.min_release:
            problems.append(f"{where} runs Kafka {shown(release)}")
    if problems:
        unreachable = all(node.versions is None for node in broker.nodes)
        fix = (
            "check that every broker's advertised listener is reachable from here "
            "(the address in the detail)"
            if unreachable
            else upgrade
        )
        return fail(name, "; ".join(problems), fix)
    return ok(name, "; ".join(seen))


# -- topics -----------------------------------------------------------------------------------


def check_topic(spec: TopicSpec, found: TopicFacts | None, bootstrap: str) -> CheckRow:
    """One topic: it exists, with the partitions and the configuration provisioning gives."""
    name = f"topic {spec.name}"
    if found is None:
        return fail(
            name,
            "missing",
            "run `stocksync topics create` (it also sets partitions, compaction, retention)",
        )
    if found.partitions != spec.partitions:
        return fail(
            name,
            f"{_partitions(found.partitions)}, stocksync expects {spec.partitions}"
            + (" (STOCKSYNC_PARTITIONS)" if spec.partitions != 1 else ""),
            f"recreate it with {spec.partitions}: delete it (kafka-topics.sh --bootstrap-server "
            f"{bootstrap} --delete --topic {spec.name}) and run `stocksync topics create`; "
            f"adding partitions is not a fix (keys would move to other partitions)"
            + (
                f"; or, if every co-partitioned topic has {found.partitions}, set "
                f"STOCKSYNC_PARTITIONS={found.partitions}"
                if spec.partitions != 1
                else ""
            ),
        )
    if found.config_error is not None:
        return fail(
            name,
            f"{_partitions(found.partitions)}; its configuration could not be read: "
            f"{found.config_error}",
            "grant this principal DESCRIBE_CONFIGS on the topic, or check it with "
            f"kafka-configs.sh --bootstrap-server {bootstrap} --describe --entity-type topics "
            f"--entity-name {spec.name}",
        )
    wrong = {
        key: (found.config.get(key), want)
        for key, want in spec.config.items()
        if found.config.get(key) != want
    }
    if wrong:
        shown_wrong = ", ".join(
            f"{k}={have} (expected {want})" for k, (have, want) in wrong.items()
        )
        settings = ",".join(f"{k}={want}" for k, (_, want) in wrong.items())
        return fail(
            name,
            f"{_partitions(found.partitions)}; {shown_wrong}",
            f"kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
            f"--entity-name {spec.name} --add-config {settings}",
        )
    return ok(name, f"{_partitions(found.partitions)}, {_policy(spec.config)}")


def _partitions(count: int) -> str:
    return f"{count} partition{'' if count == 1 else 's'}"


def _policy(config: Mapping[str, str]) -> str:
    policy = config.get("cleanup.policy", "delete")
    if policy == "compact":
        return "compacted"
    retention = config.get("retention.ms")
    if retention == "-1":
        return "kept forever"
    if retention is not None:
        return f"kept {int(retention) // 3_600_000} h"
    return policy


def check_co_partitioning(
    names: Sequence[str], topics: Mapping[str, TopicFacts], expected: int
) -> CheckRow:
    """The input topics and the table changelogs: one partition count, or faust stops its
    agent with PartitionsMismatch (a SKU's events and its row must share a partition)."""
    counts = {name: topics[name].partitions for name in names if name in topics}
    if not counts:
        return CheckRow("co-partitioning", Status.SKIP, "none of those topics exists")
    if len(set(counts.values())) == 1:
        count = next(iter(counts.values()))
        return ok("co-partitioning", f"{len(counts)} input and table topics, {count} partitions")
    by_count = Counter(counts.values())
    usual = by_count.most_common(1)[0][0]
    odd = ", ".join(f"{name} has {n}" for name, n in sorted(counts.items()) if n != usual)
    return fail(
        "co-partitioning",
        f"input topics and table changelogs differ: {odd}, the others {usual}",
        f"give all of them STOCKSYNC_PARTITIONS={expected} partitions (recreate the odd ones: "
        f"delete them, then `stocksync topics create`); a worker cannot start otherwise",
    )


# -- workers ----------------------------------------------------------------------------------


def check_worker(worker: WorkerFacts) -> CheckRow:
    name = f"worker {worker.url}"
    if worker.error is not None:
        return fail(
            name,
            f"no answer: {worker.error}",
            "start a worker (`stocksync worker`), or name a running one with --url",
        )
    health = worker.health
    partitions = health.get("partitions")
    if worker.status == 200 and health.get("ready"):
        return ok(
            name,
            f"ready, partitions {partitions}, topology v{health.get('topology_version')}, "
            f"{health.get('applied', 0)} events applied",
        )
    if health.get("stalled"):
        return fail(
            name,
            f"not ready: input waits and nothing is folded (stalled "
            f"{health.get('stalled_for_s', 0)} s)",
            "look for fold_stalled, fold_failed or outputs_waiting in the worker's log; if "
            "Kafka is fine, restart the worker (its /livez fails soon and an orchestrator "
            "restarts it)",
        )
    if health.get("rebalancing") or not health.get("recovered", True):
        return fail(
            name,
            "not ready: " + ("rebalancing" if health.get("rebalancing") else "recovering tables"),
            "wait for it (recovery reads the changelogs); if it lasts minutes, look at the "
            "worker's log for workers joining and leaving the group",
        )
    if not partitions:
        return fail(
            name,
            "not ready: owns no partitions",
            "run at most STOCKSYNC_PARTITIONS workers, or wait for the group to assign it",
        )
    return fail(
        name,
        f"not ready (HTTP {worker.status})",
        "see the worker's log and its /readyz body",
    )


def check_worker_lag(worker: WorkerFacts, max_lag: int) -> CheckRow:
    name = f"worker {worker.url} lag"
    if worker.error is not None:
        return CheckRow(name, Status.SKIP, "no answer")
    if worker.lag is None:
        return fail(
            name,
            f"no stocksync_consumer_lag_total in /metrics: {worker.metrics_error or 'absent'}",
            "check that --url names a stocksync worker (its /metrics), not another service",
        )
    lag = int(worker.lag)
    if lag > max_lag:
        return fail(
            name,
            f"{lag} input records wait to be folded (limit {max_lag})",
            "the worker does not keep up: add workers (up to STOCKSYNC_PARTITIONS), or look "
            "at stocksync_fold_batch_duration_seconds and the worker's CPU",
        )
    return ok(name, f"{lag} input records waiting")


# -- records: clocks and schemas ------------------------------------------------------------


def check_clock_skew(
    samples: Mapping[str, Sequence[Sample]], now_ms: int, expect: Expectations
) -> CheckRow:
    """Event times from the future mean a producer's clock is fast: the fold orders cycle
    counts by event time, so a count stamped ahead swallows later movements. (A time in the
    past is not told apart from a late or replayed event, so it is reported, not failed.)"""
    name = "clock skew"
    events = [s for topic in expect.event_topics for s in samples.get(topic, ()) if s.event_time]
    if not events:
        return ok(name, "no events to read times from yet")
    limit = expect.max_skew_ms
    ahead = [s for s in events if s.event_time is not None and s.event_time - now_ms > limit]
    newest = max(s.event_time or 0 for s in events)
    if ahead:
        worst = max(ahead, key=lambda s: s.event_time or 0)
        sources = sorted({f"{s.source} on {s.topic}" for s in ahead})
        return fail(
            name,
            f"{len(ahead)} of {len(events)} newest events are stamped up to "
            f"{_seconds((worst.event_time or 0) - now_ms)} ahead of this machine's clock "
            f"(limit {_seconds(limit)}): {', '.join(sources[:5])}",
            "synchronise the clocks (NTP) of those sources' hosts, and of this one if every "
            "source is ahead",
        )
    return ok(
        name,
        f"{len(events)} newest events, none ahead of now by more than {_seconds(limit)}; "
        f"the newest is {_seconds(max(0, now_ms - newest))} old",
    )


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s" if ms < 120_000 else f"{ms / 60_000:.0f} min"


def check_schemas(
    topic: str, samples: Sequence[Sample], expect: Expectations, error: str | None = None
) -> CheckRow:
    """The schema ids of a topic's newest records: each known (schemas/registry.json) and of
    the subject the topic carries."""
    name = f"schemas {topic}"
    if error is not None:
        return fail(name, f"could not read its newest records: {error}", "see the broker row")
    if not samples:
        return ok(name, "no records yet")
    subject = expect.subjects.get(topic)
    ids: Counter[int] = Counter(s.schema_id for s in samples if s.schema_id is not None)
    not_avro = sum(1 for s in samples if s.schema_id is None)
    unknown = sorted(i for i in ids if i not in expect.schemas)
    misplaced = sorted(
        i for i in ids if i in expect.schemas and subject and expect.schemas[i][0] != subject
    )
    seen = ", ".join(
        f"{i} ({expect.schemas[i][0]} v{expect.schemas[i][1]}) x{n}"
        if i in expect.schemas
        else f"{i} (unknown) x{n}"
        for i, n in sorted(ids.items())
    )
    detail = f"{len(samples)} newest records: ids {seen or 'none'}"
    if not_avro:
        detail += f", {not_avro} not in the wire format"
    if unknown:
        return fail(
            name,
            detail,
            f"schema id(s) {', '.join(map(str, unknown))} are not in "
            f"schemas/registry.json: a producer writes with a schema this build does not know "
            f"(the worker dead-letters them as unknown_schema); fix the producer, or add the "
            f"schema as a backward-compatible version",
        )
    if misplaced:
        wrong = ", ".join(f"{i} ({expect.schemas[i][0]})" for i in misplaced)
        return fail(
            name,
            detail,
            f"{wrong} do not belong on {topic}, which carries {subject} records: fix the "
            f"producer's topic (ChannelProducer picks it from the event's kind)",
        )
    if not_avro:
        return fail(
            name,
            detail,
            "a producer writes bytes without the Confluent wire-format header (0x00, 4-byte "
            "big-endian schema id, Avro body; schemas/README.md): fix it, the worker "
            "dead-letters them as undecodable",
        )
    return ok(name, detail)


# -- all of them ------------------------------------------------------------------------------


def run_checks(facts: Facts, expect: Expectations) -> list[CheckRow]:
    rows = [check_broker(facts.broker), check_broker_version(facts.broker, expect)]
    if facts.topics is None:
        rows.append(CheckRow("topics", Status.SKIP, "no broker answered"))
    else:
        topics = facts.topics
        rows.extend(
            check_topic(spec, topics.get(spec.name), facts.broker.bootstrap)
            for spec in expect.topics
        )
        counts = [s.partitions for s in expect.topics if s.name in expect.co_partitioned]
        rows.append(
            check_co_partitioning(expect.co_partitioned, topics, counts[0] if counts else 1)
        )
    for worker in facts.workers:
        rows.extend((check_worker(worker), check_worker_lag(worker, expect.max_lag)))
    if facts.topics is not None:
        rows.append(check_clock_skew(facts.samples, facts.now_ms, expect))
        rows.extend(
            check_schemas(
                topic, facts.samples.get(topic, ()), expect, facts.sample_errors.get(topic)
            )
            for topic in expect.subjects
            if topic in facts.topics
        )
    return rows
