"""Reading a snapshot file and sending its events, against a fake sink (and, for refusals, a
BulkSender whose broker never answers)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stocksync.channels.producer import DeliveryError, DeliveryFailed
from stocksync.channels.snapshot_sender import (
    BulkSender,
    ImportOptions,
    read_rows,
    run_import,
    summarize,
)
from stocksync.config import load_settings
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.service.snapshot_import import (
    Columns,
    Format,
    ImportIdentity,
    ImportReport,
    Rejection,
    SnapshotError,
)

AS_OF = 1_700_000_000_000
SNAPSHOT = b"sku,location,on_hand,safety_stock\nA,dc-1,10,2\nB,dc 1,5,\nC,dc-2,4,-1\nD,store-1,7,\n"


class FakeSink:
    """Takes every event; `refuse` names the event ids Kafka will refuse at the flush."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.sent: list[InventoryEvent] = []
        self.refuse = refuse
        self.flushed = 0

    def send(self, event: InventoryEvent) -> None:
        self.sent.append(event)

    def flush(self, timeout: float = 30.0) -> None:
        self.flushed += 1
        failures = [
            DeliveryError(e.event_id, e.sku, "Broker: not enough replicas")
            for e in self.sent
            if e.event_id in self.refuse
        ]
        if failures:
            raise DeliveryFailed(failures)


def write(tmp_path: Path, data: bytes, name: str = "stock.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run(
    path: Path, sink: FakeSink | None, fmt: Format = "csv", dry_run: bool = False
) -> tuple[list[Rejection], list[int], ImportReport]:
    rejected: list[Rejection] = []
    progress: list[int] = []
    summary = summarize(path, Columns())
    report = run_import(
        read_rows(path, fmt, Columns()),
        summary.identity,
        ImportOptions(fmt, Columns(), AS_OF, dry_run=dry_run),
        sink,
        known_locations={"dc-1", "dc-2"},
        on_reject=rejected.append,
        on_rows=progress.append,
    )
    return rejected, progress, report


def test_summary_is_the_digest_of_the_bytes_and_the_line_count(tmp_path: Path) -> None:
    summary = summarize(write(tmp_path, SNAPSHOT), Columns())
    assert summary.identity == ImportIdentity(hashlib.sha256(SNAPSHOT).hexdigest())
    assert (summary.lines, summary.size) == (5, len(SNAPSHOT))
    assert summarize(write(tmp_path, SNAPSHOT.rstrip()), Columns()).lines == 5


def test_good_rows_are_sent_in_file_order_and_bad_ones_named(tmp_path: Path) -> None:
    sink = FakeSink()
    rejected, progress, report = run(write(tmp_path, SNAPSHOT), sink)
    assert [(e.sku, e.kind) for e in sink.sent] == [
        ("A", EventKind.COUNTED),
        ("A", EventKind.SAFETY_STOCK_SET),
        ("D", EventKind.COUNTED),
    ]
    assert sink.flushed == 1
    assert [r.line for r in rejected] == [3, 4]
    assert sum(progress) == 4
    expected = {
        "rows": 4,
        "valid": 2,
        "rejected": 2,
        "imported": 2,
        "not_delivered": 0,
        "events": {"COUNTED": 2, "SAFETY_STOCK_SET": 1},
        "unknown_locations": {"store-1": 1},
    }
    body = report.to_json()
    assert {key: body[key] for key in expected} == expected


def test_events_kafka_refuses_are_counted_and_their_rows_named(tmp_path: Path) -> None:
    path = write(tmp_path, SNAPSHOT)
    source = summarize(path, Columns()).identity.source
    sink = FakeSink(refuse=frozenset({f"{source}:5:COUNTED"}))
    rejected, _, report = run(path, sink)
    assert rejected[-1] == Rejection(5, "not delivered: Broker: not enough replicas", "D")
    assert (report.imported, report.not_delivered) == (1, 1)
    assert report.not_delivered_lines == (5,)


def test_a_dry_run_sends_nothing(tmp_path: Path) -> None:
    sink = FakeSink()
    _, _, report = run(write(tmp_path, SNAPSHOT), sink, dry_run=True)
    assert sink.sent == [] and sink.flushed == 0
    assert report.valid == 2 and report.imported == 0


def test_bytes_that_are_not_utf8_refuse_their_row_only(tmp_path: Path) -> None:
    data = b"sku,location,on_hand\nA\xff,dc-1,1\nB,dc-1,2\n"
    rejected, _, _ = run(write(tmp_path, data), FakeSink())
    assert [(r.line, r.reason) for r in rejected] == [(2, "sku is not valid UTF-8")]
    data = (
        b'{"sku": "A\xff", "location": "dc-1", "on_hand": 1}\n'
        b'{"sku": "B", "location": "dc-1", "on_hand": 2}\n'
    )
    sink = FakeSink()
    rejected, _, _ = run(write(tmp_path, data, "stock.jsonl"), sink, fmt="jsonl")
    assert [r.line for r in rejected] == [1]
    assert [e.sku for e in sink.sent] == ["B"]


def test_a_header_without_the_columns_stops_before_anything_is_sent(tmp_path: Path) -> None:
    sink = FakeSink()
    with pytest.raises(SnapshotError, match="no column 'on_hand'"):
        run(write(tmp_path, b"sku,location,qty\nA,dc-1,1\n"), sink)
    assert sink.sent == []


def test_a_bulk_sender_names_every_event_kafka_did_not_take(tmp_path: Path) -> None:
    # a broker that never answers: every event times out and is reported, none lost
    settings = load_settings(bootstrap_servers="127.0.0.1:1")
    quiet = {"message.timeout.ms": 300, "log_level": 0}  # (no connection-refused lines)
    sender = BulkSender(settings, "import-0123456789abcdef", quiet)
    events = [
        InventoryEvent(
            event_id=f"import-0123456789abcdef:{line}:COUNTED",
            source="import-0123456789abcdef",
            source_seq=2 * line,
            sku=f"SKU-{line}",
            location="dc-1",
            quantity=line,
            occurred_at=AS_OF,
            kind=EventKind.COUNTED,
        )
        for line in range(2, 7)
    ]
    for event in events:
        sender.send(event)
    with pytest.raises(DeliveryFailed) as failed:
        sender.flush(10)
    assert sorted(f.event_id for f in failed.value.failures) == sorted(e.event_id for e in events)
    assert {f.sku for f in failed.value.failures} == {e.sku for e in events}
