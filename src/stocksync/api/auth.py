"""API keys for the HTTP API: who is calling, which channel it may see, how fast it may ask.

Off when no keys file is configured (STOCKSYNC_API_KEYS_FILE unset): every request is served.
With keys, every request except the open paths (health, readiness, metrics, the dashboard page
itself) carries a key, as `Authorization: Bearer <key>` or `X-API-Key: <key>`:

  no key, or a key not in the file   401 {"error": "unauthorized"}
  another channel's data             403 {"error": "forbidden"}      (handlers ask `scope_of`)
  over the key's rate                429 {"error": "rate_limited"} + Retry-After

The keys file (YAML or JSON) stores SHA-256 hashes of the keys, never the keys themselves:

  keys:
    - name: web-checkout            # shown in logs and metrics, never the key
      sha256: 9f86d08...            # printf %s "$KEY" | sha256sum
      channel: web                  # or "*": an operator key that sees every channel
      rate_per_s: 50                # optional, default STOCKSYNC_API_RATE_PER_S; 0 = no limit
      burst: 100                    # optional, default STOCKSYNC_API_BURST

`python -m stocksync.api.auth new-key --name web-checkout --channel web` prints a fresh key and
the entry to paste.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

from stocksync.api.responses import error
from stocksync.errors import ConfigError

ADMIN = "*"
# "/": the API's index lists paths only, so a client can find its way before it has a key
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/livez", "/metrics", "/dashboard"})
OPEN_PREFIXES = ("/dashboard/",)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class KeysFileError(ConfigError):
    """The API keys file is missing or wrong; the message names the entry and the fix."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    channel: str  # a channel id, or ADMIN
    rate_per_s: float  # 0 = no limit
    burst: int

    @property
    def is_admin(self) -> bool:
        return self.channel == ADMIN


PRINCIPAL = web.RequestKey("stocksync_principal", ApiKey)  # the key a request came with


@dataclass(slots=True)
class TokenBucket:
    """`burst` requests at once, then `rate_per_s` a second. The clock is injectable."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until one may."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class ApiKeys:
    """The keys by hash, and one rate bucket per key."""

    def __init__(self, keys: dict[str, ApiKey], clock: Callable[[], float] = time.monotonic):
        self._by_hash = keys
        self._buckets = {
            digest: TokenBucket(key.rate_per_s, key.burst, clock) for digest, key in keys.items()
        }

    def __len__(self) -> int:
        return len(self._by_hash)

    def find(self, presented: str) -> ApiKey | None:
        # The lookup is by the hash of what was presented: its timing tells nothing about keys.
        return self._by_hash.get(hash_key(presented))

    def wait_for(self, presented: str) -> float:
        bucket = self._buckets.get(hash_key(presented))
        return 0.0 if bucket is None else bucket.take()


def parse_keys(
    document: Any,
    *,
    origin: str,
    channels: Iterable[str] | None = None,
    default_rate_per_s: float = 100.0,
    default_burst: int = 200,
    clock: Callable[[], float] = time.monotonic,
) -> ApiKeys:
    """ApiKeys from the parsed keys file; KeysFileError names the entry and the fix."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeysFileError(
            f"STOCKSYNC_API_KEYS_FILE: {origin} needs a non-empty `keys:` list of "
            f"{{name, sha256, channel}} entries"
        )
    known = set(channels) if channels is not None else None
    keys: dict[str, ApiKey] = {}
    names: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"STOCKSYNC_API_KEYS_FILE: {origin} keys[{i}]"
        if not isinstance(entry, dict):
            raise KeysFileError(f"{where}: must be a mapping with name, sha256 and channel")
        unknown = set(entry) - {"name", "sha256", "key", "channel", "rate_per_s", "burst"}
        if unknown:
            raise KeysFileError(
                f"{where}: unknown field(s) {sorted(unknown)}; use name, sha256 (or key), "
                f"channel, rate_per_s, burst"
            )
        name = str(entry.get("name") or "")
        if not name or name in names:
            raise KeysFileError(f"{where}: give every key a unique `name` (got {name!r})")
        names.add(name)
        if "sha256" in entry:
            digest = str(entry["sha256"]).strip().lower()
            if not _SHA256.match(digest):
                raise KeysFileError(
                    f'{where} ({name}): sha256 must be 64 hex digits: printf %s "$KEY" | sha256sum'
                )
        elif "key" in entry:
            # Accepted for development; a file of hashes leaks nothing when read.
            digest = hash_key(str(entry["key"]))
        else:
            raise KeysFileError(f"{where} ({name}): give `sha256` of the key (or `key`)")
        if digest in keys:
            raise KeysFileError(f"{where} ({name}): the same key as {keys[digest].name!r}")
        channel = str(entry.get("channel") or "")
        if not channel:
            raise KeysFileError(f'{where} ({name}): set `channel` to a channel id, or "*"')
        if known is not None and channel != ADMIN and channel not in known:
            raise KeysFileError(
                f"{where} ({name}): channel {channel!r} is not in the topology; known: "
                f'{", ".join(sorted(known))} (or "*" for an operator key)'
            )
        try:
            rate = float(entry.get("rate_per_s", default_rate_per_s))
            burst = int(entry.get("burst", default_burst))
        except (TypeError, ValueError):
            raise KeysFileError(f"{where} ({name}): rate_per_s and burst must be numbers") from None
        if rate < 0 or burst < 1:
            raise KeysFileError(f"{where} ({name}): rate_per_s >= 0 (0 = no limit), burst >= 1")
        keys[digest] = ApiKey(name=name, channel=channel, rate_per_s=rate, burst=burst)
    return ApiKeys(keys, clock)


def load_keys(
    path: Path,
    *,
    channels: Iterable[str] | None = None,
    default_rate_per_s: float = 100.0,
    default_burst: int = 200,
) -> ApiKeys:
    try:
        document = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except FileNotFoundError:
        raise KeysFileError(
            f"STOCKSYNC_API_KEYS_FILE: {path} does not exist; create it (see docs/operations.md) "
            f"or unset the variable to serve without keys"
        ) from None
    except yaml.YAMLError as exc:
        raise KeysFileError(f"STOCKSYNC_API_KEYS_FILE: {path} is not valid YAML: {exc}") from None
    return parse_keys(
        document,
        origin=str(path),
        channels=channels,
        default_rate_per_s=default_rate_per_s,
        default_burst=default_burst,
    )


# -- what handlers ask ------------------------------------------------------------------------


def principal_of(request: web.Request) -> ApiKey | None:
    """The key the request came with; None when the API runs without keys."""
    return request.get(PRINCIPAL)


def scope_of(request: web.Request) -> str | None:
    """The one channel the caller may see, or None when it may see every channel."""
    principal = principal_of(request)
    return None if principal is None or principal.is_admin else principal.channel


def forbid_channel(request: web.Request, channel: str | None) -> web.Response | None:
    """403 if the caller's key is for another channel than `channel` (None: every channel)."""
    scope = scope_of(request)
    if scope is None or channel == scope:
        return None
    asked = "every channel" if channel is None else f"channel {channel!r}"
    return error(
        403,
        "forbidden",
        f"the key {principal_of(request).name!r} is for channel {scope!r} and may not "  # type: ignore[union-attr]
        f"see {asked}",
        channel=scope,
    )


def require_admin(request: web.Request, what: str) -> web.Response | None:
    scope = scope_of(request)
    if scope is None:
        return None
    return error(
        403, "forbidden", f'{what} shows every channel; it needs an operator key (channel "*")'
    )


# -- the middleware ----------------------------------------------------------------------------


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = request.headers.get("X-API-Key", "").strip()
    return key or None


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def unauthorized(message: str) -> web.Response:
    response = error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="stocksync"'
    return response


def auth_middleware(
    keys: ApiKeys, on_reject: Callable[[str, str], None] | None = None
) -> Middleware:
    """Authenticate and rate-limit every request but the open paths. `on_reject(reason, key
    name)` counts rejections (metrics)."""

    def rejected(reason: str, name: str) -> None:
        if on_reject is not None:
            on_reject(reason, name)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_open(request.path):
            return await handler(request)
        presented = presented_key(request)
        if presented is None:
            rejected("missing_key", "")
            return unauthorized(
                "this API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        principal = keys.find(presented)
        if principal is None:
            rejected("unknown_key", "")
            return unauthorized("the API key is not valid (not in STOCKSYNC_API_KEYS_FILE)")
        wait = keys.wait_for(presented)
        if wait > 0:
            rejected("rate_limited", principal.name)
            retry_after = max(1, math.ceil(wait))
            response = error(
                429,
                "rate_limited",
                f"key {principal.name!r} is limited to {principal.rate_per_s:g} requests/s "
                f"(burst {principal.burst}); retry after {retry_after}s",
                retry_after_s=round(wait, 3),
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        request[PRINCIPAL] = principal
        return await handler(request)

    return authenticate


# -- new keys ----------------------------------------------------------------------------------


def new_key_entry(name: str, channel: str) -> tuple[str, str]:
    """A fresh random key and the keys-file entry (with its hash) to paste."""
    key = "ssk_" + secrets.token_urlsafe(32)
    entry = yaml.safe_dump(
        [{"name": name, "sha256": hash_key(key), "channel": channel}], sort_keys=False
    )
    return key, entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stocksync.api.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new-key", help="print a fresh key and its keys-file entry")
    new.add_argument("--name", required=True)
    new.add_argument("--channel", required=True, help='a channel id, or "*" for an operator')
    hashed = sub.add_parser("hash", help="print the sha256 of a key")
    hashed.add_argument("key")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(hash_key(args.key))
        return
    key, entry = new_key_entry(args.name, args.channel)
    print(f"key (give it to the client, it is not stored): {key}")
    print("entry for STOCKSYNC_API_KEYS_FILE under `keys:`:")
    print(entry, end="")


if __name__ == "__main__":
    main()
