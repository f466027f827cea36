"""Errors raised across layers that must not import each other: configuration is checked by
stocksync.config and by the modules it validates with (the API keys file, stocksync.api.auth)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the key and how to fix it."""
