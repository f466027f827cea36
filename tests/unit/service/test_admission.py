"""Admission of one input message: the event or command it holds, or Rejected with a stable
error word and a reason that tells the producer what to fix."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from builders import SKU, ev, reserve
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.codec.avro import HEADER
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import encode_projection
from stocksync.codec.reservations import encode_command
from stocksync.codec.schemas import registry
from stocksync.domain.effects import ChannelQuantityChanged
from stocksync.domain.events import EventKind as K
from stocksync.domain.events import InventoryEvent
from stocksync.service.admission import AdmissionRules, Rejected, admit
from stocksync.topics import TopicNames

from .support import PARTITIONS, partition_of

OWN = "shop-7"  # a source with topics of its own
TOPICS = TopicNames(own_topic_sources=(OWN,))
RULES = AdmissionRules(  # as the worker builds them (streams/app.py)
    partitions=PARTITIONS,
    source_of_topic=TOPICS.source_topics(),
    own_topic_sources=frozenset(TOPICS.own_topic_sources),
    command_topics=frozenset({TOPICS.reservation_commands}),
)
RECEIPT = ev(K.RECEIVED, 5, seq=1)
HOME = partition_of(SKU)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str = TOPICS.stock_events
    partition: int = HOME
    key: bytes | None = SKU.encode()
    value: bytes | None = encode_event(RECEIPT)


def admitted(message: Message) -> object:
    return admit(message.topic, message.partition, message.key, message.value, RULES)


def rejected(message: Message) -> Rejected:
    with pytest.raises(Rejected) as caught:
        admitted(message)
    return caught.value


def event_message(event: InventoryEvent, **fields: Any) -> Message:
    return replace(Message(value=encode_event(event)), **fields)


def test_a_good_event_is_admitted_as_the_event() -> None:
    assert admitted(Message()) == RECEIPT


def test_a_good_sale_on_the_sale_topic_is_admitted() -> None:
    sale = ev(K.SOLD, 1, source="pos", seq=2)
    assert admitted(event_message(sale, topic=TOPICS.sale_events)) == sale


def test_a_good_command_is_admitted_as_the_command() -> None:
    command = reserve(3, "res-1", at=1_000)
    message = Message(topic=TOPICS.reservation_commands, value=encode_command(command))
    assert admitted(message) == command


def test_an_event_of_a_source_on_its_own_topic_is_admitted() -> None:
    event = ev(K.RECEIVED, 1, source=OWN, seq=3)
    assert admitted(event_message(event, topic=TOPICS.stock_events_of(OWN))) == event


SCHEMA_V2 = encode_event(RECEIPT)
UNKNOWN_ID = HEADER.pack(0, 999) + SCHEMA_V2[HEADER.size :]
PROJECTION = encode_projection(ChannelQuantityChanged("web", SKU, 5, 3, 1, 0))

REJECTIONS = {
    # name: (message, error, what the reason must say)
    "empty value": (Message(value=b""), "undecodable", "0 bytes is shorter than the header"),
    "tombstone": (Message(value=None), "undecodable", "0 bytes is shorter than the header"),
    "not the wire format": (
        Message(value=b"\x7b\x22sku\x22: 1}"),
        "undecodable",
        "first byte is 0x7b, expected 0x00 (Confluent wire format header)",
    ),
    "truncated body": (
        Message(value=SCHEMA_V2[:-4]),
        "undecodable",
        "Avro body does not match schema id 3 (stock_event.v2.avsc)",
    ),
    "trailing bytes": (
        Message(value=SCHEMA_V2 + b"??"),
        "undecodable",
        "2 trailing bytes after a stock_event.v2.avsc record",
    ),
    "unknown schema id": (
        Message(value=UNKNOWN_ID),
        "unknown_schema",
        "schema id 999 is not in schemas/registry.json",
    ),
    "zero quantity": (
        event_message(ev(K.RECEIVED, 0, seq=1)),
        "invalid",
        "RECEIVED quantity 0 must be > 0",
    ),
    "over-long sku": (
        event_message(ev(K.RECEIVED, 1, seq=1, sku="S" * 129), key=b"S" * 129),
        "invalid",
        "sku is 129 characters, the limit is 128",
    ),
    "transfer to itself": (
        event_message(ev(K.TRANSFER_OUT, 1, seq=1, counterpart="dc-1")),
        "invalid",
        "a transfer from dc-1 to itself moves nothing",
    ),
    "over-long request id": (
        Message(
            topic=TOPICS.reservation_commands,
            value=encode_command(reserve(1, "res-1", request_id="r" * 300)),
        ),
        "invalid",
        "request_id is 300 characters, the limit is 272",
    ),
    "an output on an input topic": (
        Message(value=PROJECTION),
        "invalid",
        "a channel-atp message does not belong on stocksync.stock-events",
    ),
    "a command on an event topic": (
        Message(value=encode_command(reserve(1, "res-1"))),
        "invalid",
        f"a reservation command does not belong on {TOPICS.stock_events}",
    ),
    "an event on the commands topic": (
        Message(topic=TOPICS.reservation_commands),
        "invalid",
        f"a stock or sale event does not belong on {TOPICS.reservation_commands}",
    ),
    "no key": (
        Message(key=None),
        "key_mismatch",
        "message key None is not the message's sku 'SKU-1'; key every event and command by its SKU",
    ),
    "another sku's key": (
        Message(key=b"SKU-2"),
        "key_mismatch",
        "message key b'SKU-2' is not the message's sku 'SKU-1'",
    ),
    "wrong partition": (
        Message(partition=HOME + 1),
        "wrong_partition",
        (
            f"SKU 'SKU-1' arrived on partition {HOME + 1}, murmur2 places it on {HOME}: "
            "set partitioner=murmur2_random on the producer"
        ),
    ),
    "another source on a source's own topic": (
        Message(topic=TOPICS.stock_events_of(OWN)),
        "source_mismatch",
        (
            f"event of source 'wms' on {TOPICS.stock_events_of(OWN)}, which only source 'shop-7' "
            "may use"
        ),
    ),
    "a source with its own topics on the shared topic": (
        event_message(ev(K.SOLD, 1, source=OWN, seq=4), topic=TOPICS.sale_events),
        "source_mismatch",
        f"source 'shop-7' has topics of its own and may not write to {TOPICS.sale_events}",
    ),
}


@pytest.mark.parametrize(
    ("message", "error", "says"), list(REJECTIONS.values()), ids=list(REJECTIONS)
)
def test_a_message_that_cannot_be_folded_is_rejected_with_the_error_and_the_fix(
    message: Message, error: str, says: str
) -> None:
    problem = rejected(message)
    assert problem.error == error
    assert says in problem.reason
    assert str(problem) == problem.reason


def test_a_huge_key_is_shown_cut_in_the_reason() -> None:
    # given a 1 MB key on a good event
    problem = rejected(Message(key=b"k" * 1_048_576))
    # then the reason quotes its start and its size, not the megabyte
    assert problem.error == "key_mismatch"
    assert "... (1048576 bytes) is not the message's sku 'SKU-1'" in problem.reason
    assert len(problem.reason) < 300


def test_a_huge_binary_key_is_shown_cut_in_the_reason() -> None:
    # 160 bytes shown, each \xNN escaped as four characters
    problem = rejected(Message(key=b"\xff" * 1_048_576))
    assert problem.error == "key_mismatch"
    assert len(problem.reason) < 1_000


def test_a_huge_field_is_measured_not_quoted_in_the_reason() -> None:
    problem = rejected(event_message(ev(K.ADJUSTED, 1, seq=1, reason="r" * 1_048_576)))
    assert problem.error == "invalid"
    assert problem.reason == "reason is 1048576 characters, the limit is 256"


KNOWN_IDS = sorted(registry().by_id)


@settings(max_examples=150, deadline=None)
@given(
    schema_id=st.sampled_from([*KNOWN_IDS, 0, 999]),
    body=st.binary(max_size=120),
    key=st.one_of(st.none(), st.binary(max_size=20), st.just(SKU.encode())),
    partition=st.integers(0, PARTITIONS - 1),
)
def test_any_bytes_are_admitted_or_rejected_never_an_other_error(
    schema_id: int, body: bytes, key: bytes | None, partition: int
) -> None:
    value = HEADER.pack(0, schema_id) + body
    try:
        decoded = admit(TOPICS.stock_events, partition, key, value, RULES)
    except Rejected as problem:
        assert problem.error in {
            "undecodable",
            "unknown_schema",
            "invalid",
            "key_mismatch",
            "wrong_partition",
            "source_mismatch",
        }
        assert 0 < len(problem.reason) < 2_000
    else:
        assert key == decoded.sku.encode()
        assert partition == partition_of(decoded.sku)
