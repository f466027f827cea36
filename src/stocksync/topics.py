"""Every topic name in one place. Event topics are keyed by SKU and co-partitioned with the
ATP table's changelog."""

from __future__ import annotations

from dataclasses import dataclass

ATP_TABLE = "atp"
HISTORY_TABLE = "atp-history"
RESERVATION_INDEX_TABLE = "reservation-index"


@dataclass(frozen=True, slots=True)
class TopicNames:
    prefix: str = "stocksync."
    app_id: str = "stocksync"
    # Sources with event topics of their own (`<prefix>src.<source>.stock-events` and
    # `.sale-events`), so Kafka ACLs can let a channel's principal write only its own events;
    # the worker refuses events whose `source` is not the topic's.
    own_topic_sources: tuple[str, ...] = ()

    @property
    def stock_events(self) -> str:
        return f"{self.prefix}stock-events"

    @property
    def sale_events(self) -> str:
        return f"{self.prefix}sale-events"

    @property
    def channel_atp(self) -> str:
        return f"{self.prefix}channel-atp"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}dead-letter"

    @property
    def reservation_commands(self) -> str:
        return f"{self.prefix}reservation-commands"

    @property
    def reservation_replies(self) -> str:
        return f"{self.prefix}reservation-replies"

    @property
    def reservation_index_changelog(self) -> str:
        return f"{self.app_id}-{RESERVATION_INDEX_TABLE}-changelog"

    @property
    def published_quantities(self) -> str:
        # compacted ledger written by channel connectors: what each channel acknowledged
        return f"{self.prefix}published-quantities"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def topology(self) -> str:
        # compacted, one partition: the versions of the locations/channels configuration
        return f"{self.prefix}topology"

    @property
    def history_changelog(self) -> str:
        return f"{self.app_id}-{HISTORY_TABLE}-changelog"

    @property
    def atp_changelog(self) -> str:
        # faust's naming for a table's changelog: <app id>-<table name>-changelog
        return f"{self.app_id}-{ATP_TABLE}-changelog"

    @property
    def assignor_leader(self) -> str:
        # faust elects its partition-assignment leader through this one-partition topic.
        return f"{self.app_id}-__assignor-__leader"

    def stock_events_of(self, source: str) -> str:
        """Where `source` writes stock events: its own topic if it has one, else the shared."""
        if source in self.own_topic_sources:
            return f"{self.prefix}src.{source}.stock-events"
        return self.stock_events

    def sale_events_of(self, source: str) -> str:
        if source in self.own_topic_sources:
            return f"{self.prefix}src.{source}.sale-events"
        return self.sale_events

    def source_topics(self) -> dict[str, str]:
        """Each source-owned event topic -> its source."""
        topics: dict[str, str] = {}
        for source in self.own_topic_sources:
            topics[self.stock_events_of(source)] = source
            topics[self.sale_events_of(source)] = source
        return topics

    @property
    def input_topics(self) -> tuple[str, ...]:
        """What the fold agent consumes, co-partitioned by SKU."""
        return (
            self.stock_events,
            self.sale_events,
            *self.source_topics(),
            self.reservation_commands,
        )
