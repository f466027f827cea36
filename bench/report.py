"""Render the results table of BENCHMARKS.md from bench/results/*.json.

    .venv/bin/python -m bench.report          # rewrite the table between the markers
    .venv/bin/python -m bench.report --print  # only print it
    .venv/bin/python -m bench.report --results /tmp/results --doc /tmp/BENCHMARKS.md  # elsewhere

Every budget of BRIEF §4 gets a row with the measured value and whether it is met, so the
document cannot drift from the JSON files the benchmarks wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

DOC = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


# BRIEF §4's reference input for the throughput budget; any other input is not the headline.
REFERENCE_INPUT = {"input": "reference", "events": 200_000, "skus": 10_000, "partitions": 4}
REFERENCE_ZIPF = 1.0


def lag_word(run: dict[str, Any]) -> str:
    """Whether the worker kept up at a rate: its consumer lag at the end of the run."""
    if "held" not in run:
        return "lag not measured"
    state = "lag held" if run["held"] else "lag growing"
    return f"{state}: {run['lag_end']:,.0f} waiting at the end, at most {run['lag_max']:,.0f}"


def load(name: str, results: Path = RESULTS) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def yes(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def is_reference(params: dict[str, Any]) -> bool:
    return all(params.get(key) == value for key, value in REFERENCE_INPUT.items()) and (
        params.get("zipf_exponent") == REFERENCE_ZIPF
    )


def input_text(result: dict[str, Any]) -> str:
    """Which input a worker_throughput result folded (results before `--input` existed used
    the skewed one)."""
    params = result.get("params", {})
    name = params.get("input", "skewed")
    parts = [f"{params.get('events', result.get('events', 0)):,} events"]
    if "skus" in params:
        locations = f" x {params['locations']} locations" if "locations" in params else ""
        parts.append(f"{params['skus']:,} SKUs{locations}")
    if name == "reference":
        parts.append(f"Zipf {params.get('zipf_exponent', '?')}")
    shape = result.get("input")
    if isinstance(shape, dict) and "distinct_skus_per_1000_events" in shape:
        parts.append(f"{shape['distinct_skus_per_1000_events']} distinct SKUs per 1,000 events")
    if "partitions" in params:
        parts.append(f"{params['partitions']} partitions")
    return f"{name} ({', '.join(parts)})"


def throughput_row(
    throughput: dict[str, Any], before: dict[str, Any] | None
) -> tuple[str, str, str, str, str]:
    per_cpu = throughput["events_per_cpu_second"]
    runs = throughput.get("runs") or []
    cpu_runs = [run["events_per_cpu_second"] for run in runs]
    if len(cpu_runs) > 1:
        spread = f" (median of {len(cpu_runs)} runs, {min(cpu_runs):,}-{max(cpu_runs):,})"
    else:
        spread = " (1 run)" if runs else ""
    wall = throughput.get("events_per_second")
    measured = f"{per_cpu:,} events per worker CPU-second{spread}"
    if wall is not None:
        wall_runs = [run["events_per_second"] for run in runs]
        wall_spread = f" ({min(wall_runs):,}-{max(wall_runs):,})" if len(wall_runs) > 1 else ""
        measured += f"; wall {wall:,} events/s{wall_spread}"
    measured += f"; input: {input_text(throughput)}"
    if before:
        commit = before.get("machine", {}).get("commit")
        measured += (
            f"; before the batch engine{f' ({commit})' if commit else ''}: "
            f"{before['events_per_cpu_second']:,} on {input_text(before)}"
        )
        if "clock" not in before:
            measured += ", clocks started at worker ready"
    floor = min(cpu_runs) if cpu_runs else per_cpu
    if is_reference(throughput.get("params", {})):
        met = yes(per_cpu >= 50_000 and floor >= 25_000)
    else:
        met = "**not the reference input**"
    return (
        "Fold throughput, real worker + broker",
        ">= 50k events per worker CPU-second on the reference input, never below 25k",
        measured,
        met,
        "`python -m bench.worker_throughput --runs 3`",
    )


def budget_rows(results: Path = RESULTS) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    # the old worker on the reference input if it was measured, else the first figure kept
    throughput, before = (
        load("worker_throughput", results),
        load("worker_throughput.reference-before", results)
        or load("worker_throughput.before", results),
    )
    if throughput:
        rows.append(throughput_row(throughput, before))
    latency = load("latency", results)
    if latency:
        runs = {run["rate_target"]: run for run in latency["runs"]}
        at_5k = runs.get(5000)
        kept = [r for r in latency["runs"] if r["p99_ms"] <= 50]
        best = max(kept, key=lambda r: r["rate_target"]) if kept else None
        measured = (
            f"at 5k/s: p50 {at_5k['p50_ms']:,} ms, p99 {at_5k['p99_ms']:,} ms ({lag_word(at_5k)})"
            if at_5k
            else "5k/s not run"
        )
        if best:
            measured += (
                f"; held up to {best['rate_target']:,}/s: p50 {best['p50_ms']} ms, "
                f"p99 {best['p99_ms']} ms, p99.9 {best['p999_ms']} ms"
            )
        ok = bool(
            at_5k and at_5k["p50_ms"] <= 10 and at_5k["p99_ms"] <= 50 and at_5k.get("held", True)
        )
        rows.append(
            (
                "Sale produced -> projection consumed",
                "p50 <= 10 ms, p99 <= 50 ms at 5k events/s",
                measured,
                yes(ok),
                "`python -m bench.latency`",
            )
        )
    http = load("http_lookup", results)
    if http:
        single = http["single"]
        steps = {s["target_rate"]: s for s in single["steps"]}
        at_5k = steps.get(5000.0)
        ok = bool(at_5k and at_5k["held"] and at_5k["p99_ms"] <= 5)
        measured = (
            f"at 5k req/s: p50 {at_5k['p50_ms']} ms, p99 {at_5k['p99_ms']} ms "
            f"(handler p99 <= {at_5k.get('handler_p99_ms_at_most', '?')} ms); "
            if at_5k
            else ""
        ) + f"highest rate held {single['highest_rate_held']:,.0f} req/s"
        rows.append(
            (
                "HTTP ATP lookup, one SKU",
                "p99 <= 5 ms at >= 5k requests/s per worker",
                measured,
                yes(ok),
                "`python -m bench.http_lookup`",
            )
        )
        batch = http["batch100"]
        within = [s for s in batch["steps"] if s["p99_ms"] <= 10]
        top = max(batch["steps"], key=lambda s: s["target_rate"])
        measured = (
            f"p99 <= 10 ms up to {max(s['target_rate'] for s in within):,.0f} req/s; "
            if within
            else ""
        ) + (
            f"at {top['target_rate']:,.0f} req/s p99 {top['p99_ms']} ms as the client sees it, "
            f"handler p99 <= {top.get('handler_p99_ms_at_most', '?')} ms"
        )
        rows.append(
            (
                "HTTP ATP lookup, batch of 100 SKUs",
                "p99 <= 10 ms",
                measured,
                "**met at low rates only**" if within else yes(False),
                "`python -m bench.http_lookup`",
            )
        )
    recovery = load("recovery", results)
    if recovery:
        per_1m = recovery["recovery_seconds_per_1m_sku_locations"]
        faust = load("recovery.faust", results)
        was = (
            f"; faust's own restore: {faust['recovery_seconds_per_1m_sku_locations']} s"
            if faust
            else ""
        )
        rows.append(
            (
                "Recovery from the changelog",
                "<= 10 s per 1M SKU-locations",
                (
                    f"{per_1m} s per 1M ({recovery['sku_locations']:,} SKU-locations, "
                    f"{recovery['rows']:,} rows, librdkafka bulk restore{was})"
                ),
                yes(per_1m <= 10),
                "`python -m bench.recovery`",
            )
        )
        warm = recovery["warm_restart_over_empty_seconds"]
        rows.append(
            (
                "Warm restart (own RocksDB files)",
                "<= 1 s plus the tail",
                (
                    f"{warm} s over an empty worker's start ({recovery['warm_restart_seconds']} s "
                    f"process start to ready, of which {recovery['empty_start_seconds']} s is "
                    "Python start-up and joining the group)"
                ),
                yes(warm <= 1),
                "`python -m bench.recovery`",
            )
        )
        rss = recovery["rss_bytes_per_sku_location"]
        rows.append(
            (
                "Memory per SKU-location",
                "<= 256 bytes",
                (
                    f"{rss} B of worker RSS ({recovery['rocksdb_disk_bytes_per_sku_location']} B "
                    f"on disk, {recovery['row_bytes_per_sku_location']} B of row)"
                ),
                yes(rss <= 256),
                "`python -m bench.recovery`",
            )
        )
    return rows


def other_rows(results: Path = RESULTS) -> list[str]:
    lines: list[str] = []
    throughput = load("worker_throughput", results)
    if throughput and throughput.get("runs"):
        runs = "; ".join(
            f"{r['events_per_cpu_second']:,} per CPU-second, {r['events_per_second']:,}/s wall "
            f"({r['events_timed']:,} events timed)"
            for r in throughput["runs"]
        )
        clock = throughput.get("clock", "")
        lines.append(
            f"- Fold throughput by run, input {input_text(throughput)}: {runs}."
            + (f" Clock: {clock}." if clock else "")
        )
    fold = load("fold_micro", results)
    if fold and "us_per_event" in fold:  # (results of the older per-step-only format: skipped)
        lines.append(fold_micro_line(fold))
    latency = load("latency", results)
    if latency:
        runs = ", ".join(
            f"{r['rate_target']:,}/s p50 {r['p50_ms']:,} / p99 {r['p99_ms']:,} / "
            f"p99.9 {r['p999_ms']:,} ms ({lag_word(r)})"
            for r in latency["runs"]
        )
        lines.append(f"- Sale -> projection latency by rate: {runs}.")
    http = load("http_lookup", results)
    if http:
        for name, label in (("single", "one SKU"), ("batch100", "batch of 100")):
            steps = ", ".join(
                f"{s['target_rate']:,.0f}/s p99 {s['p99_ms']} ms"
                f" (handler <= {s.get('handler_p99_ms_at_most', '?')} ms,"
                f" {'held' if s['held'] else 'not held'})"
                for s in http[name]["steps"]
            )
            lines.append(f"- HTTP lookup, {label}: {steps}.")
    for name, when in (("reservation_latency", ""), ("reservation_latency.before", "before, ")):
        reservations = load(name, results)
        if reservations:
            lines.append(reservation_line(reservations, when))
    day = load("retail_day", results)
    if day:
        lines.append(
            f"- Load generator (`python -m bench.retail_day`): {day['events']:,} events through "
            f"the channels' ChannelProducers at {day['events_per_second']:,}/s, at most "
            f"{day['most_behind_schedule_s']} s behind schedule."
        )
    imports = load("import_rate", results)
    if imports:
        lines.append(import_rate_line(imports))
    oversell = load("oversell", results)
    if oversell:
        cells = ", ".join(f"{r['strategy']} {r['oversold_pct']}%" for r in oversell["results"])
        lines.append(
            f"- Oversell simulation (`python -m bench.oversell`), share of orders cancelled: "
            f"{cells}."
        )
    return lines


def import_rate_line(result: dict[str, Any]) -> str:
    """`stocksync import` of a generated snapshot, process start to exit (bench.import_rate)."""
    run, check = result["import"], result["check_only"]
    return (
        f"- Stock snapshot import (`python -m bench.import_rate`, {result['file_mb']} MB CSV): "
        f"{run['rows']:,} rows ({run['events']:,} events) in {run['wall_s']} s, "
        f"{run['rows_per_s']:,} rows/s, {run['cpu_s']} CPU-s (budget: 1M rows under a minute); "
        f"checking alone (`--dry-run`) {check['wall_s']} s, {check['rows_per_s']:,} rows/s."
    )


def reservation_line(result: dict[str, Any], when: str) -> str:
    """POST /v1/reservations -> 201 as the client sees it (bench.reservation_latency)."""

    def cell(run: dict[str, Any]) -> str:
        return (
            f"p50 {run['p50_ms']} / p90 {run['p90_ms']} / p99 {run['p99_ms']} / "
            f"max {run['max_ms']} ms, {run['requests_per_s']:,}/s"
        )

    commit = result.get("machine", {}).get("commit", "?")
    seq, conc, release = result["sequential"], result["concurrent"], result["release_sequential"]
    return (
        f"- Reservation round trip (`python -m bench.reservation_latency`, {when}{commit}, "
        f"{seq['requests']:,} one-unit holds per run on {result['skus']:,} SKUs): one client "
        f"{cell(seq)}; {conc['concurrency']} clients {cell(conc)}; release (DELETE), one client "
        f"p50 {release['p50_ms']} / p99 {release['p99_ms']} ms."
    )


def fold_micro_line(fold: dict[str, Any]) -> str:
    """The pure per-event path (fold_batch over the memory store), with its steps when timed."""
    runs = [run["events_per_cpu_second"] for run in fold.get("runs", [])]
    spread = f", {min(runs):,}-{max(runs):,}" if len(runs) > 1 else ""
    line = (
        f"- Pure per-event path, one core, no Kafka (`python -m bench.fold_micro`: fold_batch "
        f"over the memory store, per-partition batches of <= "
        f"{fold.get('params', {}).get('batch', '?'):,} records), input {input_text(fold)}: "
        f"{fold['us_per_event']:.1f} µs per event = {fold['events_per_cpu_second']:,} events per "
        f"CPU-second (median of {len(runs)} run(s){spread})"
    )
    steps = fold.get("steps_ns")
    if steps:
        parts = (
            ("admission (Avro decode, validation)", steps["admit"]),
            ("row decode", steps["row_decode"]),
            ("fold", steps["fold"]),
            ("history record", steps["audit_record"] + steps["history_encode"]),
            ("projection Avro", steps["projection_encode"]),
            ("alert Avro", steps["alert_encode"]),
            ("row encode", steps["row_encode"]),
            ("batch bookkeeping", steps["fold_batch_other"]),
        )
        line += "; per event " + " + ".join(f"{name} {ns / 1000:.1f}" for name, ns in parts)
        line += " µs (each step timed alone)"
    return line + "."


def machine_line(results: Path = RESULTS) -> str:
    for name in ("recovery", "http_lookup", "latency", "worker_throughput"):
        data = load(name, results)
        if data:
            m = data["machine"]
            return (
                f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
                f"{m['platform']}; broker, worker and load generator share it."
            )
    return ""


def render(results: Path = RESULTS) -> str:
    out = [machine_line(results), "", "| Budget (BRIEF §4) | Target | Measured | Met? | Command |"]
    out.append("|---|---|---|---|---|")
    out += [f"| {' | '.join(row)} |" for row in budget_rows(results)]
    out += ["", *other_rows(results)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print", action="store_true", help="print, do not rewrite")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the JSON files (bench/results)"
    )
    parser.add_argument(
        "--doc", type=Path, default=DOC, help="the document to rewrite (BENCHMARKS.md)"
    )
    args = parser.parse_args()
    table = render(args.results)
    doc: Path = args.doc
    if args.print or not doc.exists():
        print(table)
        return
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{doc} has no {START} ... {END} markers")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    print(f"rewrote the results table of {doc}")


if __name__ == "__main__":
    main()
