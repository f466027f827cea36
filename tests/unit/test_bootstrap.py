"""What an entry point gets from the composition root, and the errors that stop it first."""

from __future__ import annotations

from pathlib import Path

import pytest

from stocksync.bootstrap import api_keys, load_topology
from stocksync.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "deploy" / "config" / "topology.yaml"
GOOD_KEY = "a" * 64


def test_a_bad_api_keys_file_is_a_config_error_with_the_entry_named(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: web, sha256: nothex, channel: web}\n")
    settings = load_settings(api_keys_file=path)
    with pytest.raises(ConfigError) as raised:
        api_keys(settings, load_topology(TOPOLOGY))
    assert f"STOCKSYNC_API_KEYS_FILE: {path} keys[0] (web): sha256 must be 64 hex" in str(
        raised.value
    )


def test_a_key_for_a_channel_the_topology_does_not_know_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - {{name: moon, sha256: {GOOD_KEY}, channel: moon-shop}}\n")
    with pytest.raises(ConfigError, match="moon-shop"):
        api_keys(load_settings(api_keys_file=path), load_topology(TOPOLOGY))


def test_keys_are_read_with_the_settings_defaults_and_none_means_no_key_needed(
    tmp_path: Path,
) -> None:
    topology = load_topology(TOPOLOGY)
    assert api_keys(load_settings(), topology) is None
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - {{name: web, sha256: {GOOD_KEY}, channel: web}}\n")
    keys = api_keys(load_settings(api_keys_file=path, api_rate_per_s=7.0), topology)
    assert keys is not None and len(keys) == 1


def test_a_missing_or_broken_topology_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"STOCKSYNC_TOPOLOGY_FILE: .* does not exist"):
        load_topology(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("channels: [\n")
    with pytest.raises(ConfigError, match=r"STOCKSYNC_TOPOLOGY_FILE: .* is not valid YAML"):
        load_topology(broken)
