"""Topic names, including source-owned event topics (STOCKSYNC_SOURCE_TOPICS)."""

from __future__ import annotations

import pytest

from stocksync.config import ConfigError, load_settings
from stocksync.provision import topic_specs


def test_sources_with_own_topics_are_consumed_and_provisioned() -> None:
    settings = load_settings(topic_prefix="shop.", source_topics="pos-store-1, web")
    topics = settings.topics
    assert topics.stock_events_of("pos-store-1") == "shop.src.pos-store-1.stock-events"
    assert topics.sale_events_of("web") == "shop.src.web.sale-events"
    # a source without its own topics keeps writing to the shared ones
    assert topics.sale_events_of("wms") == "shop.sale-events"
    own = set(topics.source_topics())
    assert own <= set(topics.input_topics)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    for name in own:
        # event topics are the source of truth: kept forever, co-partitioned with the table
        assert (
            specs[name].config["retention.ms"] == specs["shop.sale-events"].config["retention.ms"]
        )
        assert specs[name].partitions == settings.partitions


def test_a_source_that_cannot_be_a_topic_name_is_refused_with_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(source_topics="web, pos store 1")
    assert "STOCKSYNC_SOURCE_TOPICS" in str(error.value)
    assert "pos store 1" in str(error.value)
