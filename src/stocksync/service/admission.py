"""Admission of one input message: decode, validate, and check that it is where it belongs.
The worker, `replay` and `redrive` all admit through `admit`, so they agree on what is folded
and what is dead-lettered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from aiokafka.partitioner import murmur2

from stocksync.codec.avro import Undecodable, decode
from stocksync.codec.events import EVENT_SUBJECTS, record_to_event
from stocksync.codec.reservations import COMMAND_SUBJECT, command_from_record
from stocksync.codec.schemas import UnknownSchema
from stocksync.domain.events import InvalidEvent, InventoryEvent
from stocksync.domain.reservations import ReservationCommand
from stocksync.topics import TopicNames

Admitted = InventoryEvent | ReservationCommand


@lru_cache(maxsize=200_000)
def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java client (and faust) put a key on. aiokafka's murmur2 is pure
    Python (microseconds a key): hot SKUs are remembered."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


class Rejected(Exception):
    """An input message that cannot be folded: it goes to the dead-letter topic with the
    error (a stable word) and the reason (what the producer must fix)."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    partitions: int
    # source-owned event topics: topic -> the one source it speaks for
    source_of_topic: Mapping[str, str] = field(default_factory=dict)
    # sources with topics of their own, which may not write the shared topics
    own_topic_sources: frozenset[str] = frozenset()
    # where reservation commands are read (empty: not checked); events belong on the others.
    # A command's offset orders it within its SKU's row, so commands must share one topic.
    command_topics: frozenset[str] = frozenset()


def admission_rules(topics: TopicNames, partitions: int) -> AdmissionRules:
    """The rules of a deployment: the worker admits by them, and so does replay."""
    return AdmissionRules(
        partitions=partitions,
        source_of_topic=topics.source_topics(),
        own_topic_sources=frozenset(topics.own_topic_sources),
        command_topics=frozenset({topics.reservation_commands}),
    )


def admit(
    topic: str, partition: int, key: bytes | None, value: bytes | None, rules: AdmissionRules
) -> Admitted:
    """The event or command a message holds, or Rejected with the reason."""
    decoded = decode_message(topic, value)
    command = isinstance(decoded, ReservationCommand)
    if rules.command_topics and (topic in rules.command_topics) != command:
        what = "a reservation command" if command else "a stock or sale event"
        where = ", ".join(sorted(rules.command_topics))
        raise Rejected(
            "invalid",
            f"{what} does not belong on {topic}: reservation commands go to {where}, stock "
            f"and sale events to the event topics",
        )
    if isinstance(decoded, InventoryEvent):
        check_source(topic, decoded.source, rules)
    if key != decoded.sku.encode():
        raise Rejected(
            "key_mismatch",
            f"message key {_shown(key)} is not the message's sku {decoded.sku!r}; "
            f"key every event and command by its SKU",
        )
    expected = murmur2_partition(key, rules.partitions)
    if partition != expected:
        raise Rejected(
            "wrong_partition",
            f"SKU {decoded.sku!r} arrived on partition {partition}, murmur2 places it on "
            f"{expected}: set partitioner=murmur2_random on the producer",
        )
    return decoded


def decode_message(topic: str, value: bytes | None) -> Admitted:
    """The validated event or command of a message's bytes, or Rejected with the reason (the
    first half of admission: what the bytes say, not where they arrived)."""
    try:
        subject, record = decode(value)
        if subject in EVENT_SUBJECTS:
            return record_to_event(subject, record)
        if subject == COMMAND_SUBJECT:
            return command_from_record(record)
        raise InvalidEvent(f"a {subject} message does not belong on {topic}")
    except Undecodable as exc:
        raise Rejected("undecodable", str(exc)) from None
    except UnknownSchema as exc:
        raise Rejected("unknown_schema", str(exc)) from None
    except (InvalidEvent, ValueError, KeyError) as exc:
        raise Rejected("invalid", str(exc)) from None


def check_source(topic: str, source: str, rules: AdmissionRules) -> None:
    """With source-owned topics, an event's source must be its topic's: Kafka ACLs decide who
    may write a topic, this decides that a topic speaks only for its source."""
    owner = rules.source_of_topic.get(topic)
    if owner is not None and source != owner:
        raise Rejected(
            "source_mismatch",
            f"event of source {source!r} on {topic}, which only source {owner!r} may use",
        )
    if owner is None and source in rules.own_topic_sources:
        raise Rejected(
            "source_mismatch",
            f"source {source!r} has topics of its own and may not write to {topic}",
        )


def _shown(key: bytes | None, limit: int = 160) -> str:
    """A key as a reason quotes it: keys are unbounded, reasons are not."""
    if key is None or len(key) <= limit:
        return repr(key)
    return f"{key[:limit]!r}... ({len(key)} bytes)"
