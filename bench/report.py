"""Render the results table of BENCHMARKS.md from bench/results/*.json.

    .venv/bin/python -m bench.report          # rewrite the table between the markers
    .venv/bin/python -m bench.report --print  # only print it

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


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def yes(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def budget_rows() -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    throughput, before = load("worker_throughput"), load("worker_throughput.before")
    if throughput:
        per_core = throughput["events_per_cpu_second"]
        was = f" (before optimising: {before['events_per_cpu_second']:,})" if before else ""
        rows.append(
            (
                "Fold throughput, real worker + broker",
                ">= 50k events/s per worker core (stretch 100k)",
                f"{per_core:,} events per worker CPU-second{was}",
                yes(per_core >= 50_000),
                "`python -m bench.worker_throughput`",
            )
        )
    latency = load("latency")
    if latency:
        runs = {run["rate_target"]: run for run in latency["runs"]}
        at_5k = runs.get(5000)
        kept = [r for r in latency["runs"] if r["p99_ms"] <= 50]
        best = max(kept, key=lambda r: r["rate_target"]) if kept else None
        measured = (
            f"at 5k/s: p50 {at_5k['p50_ms']:,} ms, p99 {at_5k['p99_ms']:,} ms (saturated)"
            if at_5k
            else "5k/s not run"
        )
        if best:
            measured += (
                f"; held up to {best['rate_target']:,}/s: p50 {best['p50_ms']} ms, "
                f"p99 {best['p99_ms']} ms, p99.9 {best['p999_ms']} ms"
            )
        ok = bool(at_5k and at_5k["p50_ms"] <= 10 and at_5k["p99_ms"] <= 50)
        rows.append(
            (
                "Sale produced -> projection consumed",
                "p50 <= 10 ms, p99 <= 50 ms at 5k events/s",
                measured,
                yes(ok),
                "`python -m bench.latency`",
            )
        )
    http = load("http_lookup")
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
    recovery = load("recovery")
    if recovery:
        per_1m = recovery["recovery_seconds_per_1m_sku_locations"]
        faust = load("recovery.faust")
        was = (
            f"; faust's own restore: {faust['recovery_seconds_per_1m_sku_locations']} s"
            if faust
            else ""
        )
        rows.append(
            (
                "Recovery from the changelog",
                "<= 10 s per 1M SKU-locations",
                f"{per_1m} s per 1M ({recovery['sku_locations']:,} SKU-locations, "
                f"{recovery['rows']:,} rows, librdkafka bulk restore{was})",
                yes(per_1m <= 10),
                "`python -m bench.recovery`",
            )
        )
        warm = recovery["warm_restart_over_empty_seconds"]
        rows.append(
            (
                "Warm restart (own RocksDB files)",
                "<= 1 s plus the tail",
                f"{warm} s over an empty worker's start ({recovery['warm_restart_seconds']} s "
                f"process start to ready, of which {recovery['empty_start_seconds']} s is "
                "Python start-up and joining the group)",
                yes(warm <= 1),
                "`python -m bench.recovery`",
            )
        )
        rss = recovery["rss_bytes_per_sku_location"]
        rows.append(
            (
                "Memory per SKU-location",
                "<= 256 bytes",
                f"{rss} B of worker RSS ({recovery['rocksdb_disk_bytes_per_sku_location']} B "
                f"on disk, {recovery['row_bytes_per_sku_location']} B of row)",
                yes(rss <= 256),
                "`python -m bench.recovery`",
            )
        )
    return rows


def other_rows() -> list[str]:
    lines: list[str] = []
    fold = load("fold_micro")
    if fold:
        lines.append(
            f"- Pure fold, one core (`python -m bench.fold_micro`): {fold['total_ns'] / 1000:.1f} "
            f"µs per event = Avro decode {fold['avro_decode_ns'] / 1000:.1f} + row decode "
            f"{fold['row_decode_ns'] / 1000:.1f} + fold {fold['fold_ns'] / 1000:.1f} + row "
            f"encode {fold['row_encode_ns'] / 1000:.1f}; ceiling "
            f"{fold['ceiling_events_per_s']:,} events/s per core."
        )
    latency = load("latency")
    if latency:
        runs = ", ".join(
            f"{r['rate_target']:,}/s p50 {r['p50_ms']:,} / p99 {r['p99_ms']:,} / "
            f"p99.9 {r['p999_ms']:,} ms"
            for r in latency["runs"]
        )
        lines.append(f"- Sale -> projection latency by rate: {runs}.")
    http = load("http_lookup")
    if http:
        for name, label in (("single", "one SKU"), ("batch100", "batch of 100")):
            steps = ", ".join(
                f"{s['target_rate']:,.0f}/s p99 {s['p99_ms']} ms"
                f" (handler <= {s.get('handler_p99_ms_at_most', '?')} ms,"
                f" {'held' if s['held'] else 'not held'})"
                for s in http[name]["steps"]
            )
            lines.append(f"- HTTP lookup, {label}: {steps}.")
    day = load("retail_day")
    if day:
        lines.append(
            f"- Load generator (`python -m bench.retail_day`): {day['events']:,} events through "
            f"the channels' ChannelProducers at {day['events_per_second']:,}/s, at most "
            f"{day['most_behind_schedule_s']} s behind schedule."
        )
    oversell = load("oversell")
    if oversell:
        cells = ", ".join(f"{r['strategy']} {r['oversold_pct']}%" for r in oversell["results"])
        lines.append(
            f"- Oversell simulation (`python -m bench.oversell`), share of orders cancelled: "
            f"{cells}."
        )
    return lines


def machine_line() -> str:
    for name in ("recovery", "http_lookup", "latency", "worker_throughput"):
        data = load(name)
        if data:
            m = data["machine"]
            return (
                f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
                f"{m['platform']}; broker, worker and load generator share it."
            )
    return ""


def render() -> str:
    out = [machine_line(), "", "| Budget (BRIEF §4) | Target | Measured | Met? | Command |"]
    out.append("|---|---|---|---|---|")
    out += [f"| {' | '.join(row)} |" for row in budget_rows()]
    out += ["", *other_rows()]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print", action="store_true", help="print, do not rewrite")
    args = parser.parse_args()
    table = render()
    if args.print or not DOC.exists():
        print(table)
        return
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    print(f"rewrote the results table of {DOC.name}")


if __name__ == "__main__":
    main()
