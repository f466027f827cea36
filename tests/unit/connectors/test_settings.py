"""Connector configuration: STOCKSYNC_CONNECTOR_* with errors that name the key and the fix."""

from __future__ import annotations

import pytest

from stocksync.config import ConfigError
from stocksync.connectors.settings import load_connector_settings
from stocksync.domain.topology import parse_topology

TOPOLOGY = parse_topology(
    {
        "version": 3,
        "locations": {"dc": {"kind": "dc"}},
        "channels": {
            "web": {"sources": ["dc"]},
            "amazon": {"sources": ["dc"], "policy": {"low_stock": 7}},
        },
    }
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STOCKSYNC_CONNECTOR_"):
            monkeypatch.delenv(key)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKSYNC_CONNECTOR_CHANNEL", "amazon")
    monkeypatch.setenv("STOCKSYNC_CONNECTOR_ENDPOINT_URL", "http://127.0.0.1:8182/")
    monkeypatch.setenv("STOCKSYNC_CONNECTOR_RATE_PER_S", "2.5")
    config = load_connector_settings(burst=3)
    assert (config.channel, config.endpoint_url, config.rate_per_s, config.burst) == (
        "amazon",
        "http://127.0.0.1:8182",
        2.5,
        3,
    )
    assert config.resync_interval_s == 0
    assert config.drift_rule.percent == 5.0
    assert config.consumer_group("stocksync") == "stocksync-connector-amazon"
    assert config.low_stock(TOPOLOGY) == 7


def test_a_missing_channel_names_the_variable_the_option_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        load_connector_settings(endpoint_url="http://x")
    message = str(info.value)
    assert "STOCKSYNC_CONNECTOR_CHANNEL (--channel)" in message
    assert "a channel id from the topology" in message


def test_a_bad_budget_names_the_key_and_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_connector_settings(channel="web", endpoint_url="http://x", rate_per_s=0)
    assert "STOCKSYNC_CONNECTOR_RATE_PER_S (--rate)" in str(info.value)
    assert "got 0" in str(info.value)


def test_an_endpoint_without_a_scheme_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"STOCKSYNC_CONNECTOR_ENDPOINT_URL \(--endpoint\).*http://"
    ):
        load_connector_settings(channel="web", endpoint_url="127.0.0.1:8181")


def test_a_channel_outside_the_topology_is_refused_with_the_known_ones() -> None:
    config = load_connector_settings(channel="ebay", endpoint_url="http://x")
    with pytest.raises(ConfigError, match="'ebay' is not a channel of topology version 3"):
        config.check_channel(TOPOLOGY)
