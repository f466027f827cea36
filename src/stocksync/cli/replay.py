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
from stocksync.replay import plan_replay, read_table, replay_consumer, replay_log, worker_lag
from stocksync.table_diff import TableDiff, diff_tables


@dataclass(frozen=True, slots=True)
class _ReadLog:
    rows: dict[str, SkuRow]  # replayed
    live: dict[str, bytes]  # the live table's rows; empty unless compared
    lag: int  # input records the worker has not committed yet; 0 unless compared


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
    store: Annotated[
        Path | None,
        typer.Option(help="Also write the replayed rows to a fresh RocksDB store in this folder"),
    ] = None,
) -> None:
    """Rebuild the ATP table from offset 0 of the log and compare it with the live table.

    Reads the stock, sale and reservation-command topics from their first offset up to their
    end at the start of the run, folds them with the worker's own fold (skipping what the
    worker dead-letters), reads the live table's rows from its compacted changelog topic
    (the last value per SKU) and prints, per SKU, what differs. Exit 0 equal, 1 different,
    2 error. Progress goes to stderr.

    What is compared. Kafka orders each partition of each topic, not the stock topic against
    the sale and command topics: the order in which the worker interleaved them is not
    knowable. The replay interleaves a partition's three topics by record timestamp (the
    order the worker most likely saw) and compares what does not depend on that order:
    per location on_hand, reserved, damaged, in_transit and safety_stock (commutative
    movements; cycle counts merge by event time), the holds, and which input was applied
    (revision, per-source sequences, newest event time, command offset). A reservation is
    decided against the ATP of its moment, so a hold decided differently would show here.
    Order-dependent bookkeeping (oversold, the count-merge journal, the last published
    quantity per channel and its topology version, remembered replies) is printed as a note
    and fails only with --strict, which also requires byte-identical rows. The replay uses
    one topology (the newest published, else the file): published quantities from before a
    topology change differ by design.

    Run it when the worker has caught up (a warning says when it has not): a SKU whose
    events are still being folded shows as different.
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
    if read.lag:
        typer.echo(
            f"warning: the worker (group {settings.app_id}) has not committed {read.lag} of the "
            f"input records read; SKUs they touch may show as different: run again once it "
            f"has caught up",
            err=True,
        )
    live = read.live if skus is None else {s: v for s, v in read.live.items() if s in skus}
    result = diff_tables(replayed, live, row_from_bytes, skus)
    _print_diff(result, strict)
    equal = result.equal(strict)
    typer.echo(
        f"{'equal' if equal else 'DIFFERENT'}: {len(replayed)} SKU(s) replayed, {len(live)} "
        f"in the live table, {result.compared} compared"
    )
    if not equal:
        raise typer.Exit(1)


def _read_log(settings: Settings, skus: list[str] | None, diff: bool) -> _ReadLog:
    """Replay the log up to its end at the start of the run and, to compare, read the live
    table and the worker's lag; exits 2 on a Kafka or configuration error."""
    consumer = replay_consumer(settings)
    try:
        topology = current_topology(settings)
        plan = plan_replay(settings, consumer)
        progress = Progress("replay: records read", plan.total)
        rows = replay_log(settings, topology, consumer, plan, skus, progress.advance)
        live = read_table(consumer, plan, progress.advance) if diff else {}
        progress.done()
        lag = worker_lag(settings, plan) if diff else 0
    except (KafkaException, RuntimeError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        consumer.close()
    return _ReadLog(rows, live, lag)


def _print_diff(result: TableDiff, strict: bool) -> None:
    for name in result.only_replayed:
        typer.echo(f"only in the replay (missing from the live table): {name}")
    for name in result.only_live:
        typer.echo(f"only in the live table (not in the log): {name}")
    for name in result.unreadable_live:
        typer.echo(f"live row is not a readable row: {name}")
    for sku_diff in result.differing:
        if sku_diff.material:
            typer.echo(f"differs: {sku_diff.sku}")
        elif strict:
            typer.echo(f"differs (order-dependent fields only): {sku_diff.sku}")
        else:
            typer.echo(f"same quantities, order-dependent fields differ: {sku_diff.sku}")
        for field_diff in sku_diff.material:
            typer.echo(f"  {field_diff.describe()}")
        for field_diff in sku_diff.notes:
            typer.echo(f"  note: {field_diff.describe()}")


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
