"""The pure part of a stock snapshot import: options, row checks, readers, events, the tally."""

from __future__ import annotations

import csv
import hashlib
import io
import string

import pytest
from builders import TOPOLOGY
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.events import EventKind, InventoryEvent, validate_event
from stocksync.domain.fold import apply_event
from stocksync.domain.limits import LOCATION_MAX, QUANTITY_MAX, SKU_MAX
from stocksync.domain.state import SkuRow
from stocksync.service.snapshot_import import (
    AS_OF_FUTURE_SLACK_MS,
    Columns,
    FirstLines,
    ImportIdentity,
    Parsed,
    Rejection,
    SnapshotDigest,
    SnapshotError,
    SnapshotImport,
    SnapshotRow,
    check_row,
    csv_rows,
    format_for,
    jsonl_rows,
    line_of_event,
    parse_as_of,
    parse_columns,
    rfc3339,
    snapshot_events,
)

PROPERTY = settings(max_examples=150, deadline=None)
Outcome = tuple[InventoryEvent, ...] | Rejection
IDENTITY = ImportIdentity("0123456789abcdef" + "0" * 48)
AS_OF = 1_700_000_000_000


def csv_parsed(text: str, columns: Columns | None = None) -> list[Parsed]:
    return list(csv_rows(text.splitlines(keepends=True), columns or Columns()))


def reasons(parsed: list[Parsed]) -> dict[int, str]:
    return {p.line: p.reason for p in parsed if isinstance(p, Rejection)}


# -- options ---------------------------------------------------------------------------------


def test_columns_map_fields_to_the_files_names_and_know_the_default() -> None:
    columns = parse_columns(["sku=ItemNo", " on_hand = Qty "])
    assert (columns.sku, columns.location, columns.on_hand) == ("ItemNo", "location", "Qty")
    assert not columns.is_default and not columns.safety_stock_required
    assert parse_columns([]).is_default
    assert parse_columns(["safety_stock=SS"]).safety_stock_required


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["qty=Qty"], "unknown field 'qty'"),
        (["on_hand"], "write FIELD=COLUMN"),
        (["on_hand="], "write FIELD=COLUMN"),
        (["sku=A", "sku=B"], "sku is already mapped to 'A'"),
        (["sku=Code", "location=Code"], "sku and location both read column 'Code'"),
        (["on_hand=sku"], "sku and on_hand both read column 'sku'"),
    ],
)
def test_a_bad_column_option_is_named_with_the_fix(options: list[str], named: str) -> None:
    with pytest.raises(SnapshotError, match=named):
        parse_columns(options)


def test_the_format_comes_from_the_option_else_the_name() -> None:
    assert format_for("stock.CSV", None) == "csv"
    assert format_for("stock.ndjson", None) == "jsonl"
    assert format_for("stock.jsonl", None) == "jsonl"
    assert format_for("stock.txt", "CSV") == "csv"
    with pytest.raises(SnapshotError, match="--format csv or --format jsonl"):
        format_for("stock.txt", None)
    with pytest.raises(SnapshotError, match="'xml' is not one of csv, jsonl"):
        format_for("stock.csv", "xml")


def test_as_of_is_rfc3339_with_a_zone_and_not_in_the_future() -> None:
    now = 1_800_000_000_000
    assert parse_as_of(None, now) == now
    assert parse_as_of("2026-11-03T06:00:00Z", now) == 1_793_685_600_000
    assert parse_as_of("2026-11-03T07:00:00.250+01:00", now) == 1_793_685_600_250
    with pytest.raises(SnapshotError, match="no time zone"):
        parse_as_of("2026-11-03T06:00:00", now)
    with pytest.raises(SnapshotError, match="not an RFC 3339 time"):
        parse_as_of("yesterday", now)
    with pytest.raises(SnapshotError, match="in the future"):
        parse_as_of(rfc3339(now + AS_OF_FUTURE_SLACK_MS + 1000), now)
    assert rfc3339(1_793_685_600_250) == "2026-11-03T06:00:00.250Z"


# -- rows ------------------------------------------------------------------------------------


def test_a_good_row_keeps_its_values() -> None:
    assert check_row(7, "SKU-1", "dc-1", "12", "3") == SnapshotRow(7, "SKU-1", "dc-1", 12, 3)
    # spreadsheets write "12.0", padded cells; an empty safety_stock cell sets none
    assert check_row(7, "SKU-1", "dc-1", " 12.000 ", "") == SnapshotRow(7, "SKU-1", "dc-1", 12)
    assert check_row(7, "S", "dc-1", 0, None) == SnapshotRow(7, "S", "dc-1", 0)
    assert check_row(7, "S", "dc-1", 5.0, 1) == SnapshotRow(7, "S", "dc-1", 5, 1)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (("", "dc-1", "1"), "sku is empty"),
        (("x" * (SKU_MAX + 1), "dc-1", "1"), f"sku is {SKU_MAX + 1} characters, the limit is"),
        (("S", "dc 1", "1"), "location 'dc 1' has whitespace or ':'"),
        (("S", "dc:1", "1"), "location 'dc:1' has whitespace or ':'"),
        (("S", "d" * (LOCATION_MAX + 1), "1"), f"the limit is {LOCATION_MAX}"),
        (("S", "dc-1", "abc"), "on_hand 'abc' is not a whole number"),
        (("S", "dc-1", "12.5"), "on_hand '12.5' is not a whole number"),
        (("S", "dc-1", "1,200"), "on_hand '1,200' is not a whole number"),
        (("S", "dc-1", "1_200"), "on_hand '1_200' is not a whole number"),
        (("S", "dc-1", "١٢"), "is not a whole number"),  # Arabic-Indic digits
        (("S", "dc-1", ""), "on_hand is missing"),
        (("S", "dc-1", "-1"), "on_hand -1 must be >= 0"),
        (("S", "dc-1", str(QUANTITY_MAX + 1)), f"over the limit of {QUANTITY_MAX}"),
        (("S", "dc-1", True), "on_hand must be a whole number, not a boolean"),
        (("S", "dc-1", 1.5), "on_hand must be a whole number, not a number (1.5)"),
        ((12345, "dc-1", 1), "sku must be a string, not a number (12345)"),
        ((None, "dc-1", 1), "sku is missing"),
        (("S\udcff", "dc-1", 1), "sku is not valid UTF-8"),
    ],
)
def test_a_bad_row_is_refused_naming_the_field(values: tuple[object, ...], reason: str) -> None:
    parsed = check_row(9, *values)
    assert isinstance(parsed, Rejection)
    assert parsed.line == 9
    assert reason in parsed.reason


def test_a_bad_safety_stock_refuses_the_whole_row() -> None:
    parsed = check_row(4, "S", "dc-1", "10", "-2")
    assert parsed == Rejection(4, "safety_stock -2 must be >= 0", "S", "dc-1")


def test_every_problem_of_a_row_is_named_and_a_huge_cell_is_cut_short() -> None:
    parsed = check_row(3, "", "dc 1", "x" * 10_000, "y")
    assert isinstance(parsed, Rejection)
    assert parsed.reason.count(";") == 3
    assert len(parsed.reason) < 300


# -- readers ---------------------------------------------------------------------------------


def test_csv_rows_are_numbered_by_line_and_blank_lines_skipped() -> None:
    parsed = csv_parsed(
        "Qty,ItemNo,location,Extra\n12,A,dc-1,x\n\n5,B,dc 2,y\n7,C,dc-2\n3\n",
        parse_columns(["sku=ItemNo", "on_hand=Qty"]),
    )
    assert parsed[0] == SnapshotRow(2, "A", "dc-1", 12)
    assert reasons(parsed) == {
        4: "location 'dc 2' has whitespace or ':' in it (a location id is one token, such as "
        "dc-east)",
        6: "1 column(s); the header has 4: a cell is missing",
    }
    assert parsed[2] == SnapshotRow(5, "C", "dc-2", 7)  # trailing column not needed


def test_csv_safety_stock_is_read_when_the_header_has_it() -> None:
    parsed = csv_parsed("sku,location,on_hand,safety_stock\nA,dc-1,4,2\nB,dc-1,4,\n")
    assert parsed == [SnapshotRow(2, "A", "dc-1", 4, 2), SnapshotRow(3, "B", "dc-1", 4)]


def test_a_csv_header_without_a_column_names_it_and_the_option() -> None:
    with pytest.raises(SnapshotError, match=r"no column 'on_hand' for on_hand.*--column on_hand="):
        csv_parsed("sku,location,Qty\nA,dc-1,4\n")
    with pytest.raises(SnapshotError, match="no column 'SS' for safety_stock"):
        csv_parsed("sku,location,on_hand\nA,dc-1,4\n", parse_columns(["safety_stock=SS"]))
    with pytest.raises(SnapshotError, match="the file is empty"):
        csv_parsed("")
    with pytest.raises(SnapshotError, match="looks separated by ';': save the file with commas"):
        csv_parsed("sku;location;on_hand\nA;dc-1;4\n")


def test_a_byte_order_mark_and_quoted_cells_are_read() -> None:
    parsed = csv_parsed('\ufeffsku,location,on_hand\n"A,1",dc-1,"4"\n')
    assert parsed == [SnapshotRow(2, "A,1", "dc-1", 4)]


def test_a_line_the_csv_module_cannot_read_is_refused_and_reading_goes_on() -> None:
    huge = "x" * 200_000
    parsed = csv_parsed(f'sku,location,on_hand\n"{huge}",dc-1,1\nB,dc-1,2\n')
    assert "not readable as CSV" in reasons(parsed)[2]
    assert parsed[-1] == SnapshotRow(3, "B", "dc-1", 2)


def test_json_lines_are_checked_line_by_line() -> None:
    lines = [
        b'\xef\xbb\xbf{"ItemNo": "A", "location": "dc-1", "on_hand": 3, "safety_stock": 1}\n',
        b"\n",
        b"[1, 2]\n",
        b"{not json\n",
        b'{"ItemNo": "B", "location": "dc-1", "on_hand": "7", "safety_stock": null}\n',
        b'{"ItemNo": "C", "location": "dc-1"}',
    ]
    parsed = list(jsonl_rows(lines, parse_columns(["sku=ItemNo"])))
    assert parsed[0] == SnapshotRow(1, "A", "dc-1", 3, 1)
    assert parsed[3] == SnapshotRow(5, "B", "dc-1", 7)
    found = reasons(parsed)
    assert found[3] == "not a JSON object but a list"
    assert found[4].startswith("not a JSON object:")
    assert found[6] == "on_hand is missing"


def test_json_lines_need_the_safety_stock_key_when_it_is_mapped() -> None:
    parsed = list(
        jsonl_rows(
            [b'{"sku": "A", "location": "dc-1", "on_hand": 3}'], parse_columns(["safety_stock=ss"])
        )
    )
    assert reasons(parsed) == {1: "safety_stock is missing (key 'ss')"}


# -- identity and events ---------------------------------------------------------------------


def test_the_source_is_the_digest_of_the_bytes_and_another_mapping_is_another_import() -> None:
    plain = SnapshotDigest(Columns())
    plain.update(b"sku,location,on_hand\n")
    plain.update(b"A,dc-1,1\n")
    expected = hashlib.sha256(b"sku,location,on_hand\nA,dc-1,1\n").hexdigest()
    assert plain.identity().sha256 == expected
    assert plain.identity().source == f"import-{expected[:16]}"
    mapped = SnapshotDigest(parse_columns(["on_hand=Qty"]))
    mapped.update(b"sku,location,on_hand\nA,dc-1,1\n")
    assert mapped.identity().source != plain.identity().source


def test_a_row_becomes_a_count_and_its_safety_stock_with_sequences_from_its_line() -> None:
    counted, safety = snapshot_events(SnapshotRow(12, "A", "dc-1", 40, 3), IDENTITY, AS_OF)
    assert (counted.kind, counted.quantity, counted.source_seq) == (EventKind.COUNTED, 40, 24)
    assert (safety.kind, safety.quantity, safety.source_seq) == (
        EventKind.SAFETY_STOCK_SET,
        3,
        25,
    )
    for event in (counted, safety):
        assert event.source == IDENTITY.source
        assert (event.sku, event.location, event.occurred_at) == ("A", "dc-1", AS_OF)
        assert line_of_event(event.event_id) == 12
    assert counted.event_id == f"{IDENTITY.source}:12:COUNTED"
    assert snapshot_events(SnapshotRow(12, "A", "dc-1", 40), IDENTITY, AS_OF) == (counted,)
    assert line_of_event("some-uuid") is None


def test_a_second_row_of_a_sku_location_is_refused_naming_the_first() -> None:
    state = SnapshotImport(IDENTITY, "csv", AS_OF)
    assert state.take(SnapshotRow(2, "A", "dc-1", 4)) == snapshot_events(
        SnapshotRow(2, "A", "dc-1", 4), IDENTITY, AS_OF
    )
    assert not isinstance(state.take(SnapshotRow(3, "A", "dc-2", 4)), Rejection)
    again = state.take(SnapshotRow(9, "A", "dc-1", 5))
    assert isinstance(again, Rejection)
    assert again.reason.startswith("A at dc-1 is already on line 2 of this file")


def test_first_lines_remember_every_key_across_growth() -> None:
    seen = FirstLines(capacity=4)
    keys = [-1, 0, *range(2, 5_000), -(2**63), 2**63 - 1]  # hash() gives negative ones too
    for line, key in enumerate(keys, start=2):
        assert seen.first_line(key, line) == line
    for line, key in enumerate(keys, start=2):
        assert seen.first_line(key, 99_999) == line
    assert len(seen) == len(keys)
    # a key is its low 64 bits, and 0 (the mark of a free slot) is taken as 1
    assert seen.first_line(2**64 - 1, 7) == 2  # the same bits as -1
    assert seen.first_line(1, 7) == 3  # the same as 0


def test_the_report_counts_rows_events_rejections_and_unknown_locations() -> None:
    state = SnapshotImport(IDENTITY, "csv", AS_OF, known_locations=TOPOLOGY.locations)
    state.take(SnapshotRow(2, "A", "dc-1", 4, 1))
    state.take(SnapshotRow(3, "A", "attic", 4))
    state.take(Rejection(4, "on_hand 'x' is not a whole number", "B", "dc-1"))
    report = state.report(seconds=2.0)
    assert (report.rows, report.valid, report.rejected, report.imported) == (3, 2, 1, 2)
    assert report.events == {"COUNTED": 2, "SAFETY_STOCK_SET": 1}
    assert report.unknown_locations == {"attic": 1}
    assert not report.complete
    body = report.to_json()
    assert body["rejects"] == [
        {"line": 4, "reason": "on_hand 'x' is not a whole number", "sku": "B", "location": "dc-1"}
    ]
    assert body["as_of"] == rfc3339(AS_OF)
    assert body["rows_per_s"] == 2


def test_refused_events_are_counted_by_row_and_named_once_per_line() -> None:
    state = SnapshotImport(IDENTITY, "csv", AS_OF)
    events = state.take(SnapshotRow(2, "A", "dc-1", 4, 1))
    state.take(SnapshotRow(3, "B", "dc-1", 4))
    assert not isinstance(events, Rejection)
    first = state.refused(events[0].event_id, "A", "Broker: topic authorization failed")
    assert first == Rejection(2, "not delivered: Broker: topic authorization failed", "A")
    assert state.refused(events[1].event_id, "A", "Broker: topic authorization failed") is None
    report = state.report()
    assert (report.imported, report.not_delivered, report.not_delivered_lines) == (1, 2, (2,))
    assert report.events == {"COUNTED": 1, "SAFETY_STOCK_SET": 0}
    assert report.delivery_error == "Broker: topic authorization failed"
    state.refused("?", "?", "3 still queued")
    assert state.report().imported == 0  # which rows got through is no longer known


def test_a_dry_run_counts_valid_rows_and_no_events() -> None:
    state = SnapshotImport(IDENTITY, "jsonl", AS_OF, dry_run=True)
    state.take(SnapshotRow(1, "A", "dc-1", 4, 1))
    report = state.report()
    assert (report.valid, report.imported, report.events) == (1, 0, {})


# -- properties ------------------------------------------------------------------------------

identifiers = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
cells = st.one_of(
    st.integers(-5, 2_000).map(str),
    st.sampled_from(["", "x", "1.5", " 3 ", "7.0", "1,000"]),
)
row_values = st.tuples(
    st.one_of(identifiers, st.sampled_from(["", "a b"])),
    st.one_of(st.sampled_from(["dc-1", "dc-2", "store-1"]), st.sampled_from(["", "d c", "x:y"])),
    cells,
    cells,
)


def snapshot_csv(rows: list[tuple[str, str, str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "location", "on_hand", "safety_stock"])
    writer.writerows(rows)
    return out.getvalue()


def import_all(text: str) -> tuple[list[tuple[int, Outcome]], SnapshotImport]:
    state = SnapshotImport(IDENTITY, "csv", AS_OF)
    return [(parsed.line, state.take(parsed)) for parsed in csv_parsed(text)], state


@PROPERTY
@given(st.lists(row_values, max_size=30))
def test_importing_the_same_rows_twice_yields_identical_events(
    rows: list[tuple[str, str, str, str]],
) -> None:
    text = snapshot_csv(rows)
    first, _ = import_all(text)
    second, _ = import_all(text)
    assert first == second


@PROPERTY
@given(st.lists(row_values, max_size=30))
def test_every_good_row_yields_exactly_its_events_and_a_bad_one_none(
    rows: list[tuple[str, str, str, str]],
) -> None:
    outcomes, state = import_all(snapshot_csv(rows))
    assert len(outcomes) == len(rows) == state.rows
    seen: set[tuple[str, str]] = set()
    sequences: list[int] = []
    for (line, outcome), (sku, loc, on_hand, safety) in zip(outcomes, rows, strict=True):
        checked = check_row(line, sku, loc, on_hand, safety)
        if isinstance(checked, Rejection) or (sku, loc) in seen:
            assert isinstance(outcome, Rejection)
            continue
        seen.add((sku, loc))
        assert not isinstance(outcome, Rejection)
        expected = [EventKind.COUNTED]
        if checked.safety_stock is not None:
            expected.append(EventKind.SAFETY_STOCK_SET)
        assert [e.kind for e in outcome] == expected
        assert [e.quantity for e in outcome] == [
            q for q in (checked.on_hand, checked.safety_stock) if q is not None
        ]
        for event in outcome:
            validate_event(event)  # the worker folds it: it is not dead-lettered
            assert (event.sku, event.location) == (sku, loc)
            sequences.append(event.source_seq)
    assert sequences == sorted(set(sequences))  # increasing in file order, none repeated


@PROPERTY
@given(st.lists(row_values, max_size=20))
def test_folding_an_import_sets_each_level_and_folding_it_again_changes_nothing(
    rows: list[tuple[str, str, str, str]],
) -> None:
    outcomes, _ = import_all(snapshot_csv(rows))
    events = [e for _, out in outcomes if not isinstance(out, Rejection) for e in out]
    table: dict[str, SkuRow] = {}

    def fold_all() -> None:
        for event in events:
            table[event.sku] = apply_event(table.get(event.sku), event, TOPOLOGY).row

    fold_all()
    once = dict(table)
    fold_all()
    assert table == once  # no revision moved: every event a duplicate
    for event in events:
        stock = table[event.sku].locations[event.location]
        level = stock.on_hand if event.kind is EventKind.COUNTED else stock.safety_stock
        assert level == event.quantity
