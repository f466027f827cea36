"""Topology configuration: what parse_topology builds, and errors that name the offending key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from builders import TOPOLOGY_DATA

from stocksync.domain.topology import ChannelPolicy, TopologyError, parse_topology


def config(**changes: Any) -> dict[str, Any]:
    """A deep copy of the test topology; `changes` replace top-level keys."""
    data = copy.deepcopy(TOPOLOGY_DATA)
    data.update(changes)
    return data


def rejected(data: Any, origin: str = "topology") -> str:
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, origin=origin)
    return str(caught.value)


# --- what it builds -----------------------------------------------------------------------


def test_channel_sources_expand_groups_into_their_locations() -> None:
    topo = parse_topology(config())
    assert topo.channels["web"].locations == ("dc-1", "dc-2", "store-1")
    assert topo.channels["marketplace"].locations == ("dc-1", "dc-2")
    assert topo.channels["pos-store-1"].locations == ("store-1",)


def test_location_named_both_directly_and_through_a_group_is_counted_once() -> None:
    data = config()
    data["channels"]["web"]["sources"] = ["dcs", "dc-1", "store-1"]
    assert parse_topology(data).channels["web"].locations == ("dc-1", "dc-2", "store-1")


def test_policy_and_version_are_read_and_missing_settings_default() -> None:
    topo = parse_topology(config())
    assert topo.version == 3
    assert topo.channels["marketplace"].policy == ChannelPolicy(10, 1, 50)
    assert topo.channels["web"].policy == ChannelPolicy(0, 0, None)


def test_locations_keep_kind_groups_and_safety_stock() -> None:
    topo = parse_topology(config())
    assert topo.locations["dc-2"].kind == "dc"
    assert topo.locations["dc-2"].groups == ("dcs",)
    assert topo.default_safety_stock("dc-2") == 2
    assert topo.default_safety_stock("dc-1") == 0


def test_location_with_no_settings_is_a_store_without_safety_stock() -> None:
    data = config(locations={"shop": None})
    data["channels"] = {"pos": {"sources": ["shop"]}}
    topo = parse_topology(data)
    assert (topo.locations["shop"].kind, topo.default_safety_stock("shop")) == ("store", 0)


def test_channels_for_a_location_lists_every_channel_that_may_sell_it() -> None:
    topo = parse_topology(config())
    assert set(topo.channels_for("dc-1")) == {"web", "marketplace"}
    assert set(topo.channels_for("store-1")) == {"web", "pos-store-1"}
    assert topo.channels_for("unknown-store") == ()
    assert topo.default_safety_stock("unknown-store") == 0


# --- errors name the key ------------------------------------------------------------------


def test_unknown_channel_source_is_named_with_the_known_ids() -> None:
    data = config()
    data["channels"]["web"]["sources"] = ["dcs", "store-9"]
    message = rejected(data)
    assert "channels.web.sources" in message
    assert "store-9" in message
    assert "dc-1" in message  # known ids help fix a typo


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("buffer_units", -1),
        ("buffer_units", "two"),
        ("buffer_percent", 12.5),
        ("cap", True),
        ("cap", -5),
    ],
)
def test_bad_policy_value_is_named(setting: str, value: Any) -> None:
    data = config()
    data["channels"]["marketplace"]["policy"][setting] = value
    message = rejected(data)
    assert f"channels.marketplace.policy.{setting}" in message
    assert repr(value) in message


def test_buffer_percent_above_100_is_refused() -> None:
    data = config()
    data["channels"]["marketplace"]["policy"]["buffer_percent"] = 101
    message = rejected(data)
    assert "channels.marketplace.policy.buffer_percent" in message
    assert "101" in message


@pytest.mark.parametrize("bad_id", ["dc:1", " dc-1", "dc-1 ", ""])
def test_location_id_with_colon_or_surrounding_space_is_refused(bad_id: str) -> None:
    message = rejected(config(locations={bad_id: {}}))
    assert f"locations.{bad_id}" in message
    assert "':'" in message


@pytest.mark.parametrize("bad_id", ["web:eu", "web "])
def test_channel_id_with_colon_or_space_is_refused(bad_id: str) -> None:
    message = rejected(config(channels={bad_id: {"sources": ["dc-1"]}}))
    assert f"channels.{bad_id}" in message


@pytest.mark.parametrize("bad_id", ["store 1", "store\t1"])
def test_location_id_with_an_inner_space_is_refused(bad_id: str) -> None:
    data = config(locations={bad_id: {}}, channels={"pos": {"sources": [bad_id]}})
    assert f"locations.{bad_id}" in rejected(data)


def test_group_id_with_colon_is_refused() -> None:
    message = rejected(config(locations={"dc-1": {"groups": ["dc:eu"]}}))
    assert "locations.dc-1.groups" in message


def test_groups_given_as_a_single_string_is_refused() -> None:
    data = config(locations={"dc-1": {"groups": "dcs"}}, channels={"web": {"sources": ["dc-1"]}})
    assert "locations.dc-1.groups" in rejected(data)


def test_unknown_location_setting_is_named() -> None:
    data = config()
    data["locations"]["dc-1"]["safety"] = 3
    message = rejected(data)
    assert "locations.dc-1" in message
    assert "safety" in message


def test_unknown_channel_setting_is_named() -> None:
    data = config()
    data["channels"]["web"]["buffer"] = 3
    message = rejected(data)
    assert "channels.web" in message
    assert "buffer" in message


def test_unknown_policy_setting_is_named() -> None:
    data = config()
    data["channels"]["web"]["policy"] = {"buffer_pct": 5}
    message = rejected(data)
    assert "channels.web.policy" in message
    assert "buffer_pct" in message


def test_negative_safety_stock_is_named() -> None:
    data = config()
    data["locations"]["dc-1"]["safety_stock"] = -1
    assert "locations.dc-1.safety_stock" in rejected(data)


@pytest.mark.parametrize("version", [None, 0, "1", True])
def test_version_must_be_a_positive_integer(version: Any) -> None:
    assert "version" in rejected(config(version=version))


def test_id_used_as_both_location_and_group_is_refused() -> None:
    data = config()
    data["locations"]["store-1"]["groups"] = ["dc-1"]
    message = rejected(data)
    assert "dc-1" in message
    assert "location and group" in message


@pytest.mark.parametrize("sources", [None, [], "dcs"])
def test_channel_without_a_list_of_sources_is_refused(sources: Any) -> None:
    data = config()
    data["channels"]["web"]["sources"] = sources
    assert "channels.web.sources" in rejected(data)


@pytest.mark.parametrize("key", ["locations", "channels"])
def test_missing_or_empty_section_is_named(key: str) -> None:
    assert key in rejected(config(**{key: {}}))


def test_error_names_the_file_it_came_from() -> None:
    data = config()
    data["channels"]["web"]["sources"] = ["nowhere"]
    assert rejected(data, origin="deploy/config/topology.yaml").startswith(
        "deploy/config/topology.yaml: channels.web.sources"
    )


def test_non_mapping_document_is_refused() -> None:
    assert "mapping" in rejected(["version", 1])


# --- the sourcing rule ----------------------------------------------------------------------


def with_sourcing(sourcing: Any) -> dict[str, Any]:
    data = config()
    data["channels"]["web"]["sourcing"] = sourcing
    return data


def test_sourcing_lists_tiers_in_order_and_the_rest_last() -> None:
    web = parse_topology(with_sourcing(["store-1"])).channels["web"]
    assert web.tiers() == (("store-1",), ("dc-1", "dc-2"))
    # a group is one tier of its locations
    web = parse_topology(with_sourcing(["dcs"])).channels["web"]
    assert web.tiers() == (("dc-1", "dc-2"), ("store-1",))
    # without sourcing, all the channel's locations are one tier
    assert parse_topology(config()).channels["web"].tiers() == (("dc-1", "dc-2", "store-1"),)


@pytest.mark.parametrize(
    ("sourcing", "message"),
    [
        (["mars"], "'mars' names ['mars'], which the channel does not sell from"),
        (["dc-1", "dcs"], "['dc-1'] listed more than once"),
        ("dcs", "list location or group ids in the order reservations take stock from them"),
        ([], "list location or group ids"),
    ],
)
def test_a_wrong_sourcing_names_the_key_and_the_fix(sourcing: Any, message: str) -> None:
    error = rejected(with_sourcing(sourcing))
    assert error.startswith("topology: channels.web.sourcing: ")
    assert message in error
