"""`stocksync replay`: rebuild the ATP table from offset 0 of the log and compare it with the
live table (or print it, or write it to a fresh RocksDB store)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka import KafkaException

from stocksync.adapters.store.rocksdb import write_rows
from stocksync.bootstrap import current_topology
from stocksync.cli_settings import settings_or_exit
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.config import ConfigError, Settings
from stocksync.domain.state import SkuRow
from stocksync.progress import Progress
from stocksync.replay import plan_replay, read_table, replay_consumer, replay_log
from stocksync.replay_cut import cut_of
from stocksync.table_diff import TableDiff, diff_tables


@dataclass(frozen=True, slots=True)
class _ReadLog:
    rows: dict[str, SkuRow]  # replayed (at the live table's cut when compared)
    live: dict[str, bytes]  # the live table's rows; empty unless compared
    left_out: int  # input records beyond the cut (the worker had not folded them yet)


def replay(
    sku: Annotated[
        list[str] | None, typer.Option("--sku", help="Only these SKUs (repeat the option)")
    ] = None,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff/--no-diff",
            help="Compare with the live table (default); --no-diff prints the replayed rows",
        ),
    ] = True,
    strict: Annotated[
        bool,
        typer.Option(help="Also fail when only order-dependent fields or the row bytes differ"),
    ] = False,
    notes: Annotated[
        bool,
        typer.Option(help="Also print the order-dependent fields that differ (else counted)"),
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Also write the replayed rows (at the live table's position when comparing) "
            "to a fresh RocksDB store in this folder"
        ),
    ] = None,
) -> None:
    """Rebuild the ATP table from offset 0 of the log and compare it with the live table.

    Reads the live table's rows from its compacted changelog topic (the last value per SKU),
    then the stock, sale and reservation-command topics from their first offset, and folds
    with the worker's own fold (skipping what the worker dead-letters), for each SKU exactly
    the input its live row had folded when it was read (per source stream up to the row's
    sequence, commands up to its command offset, and everything the worker had committed), so
    traffic while it runs is not a difference. Prints one line per field that differs
    (`SKU-7 locations.dc-1.on_hand: live 12, replay 10`) and SAME or DIFFERENT. Exit 0 same,
    1 different, 2 error. Progress goes to stderr.

    What is compared. Kafka orders each partition of each topic, not the stock topic against
    the sale and command topics: the order in which the worker interleaved them is not
    knowable. The replay interleaves a partition's three topics by record timestamp (the
    order the worker most likely saw) and compares what does not depend on that order:
    per location on_hand, reserved, damaged, in_transit and safety_stock (commutative
    movements; cycle counts merge by event time), the holds, and which input was applied
    (revision, per-source sequences, newest event time, command offset). A reservation is
    decided against the ATP of its moment, so a hold decided differently would show here.
    Order-dependent bookkeeping (oversold, the count-merge journal, the last published
    quantity per channel and its topology version, remembered replies) is counted (printed
    with --notes) and fails only with --strict, which also requires byte-identical rows. The
    replay uses one topology (the newest published, else the file): published quantities
    from before a topology change differ by design.
    """
    settings = settings_or_exit()
    skus = list(sku) if sku else None
    read = _read_log(settings, skus, diff)
    replayed = {s: row_to_bytes(row) for s, row in sorted(read.rows.items())}
    if store is not None:
        _write_store(store, replayed)
    if not diff:
        for row in (read.rows[s] for s in replayed):
            typer.echo(json.dumps(_row_summary(row)))
        typer.echo(f"{len(replayed)} SKU(s) replayed", err=True)
        return
    result = diff_tables(replayed, read.live, row_from_bytes, skus)
    _print_diff(result, strict, notes)
    facts = [f"{result.compared} SKU(s) compared at the live table's position"]
    if read.left_out:
        facts.append(f"{read.left_out} newer input record(s) the worker had not folded left out")
    hidden = 0 if strict or notes else sum(len(d.notes) for d in result.differing)
    if hidden:
        facts.append(f"{hidden} order-dependent note(s), shown with --notes")
    if result.equal(strict):
        typer.echo(f"SAME: {'; '.join(facts)}")
        return
    everything = len(set(replayed) | set(read.live))
    typer.echo(
        f"DIFFERENT: {_count_differing(result, strict)} of {everything} SKU(s) differ; "
        + "; ".join(facts)
    )
    raise typer.Exit(1)


def _read_log(settings: Settings, skus: list[str] | None, diff: bool) -> _ReadLog:
    """To compare: read the live table, then replay the log within its cut. Otherwise replay
    the log up to its end at the start of the run. Exits 2 on a Kafka or configuration
    error."""
    consumer = replay_consumer(settings)
    try:
        topology = current_topology(settings)
        plan = plan_replay(settings, consumer, compare=diff)
        progress = Progress("replay: records read", plan.total)
        live = read_table(consumer, plan, progress.advance) if diff else {}
        if skus is not None:
            live = {s: v for s, v in live.items() if s in skus}
        cut = cut_of(_readable_rows(live), plan.committed) if diff else None
        replayed = replay_log(settings, topology, consumer, plan, skus, progress.advance, cut)
        progress.done()
    except (KafkaException, RuntimeError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        consumer.close()
    return _ReadLog(replayed.rows, live, replayed.left_out)


def _readable_rows(live: dict[str, bytes]) -> dict[str, SkuRow]:
    """The live rows that decode (one that does not is reported by the diff; its cut is then
    what the worker committed)."""
    rows = {}
    for sku, value in live.items():
        try:
            rows[sku] = row_from_bytes(value)
        except ValueError:
            continue
    return rows


def _print_diff(result: TableDiff, strict: bool, notes: bool) -> None:
    """One line per difference, each starting with the SKU: easy to grep, easy to read."""
    for name in result.only_replayed:
        typer.echo(f"{name} missing from the live table: the worker committed input for it")
    for name in result.only_live:
        typer.echo(f"{name} only in the live table: no record of the log makes it")
    for name in result.unreadable_live:
        typer.echo(f"{name} the live row is not a readable row")
    for sku_diff in result.differing:
        for field_diff in sku_diff.material:
            typer.echo(f"{sku_diff.sku} {field_diff.describe()}")
        for field_diff in sku_diff.notes if strict or notes else ():
            typer.echo(f"{'' if strict else 'note: '}{sku_diff.sku} {field_diff.describe()}")
        if strict and not sku_diff.fields:
            typer.echo(f"{sku_diff.sku} row bytes differ (same fields, maps in another order)")


def _count_differing(result: TableDiff, strict: bool) -> int:
    differing = sum(1 for d in result.differing if d.material or (strict and d.bytes_differ))
    return (
        len(result.only_replayed) + len(result.only_live) + len(result.unreadable_live) + differing
    )


def _row_summary(row: SkuRow) -> dict[str, object]:
    return {
        "sku": row.sku,
        "revision": row.revision,
        "locations": {
            loc: {
                "on_hand": s.on_hand,
                "reserved": s.reserved,
                "damaged": s.damaged,
                "in_transit": s.in_transit,
                "safety_stock": s.safety_stock,
                "oversold": s.oversold,
            }
            for loc, s in row.locations.items()
        },
        "holds": sorted(row.holds),
    }


def _write_store(path: Path, rows: dict[str, bytes]) -> None:
    if path.exists() and any(path.iterdir()):
        typer.echo(f"error: {path} is not empty; --store needs a fresh folder", err=True)
        raise typer.Exit(2)
    write_rows(path, rows)
    typer.echo(f"replayed rows written to {path}", err=True)
