"""Locations, location groups and channels with their policies: versioned configuration data.

A channel may sell the stock of the locations its `sources` name (location ids or group ids).
Its policy turns the summed location ATP into the quantity the channel is told, in this order:
percentage buffer, then fixed buffer, then allocation cap, never below zero.

Its sourcing rule says where a reservation takes its units (domain/reservations.source_lines):
`sourcing` lists location or group ids in priority order, each entry one tier; the channel's
locations it does not list form a last tier. Tiers are used in order; within a tier, the
fewest locations, then the ones with the most stock (ties by id). Without `sourcing`, all the
channel's locations are one tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class TopologyError(ValueError):
    """The topology configuration is wrong; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    kind: str = "store"
    groups: tuple[str, ...] = ()
    safety_stock: int = 0


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    buffer_percent: int = 0  # whole percent of the summed ATP held back
    buffer_units: int = 0
    cap: int | None = None  # ring-fence: the channel never sees more than this
    low_stock: int = 0  # alert when the quantity falls to or below this (0: only at zero)

    def apply(self, raw_atp: int) -> int:
        held_back = raw_atp * self.buffer_percent // 100
        quantity = raw_atp - held_back - self.buffer_units
        if self.cap is not None and quantity > self.cap:
            quantity = self.cap
        return quantity if quantity > 0 else 0  # (not max(): a call, per channel and event)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    locations: tuple[str, ...]
    policy: ChannelPolicy = field(default_factory=ChannelPolicy)
    # the sourcing rule's tiers, in priority order, together naming every location once
    # (empty: one tier of all the locations)
    sourcing: tuple[tuple[str, ...], ...] = ()

    def tiers(self) -> tuple[tuple[str, ...], ...]:
        return self.sourcing or (self.locations,)


@dataclass(frozen=True, slots=True)
class Topology:
    version: int
    locations: Mapping[str, Location]
    channels: Mapping[str, Channel]
    # What the fold looks up for every event, built once per configuration version:
    channels_by_location: Mapping[str, tuple[str, ...]] = field(
        init=False, repr=False, compare=False
    )
    # location -> its default safety stock (a location outside the topology has none)
    safety_stock_by_location: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[str]] = {}
        for channel in self.channels.values():
            for loc in channel.locations:
                index.setdefault(loc, []).append(channel.id)
        object.__setattr__(
            self, "channels_by_location", {loc: tuple(chs) for loc, chs in index.items()}
        )
        object.__setattr__(
            self,
            "safety_stock_by_location",
            {loc: spec.safety_stock for loc, spec in self.locations.items()},
        )

    def default_safety_stock(self, location: str) -> int:
        return self.safety_stock_by_location.get(location, 0)

    def channels_for(self, location: str) -> tuple[str, ...]:
        """Channels that may sell stock held at the location (a location outside the topology
        is tracked but sells through no channel)."""
        return self.channels_by_location.get(location, ())


def _int(value: Any, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TopologyError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _ident(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value or ":" in value or any(c.isspace() for c in value):
        raise TopologyError(
            f"{key}: expected an id without spaces or ':' (it is part of projection keys), "
            f"got {value!r}"
        )
    return value


def parse_topology(data: Mapping[str, Any], origin: str = "topology") -> Topology:
    """Build a Topology from plain data (a parsed YAML/JSON document)."""
    if not isinstance(data, Mapping):
        raise TopologyError(f"{origin}: expected a mapping with version, locations, channels")
    version = _int(data.get("version"), f"{origin}: version", minimum=1)
    locations, groups = _parse_locations(data.get("locations"), origin)
    channels = _parse_channels(data.get("channels"), origin, locations, groups)
    return Topology(version=version, locations=locations, channels=channels)


def _parse_locations(
    raw_locations: Any, origin: str
) -> tuple[dict[str, Location], dict[str, list[str]]]:
    """The locations, and the location ids of each group."""
    if not isinstance(raw_locations, Mapping) or not raw_locations:
        raise TopologyError(f"{origin}: locations must map location ids to their settings")
    locations: dict[str, Location] = {}
    groups: dict[str, list[str]] = {}
    for loc_id, spec in raw_locations.items():
        location = _parse_location(loc_id, spec, f"{origin}: locations.{loc_id}")
        locations[loc_id] = location
        for group in location.groups:
            groups.setdefault(group, []).append(loc_id)
    clash = set(groups) & set(locations)
    if clash:
        raise TopologyError(f"{origin}: ids used both as location and group: {sorted(clash)}")
    return locations, groups


def _parse_location(loc_id: Any, spec: Any, key: str) -> Location:
    _ident(loc_id, key)
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise TopologyError(f"{key}: expected a mapping (kind, groups, safety_stock)")
    unknown = set(spec) - {"kind", "groups", "safety_stock"}
    if unknown:
        raise TopologyError(f"{key}: unknown setting(s) {sorted(unknown)}")
    raw_groups = spec.get("groups", [])
    if not isinstance(raw_groups, list):
        raise TopologyError(f"{key}.groups: expected a list of group ids, got {raw_groups!r}")
    loc_groups = tuple(_ident(g, f"{key}.groups") for g in raw_groups)
    return Location(
        id=loc_id,
        kind=str(spec.get("kind", "store")),
        groups=loc_groups,
        safety_stock=_int(spec.get("safety_stock", 0), f"{key}.safety_stock"),
    )


def _parse_channels(
    raw_channels: Any,
    origin: str,
    locations: Mapping[str, Location],
    groups: Mapping[str, list[str]],
) -> dict[str, Channel]:
    if not isinstance(raw_channels, Mapping) or not raw_channels:
        raise TopologyError(f"{origin}: channels must map channel ids to sources and policy")
    return {
        ch_id: _parse_channel(ch_id, spec, f"{origin}: channels.{ch_id}", locations, groups)
        for ch_id, spec in raw_channels.items()
    }


def _parse_channel(
    ch_id: Any,
    spec: Any,
    key: str,
    locations: Mapping[str, Location],
    groups: Mapping[str, list[str]],
) -> Channel:
    _ident(ch_id, key)
    if not isinstance(spec, Mapping):
        raise TopologyError(f"{key}: expected a mapping with sources and an optional policy")
    unknown = set(spec) - {"sources", "policy", "sourcing"}
    if unknown:
        raise TopologyError(f"{key}: unknown setting(s) {sorted(unknown)}")
    members = tuple(sorted(set(_channel_members(spec.get("sources"), key, locations, groups))))
    return Channel(
        id=ch_id,
        locations=members,
        policy=_parse_policy(spec.get("policy") or {}, f"{key}.policy"),
        sourcing=_parse_sourcing(spec.get("sourcing"), f"{key}.sourcing", members, groups),
    )


def _parse_sourcing(
    raw: Any, key: str, members: tuple[str, ...], groups: Mapping[str, list[str]]
) -> tuple[tuple[str, ...], ...]:
    """The sourcing rule's tiers: each listed location or group in order, then the channel's
    locations not listed."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise TopologyError(
            f"{key}: list location or group ids in the order reservations take stock from "
            f"them, e.g. [warehouse, stores]"
        )
    tiers: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for entry in raw:
        tier = tuple(sorted(groups[entry])) if entry in groups else (entry,)
        outside = [loc for loc in tier if loc not in members]
        if outside:
            raise TopologyError(
                f"{key}: {entry!r} names {outside}, which the channel does not sell from; "
                f"its sources give {list(members)}"
            )
        twice = placed.intersection(tier)
        if twice:
            raise TopologyError(f"{key}: {sorted(twice)} listed more than once")
        placed.update(tier)
        tiers.append(tier)
    rest = tuple(loc for loc in members if loc not in placed)
    if rest:
        tiers.append(rest)
    return tuple(tiers)


def _channel_members(
    sources: Any, key: str, locations: Mapping[str, Location], groups: Mapping[str, list[str]]
) -> list[str]:
    """The location ids a channel's sources name, groups expanded."""
    if not isinstance(sources, list) or not sources:
        raise TopologyError(f"{key}.sources: list the location or group ids it sells from")
    members: list[str] = []
    for source in sources:
        if source in locations:
            members.append(source)
        elif source in groups:
            members.extend(groups[source])
        else:
            raise TopologyError(
                f"{key}.sources: {source!r} is neither a location nor a group; "
                f"known: {sorted(locations) + sorted(groups)}"
            )
    return members


def _parse_policy(policy: Any, key: str) -> ChannelPolicy:
    if not isinstance(policy, Mapping):
        raise TopologyError(f"{key}: expected buffer_percent, buffer_units, cap and/or low_stock")
    unknown = set(policy) - {"buffer_percent", "buffer_units", "cap", "low_stock"}
    if unknown:
        raise TopologyError(f"{key}: unknown setting(s) {sorted(unknown)}")
    percent = _int(policy.get("buffer_percent", 0), f"{key}.buffer_percent")
    if percent > 100:
        raise TopologyError(f"{key}.buffer_percent: {percent} is above 100")
    cap = policy.get("cap")
    return ChannelPolicy(
        buffer_percent=percent,
        buffer_units=_int(policy.get("buffer_units", 0), f"{key}.buffer_units"),
        cap=None if cap is None else _int(cap, f"{key}.cap"),
        low_stock=_int(policy.get("low_stock", 0), f"{key}.low_stock"),
    )
