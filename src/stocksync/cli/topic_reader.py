"""A throwaway Kafka consumer for the commands that print a topic (`projections tail`,
`dead-letter inspect`): a fresh group, nothing committed, and one clear error (exit 2) when the
broker does not answer or the topic does not exist."""

from __future__ import annotations

import time

import typer
from confluent_kafka import Consumer, KafkaException

from stocksync.adapters.kafka import clients
from stocksync.config import Settings


def topic_reader(settings: Settings, topic: str, from_beginning: bool) -> Consumer:
    errors: list[str] = []
    consumer = clients.group_consumer(
        settings,
        f"stocksync-cli-{time.time_ns()}",
        offset_reset="earliest" if from_beginning else "latest",
        error_cb=lambda err: errors.append(err.str()),
        log_level=0,  # reasons are reported once, below, not as librdkafka log lines
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
