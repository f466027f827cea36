"""The `stocksync` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stocksync.cli_settings import settings_or_exit
from stocksync.config import ConfigError, Settings
from stocksync.connectors.cli import app as connectors_app

if TYPE_CHECKING:
    from confluent_kafka import Consumer

app = typer.Typer(
    help="stocksync: one authoritative ATP number for every sales channel.",
    no_args_is_help=True,
    add_completion=False,
    # help paragraphs are reflowed to the terminal's width (docstrings are wrapped at 100)
    rich_markup_mode="markdown",
)
topics_app = typer.Typer(help="Provision stocksync's Kafka topics.", no_args_is_help=True)
atp_app = typer.Typer(help="Query available-to-promise.", no_args_is_help=True)
dead_letter_app = typer.Typer(help="Look at rejected input.", no_args_is_help=True)
projections_app = typer.Typer(help="What each channel is told.", no_args_is_help=True)
topology_app = typer.Typer(help="Locations, channels and policies.", no_args_is_help=True)
kafka_app = typer.Typer(
    help="The local single-node Kafka broker (deploy/kafka/kafka.sh).", no_args_is_help=True
)
reservation_app = typer.Typer(help="Act on a reservation by its id.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(atp_app, name="atp")
app.add_typer(dead_letter_app, name="dead-letter")
app.add_typer(projections_app, name="projections")
app.add_typer(topology_app, name="topology")
app.add_typer(kafka_app, name="kafka")
app.add_typer(reservation_app, name="reservation")
app.add_typer(connectors_app)  # `stocksync connector run`, `stocksync endpoints run`


_settings = settings_or_exit


@app.command()
def worker() -> None:
    """Run a worker: fold events into the ATP table and serve the HTTP API."""
    settings = _settings()
    from stocksync.provision import ensure_topics
    from streams.worker import run_worker

    try:
        topology = settings.load_topology()
        if settings.api_keys_file is not None:
            from stocksync.api.auth import load_keys

            # a key scoped to a channel the topology does not know is a config error, not a crash
            load_keys(settings.api_keys_file, channels=topology.channels)
        ensure_topics(settings)
    except (ConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_worker(settings)


@topics_app.command("create")
def topics_create() -> None:
    """Create missing topics with their partitions, compaction and retention."""
    settings = _settings()
    from stocksync.provision import ensure_topics, topic_specs

    try:
        created = ensure_topics(settings)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        typer.echo(f"{state:8} {spec.name} partitions={spec.partitions} {spec.config}")


@app.command()
def simulate(
    events: Annotated[int, typer.Option(help="Events to produce; 0 runs until stopped")] = 0,
    rate: Annotated[float, typer.Option(help="Events per second")] = 20.0,
    skus: Annotated[int, typer.Option(help="Number of SKUs")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
) -> None:
    """Simulated channels: a warehouse receiving stock, web and app orders, POS sales,
    marketplace sales."""
    settings = _settings()
    from stocksync.channels.simulator import run_simulation

    run_simulation(settings, events=events, rate=rate, sku_count=skus, seed=seed)


@atp_app.command("get")
def atp_get(
    sku: str,
    channel: Annotated[str | None, typer.Option(help="One channel only")] = None,
    url: Annotated[str | None, typer.Option(help="Worker URL")] = None,
) -> None:
    """Print a SKU's ATP from a worker's HTTP API."""
    settings = _settings()
    base = url or f"http://{settings.http_host}:{settings.http_port}"
    query = f"?channel={channel}" if channel else ""
    try:
        with urllib.request.urlopen(f"{base}/v1/atp/{sku}{query}", timeout=5) as resp:
            typer.echo(json.dumps(json.loads(resp.read()), indent=2))
    except urllib.error.HTTPError as exc:
        typer.echo(exc.read().decode(), err=True)
        # an unknown SKU is an answer (1); anything else the worker refused is an error (2)
        raise typer.Exit(1 if exc.code == 404 else 2) from None
    except urllib.error.URLError as exc:
        typer.echo(f"error: no worker answers at {base}: {exc.reason}", err=True)
        raise typer.Exit(2) from None


@topology_app.command("publish")
def topology_publish(path: Path) -> None:
    """Publish a new topology version; running workers apply it and re-publish every channel
    quantity under it."""
    settings = _settings()
    import yaml

    from stocksync.domain.topology import TopologyError
    from stocksync.provision import ensure_topics
    from stocksync.topology_log import publish_topology

    try:
        document = yaml.safe_load(path.read_text())
        ensure_topics(settings)
        topology = publish_topology(settings, document)
    except (OSError, yaml.YAMLError, TopologyError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"published topology version {topology.version}: {len(topology.locations)} locations, "
        f"{len(topology.channels)} channels"
    )


@topology_app.command("show")
def topology_show() -> None:
    """Print the topology version workers use (newest published, else the file)."""
    settings = _settings()
    from stocksync.topology_log import read_latest_topology

    from_file = settings.load_topology()  # a bad file is reported first, without Kafka
    published = read_latest_topology(settings)
    topology = published if published and published.version > from_file.version else from_file
    origin = "topic" if topology is published else str(settings.topology_file)
    typer.echo(f"version {topology.version} (from {origin})")
    for channel in topology.channels.values():
        policy = channel.policy
        rules = [
            f"buffer {policy.buffer_percent}%" if policy.buffer_percent else "",
            f"buffer {policy.buffer_units} units" if policy.buffer_units else "",
            f"cap {policy.cap}" if policy.cap is not None else "",
            f"low stock at {policy.low_stock}" if policy.low_stock else "",
        ]
        told = ", ".join(r for r in rules if r) or "no buffer, no cap"
        typer.echo(f"  {channel.id:14} sells from {', '.join(channel.locations)}; {told}")


def _reader(settings: Settings, topic: str, from_beginning: bool) -> Consumer:
    from confluent_kafka import Consumer, KafkaException

    errors: list[str] = []
    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"stocksync-cli-{time.time_ns()}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            "error_cb": lambda err: errors.append(err.str()),
            "log_level": 0,  # reasons are reported once, below, not as librdkafka log lines
        }
    )
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
    except KafkaException as exc:
        consumer.close()
        reason = errors[-1] if errors else str(exc)
        typer.echo(
            f"error: no Kafka broker answers at {settings.bootstrap_servers} ({reason}); check "
            "STOCKSYNC_BOOTSTRAP_SERVERS and the security settings",
            err=True,
        )
        raise typer.Exit(2) from None
    if found is None or found.error is not None:
        consumer.close()
        typer.echo(f"error: topic {topic} does not exist: run `stocksync topics create`", err=True)
        raise typer.Exit(2)
    consumer.subscribe([topic])
    return consumer


@projections_app.command("tail")
def projections_tail(
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest message")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many; 0 = never")] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds; 0 = never")] = 0,
) -> None:
    """Print channel quantity updates as the worker publishes them."""
    settings = _settings()
    from stocksync.codec.outputs import decode_projection

    consumer = _reader(settings, settings.topics.channel_atp, from_beginning)
    shown = 0
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while (not limit or shown < limit) and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            change = decode_projection(msg.value() or b"")
            if channel and change.channel != channel:
                continue
            typer.echo(
                f"{change.channel:14} {change.sku:14} atp={change.quantity:<6} "
                f"revision={change.revision} policy_version={change.policy_version}"
            )
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


@dead_letter_app.command("inspect")
def dead_letter_inspect(
    limit: Annotated[int, typer.Option(help="Most messages to show")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for messages")] = 5.0,
) -> None:
    """Print dead-lettered messages with their reasons."""
    settings = _settings()
    from stocksync.codec.outputs import decode_dead_letter

    consumer = _reader(settings, settings.topics.dead_letter, from_beginning=True)
    shown = 0
    deadline = time.monotonic() + timeout
    try:
        while shown < limit and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            record = decode_dead_letter(msg.value() or b"")
            original = record.pop("original_value") or b""
            record["original_key"] = (record["original_key"] or b"").decode(errors="replace")
            record["original_value_hex"] = original[:64].hex()
            typer.echo(json.dumps(record))
            shown += 1
    finally:
        consumer.close()
    typer.echo(f"{shown} dead-lettered message(s) shown", err=True)


# -- kafka up / down / status ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"

KafkaPort = Annotated[
    int,
    typer.Option(envvar="STOCKSYNC_KAFKA_PORT", min=1, max=65535, help="Broker port"),
]
KafkaScript = Annotated[
    Path,
    typer.Option(envvar="STOCKSYNC_KAFKA_SCRIPT", help="The launcher script"),
]


def _kafka(action: str, port: int, script: Path, needs_java: bool = False) -> None:
    if not script.is_file():
        typer.echo(
            f"error: the Kafka launcher {script} is missing: run from a stocksync checkout or "
            f"pass --script / STOCKSYNC_KAFKA_SCRIPT (or run your own broker and set "
            f"STOCKSYNC_BOOTSTRAP_SERVERS)",
            err=True,
        )
        raise typer.Exit(2)
    if needs_java and shutil.which("java") is None:
        typer.echo(
            "error: Java 17+ is required to run Kafka and `java` is not on PATH: install a "
            "JDK, or run a broker elsewhere (docker-compose.kafka.yml) and set "
            "STOCKSYNC_BOOTSTRAP_SERVERS",
            err=True,
        )
        raise typer.Exit(2)
    env = {**os.environ, "STOCKSYNC_KAFKA_PORT": str(port)}
    result = subprocess.run(["bash", str(script), action], env=env, check=False)
    raise typer.Exit(result.returncode)


@kafka_app.command("up")
def kafka_up(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Start the local broker (KRaft, single node) and wait until it answers; prints its
    bootstrap address. Fetches the Kafka jars with Maven on first use."""
    _kafka("start", port, script, needs_java=True)


@kafka_app.command("down")
def kafka_down(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Stop the local broker on this port (its data is kept)."""
    _kafka("stop", port, script)


@kafka_app.command("status")
def kafka_status(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Whether the local broker on this port runs. Exit 0 running, 3 stopped."""
    _kafka("status", port, script)


# -- reservations over the worker's HTTP API ---------------------------------------------------

WorkerUrl = Annotated[
    str | None, typer.Option("--url", help="Worker URL (default: STOCKSYNC_HTTP_HOST/_PORT)")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="STOCKSYNC_API_KEY",
        help="API key, sent as `Authorization: Bearer`",
        show_default=False,
    ),
]


def _worker_url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def _call(
    method: str,
    url: str,
    body: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, object]]:
    """(status, JSON body) of an HTTP call to a worker; exits 2 when no worker answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        typer.echo(f"error: no worker answers at {url}: {reason}", err=True)
        raise typer.Exit(2) from None
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"error": "not_json", "message": raw[:200].decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"body": parsed}


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _http_error(status: int, body: dict[str, object]) -> None:
    typer.echo(json.dumps(body, indent=2))
    typer.echo(f"error: HTTP {status} {body.get('error')}: {body.get('message')}", err=True)
    raise typer.Exit(2)


@app.command()
def reserve(
    sku: str,
    channel: Annotated[str, typer.Option(help="The channel the units are held for")],
    quantity: Annotated[int, typer.Option(min=1, help="Units to hold")],
    location: Annotated[str | None, typer.Option(help="Hold at this location only")] = None,
    ttl_seconds: Annotated[int, typer.Option(min=1, help="Hold expires after this")] = 900,
    key: Annotated[
        str | None,
        typer.Option(help="Idempotency-Key (the reservation id): a retry never holds twice"),
    ] = None,
    allow_partial: Annotated[
        bool, typer.Option(help="Hold what is available when it is less than asked")
    ] = False,
    url: WorkerUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Hold units of a SKU for a channel through a worker's HTTP API (POST /v1/reservations).

    Prints the reply as JSON. Exit 0 held, 1 refused (not enough stock: the reply says how
    many are available), 2 any other error (invalid request, no answer, timeout: retry with
    the same --key)."""
    settings = _settings()
    headers = _auth(api_key)
    if key:
        headers["Idempotency-Key"] = key
    status, body = _call(
        "POST",
        f"{_worker_url(settings, url)}/v1/reservations",
        {
            "channel": channel,
            "sku": sku,
            "quantity": quantity,
            "location": location,
            "ttl_seconds": ttl_seconds,
            "allow_partial": allow_partial,
        },
        headers,
    )
    if status == 201:
        typer.echo(json.dumps(body, indent=2))
        typer.echo(
            f"held {body.get('quantity')} of {sku} for {channel} at {body.get('location')}: "
            f"reservation {body.get('reservation_id')}",
            err=True,
        )
        return
    if status == 409 and body.get("error") == "insufficient_stock":
        typer.echo(json.dumps(body, indent=2))
        typer.echo(
            f"refused: {channel} may have {body.get('available')} of {sku}, asked for {quantity}",
            err=True,
        )
        raise typer.Exit(1)
    _http_error(status, body)


def _reservation_action(
    reservation_id: str, method: str, suffix: str, url: str | None, api_key: str | None
) -> None:
    settings = _settings()
    quoted = urllib.parse.quote(reservation_id, safe="")
    status, body = _call(
        method,
        f"{_worker_url(settings, url)}/v1/reservations/{quoted}{suffix}",
        None,
        _auth(api_key),
    )
    if status != 200:
        _http_error(status, body)
    typer.echo(json.dumps(body, indent=2))


@reservation_app.command("show")
def reservation_show(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """A reservation: held, or how it ended (confirmed, released, expired). Exit 2 if
    unknown."""
    _reservation_action(reservation_id, "GET", "", url, api_key)


@reservation_app.command("release")
def reservation_release(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """Release a held reservation (its units become available). Exit 2 if it is not held."""
    _reservation_action(reservation_id, "DELETE", "", url, api_key)


@reservation_app.command("confirm")
def reservation_confirm(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """Confirm a held reservation: it becomes an open order line (units stay reserved until
    FULFILLED). Exit 2 if it is not held."""
    _reservation_action(reservation_id, "POST", "/confirm", url, api_key)


# -- replay ------------------------------------------------------------------------------------


@app.command()
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
    settings = _settings()
    from confluent_kafka import KafkaException

    from stocksync.codec.rows import row_from_bytes, row_to_bytes
    from stocksync.progress import Progress
    from stocksync.replay import (
        plan_replay,
        read_table,
        replay_consumer,
        replay_log,
        worker_lag,
    )
    from stocksync.table_diff import diff_tables
    from stocksync.topology_log import read_latest_topology

    skus = list(sku) if sku else None
    consumer = replay_consumer(settings)
    try:
        topology = read_latest_topology(settings) or settings.load_topology()
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
    replayed = {s: row_to_bytes(row) for s, row in sorted(rows.items())}
    if store is not None:
        _write_store(store, replayed)
    if not diff:
        for row in (rows[s] for s in replayed):
            typer.echo(json.dumps(_row_summary(row)))
        typer.echo(f"{len(replayed)} SKU(s) replayed", err=True)
        return
    if lag:
        typer.echo(
            f"warning: the worker (group {settings.app_id}) has not committed {lag} of the "
            f"input records read; SKUs they touch may show as different: run again once it "
            f"has caught up",
            err=True,
        )
    if skus is not None:
        live = {s: v for s, v in live.items() if s in skus}
    result = diff_tables(replayed, live, row_from_bytes, skus)
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
    equal = result.equal(strict)
    typer.echo(
        f"{'equal' if equal else 'DIFFERENT'}: {len(replayed)} SKU(s) replayed, {len(live)} "
        f"in the live table, {result.compared} compared"
    )
    if not equal:
        raise typer.Exit(1)


def _row_summary(row: object) -> dict[str, object]:
    from stocksync.domain.state import SkuRow

    assert isinstance(row, SkuRow)
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
    from rocksdict import Rdict

    if path.exists() and any(path.iterdir()):
        typer.echo(f"error: {path} is not empty; --store needs a fresh folder", err=True)
        raise typer.Exit(2)
    db = Rdict(str(path))
    try:
        for name, value in rows.items():
            db[name.encode()] = value
    finally:
        db.close()
    typer.echo(f"replayed rows written to {path}", err=True)


# -- dead-letter redrive -----------------------------------------------------------------------


@dead_letter_app.command("redrive")
def dead_letter_redrive(
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            "--error",
            help="Only dead letters of this class (their `error` field, e.g. invalid)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Re-drive at most this many; 0 = all")] = 0,
    dry_run: Annotated[
        bool, typer.Option(help="List what would be re-driven; send and record nothing")
    ] = False,
) -> None:
    """Send dead-lettered messages again: each one's original bytes, with its original key,
    to the topic it came from (stock, sale or command topic), e.g. after fixing the topology
    that made them invalid. Idempotent producer, murmur2 partitioning.

    A dead letter's class is its `error` field (undecodable, unknown_schema, invalid,
    key_mismatch, wrong_partition, source_mismatch, internal); `--reason` picks one. Progress
    is recorded per class in a consumer group `<app_id>-redrive-<class>` on the dead-letter
    topic, committed after Kafka acknowledged the messages: running it twice never sends a
    dead letter twice, and a run limited to one class leaves the others for later. A message
    whose cause is not fixed is dead-lettered again. Exit 0, or 2 if a message was not
    acknowledged (it stays for the next run)."""
    settings = _settings()
    from confluent_kafka import KafkaException

    from stocksync.progress import Progress
    from stocksync.redrive import progress_group, redrive

    holder: list[Progress] = []

    def on_total(total: int) -> None:
        holder.append(Progress("redrive: dead letters read", total))

    def on_read(n: int) -> None:
        holder[0].advance(n)

    try:
        report = redrive(
            settings,
            reason=reason,
            limit=limit,
            dry_run=dry_run,
            on_total=on_total,
            on_read=on_read,
        )
    except (KafkaException, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if holder:
        holder[0].done()
    verb = "would re-drive" if dry_run else "re-driven"
    for letter in report.sent:
        key = (letter.key or b"").decode(errors="replace")
        typer.echo(
            f"{verb}: dead letter {letter.partition}:{letter.offset} error={letter.kind} "
            f"-> {letter.topic} key={key}"
        )
    typer.echo(
        f"{verb} {report.redriven}; already re-driven {report.already}; other classes "
        f"{report.other_reason}; not re-drivable {report.not_redrivable}; left by --limit "
        f"{report.left}"
    )
    if not dry_run and report.redriven:
        typer.echo(
            f"progress recorded in consumer group(s) {progress_group(settings, '<class>')}",
            err=True,
        )
    if report.failed:
        for failure in report.failed:
            typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(2)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:  # any command: the message names the setting and the fix
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
