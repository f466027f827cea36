"""Ask one broker which Kafka it is: an ApiVersions request (v3) over a plain socket.

Neither librdkafka's Python binding nor the admin API says which release a broker runs (no
broker config names it in Kafka 4), but every broker answers ApiVersions, before any login,
on every listener (SASL clients send it first themselves), with the API versions it speaks
and its feature levels: `metadata.version` maps to the release (doctor/releases.py). So this
speaks the few bytes of that one request itself.

`encode_request` and `parse_response` are pure; `probe` is the socket.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

API_VERSIONS_KEY = 18
REQUEST_VERSION = 3  # the first flexible version: the one carrying feature levels
CLIENT_ID = b"stocksync-doctor"
MAX_RESPONSE_BYTES = 1 << 20
# tagged fields of ApiVersionsResponse v3+
SUPPORTED_FEATURES_TAG = 0
FINALIZED_FEATURES_TAG = 2


class ApiVersionsError(RuntimeError):
    """The broker did not answer ApiVersions, or answered something else."""


@dataclass(frozen=True, slots=True)
class ApiVersions:
    error_code: int  # 0: fine; 35 UNSUPPORTED_VERSION (a broker older than Kafka 2.4)
    apis: Mapping[int, tuple[int, int]]  # API key -> (min, max) version
    # feature -> (min, max) level this broker's software supports
    supported_features: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # feature -> (min, max) level the cluster has finalized (what is in force)
    finalized_features: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def encode_request(correlation_id: int = 1) -> bytes:
    """ApiVersionsRequest v3 with request header v2, size-prefixed."""
    header = struct.pack(">hhih", API_VERSIONS_KEY, REQUEST_VERSION, correlation_id, len(CLIENT_ID))
    header += CLIENT_ID + b"\x00"  # no tagged fields
    body = _compact_string(b"stocksync") + _compact_string(b"doctor") + b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def parse_response(payload: bytes) -> ApiVersions:
    """An ApiVersionsResponse (v3, or the v0 body a broker too old for v3 answers with), after
    its size prefix. Raises ApiVersionsError on bytes that are not one."""
    try:
        return _parse(_Reader(payload))
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ApiVersionsError(f"not an ApiVersions response: {exc}") from None


def probe(host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> ApiVersions:
    """Ask the broker at host:port. Raises OSError (not reachable) or ApiVersionsError."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        conn: socket.socket = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        try:
            conn.sendall(encode_request())
            (size,) = struct.unpack(">i", _read_exactly(conn, 4))
            if not 0 < size <= MAX_RESPONSE_BYTES:
                raise ApiVersionsError(f"a response of {size} bytes is not ApiVersions")
            return parse_response(_read_exactly(conn, size))
        finally:
            if conn is not raw:
                conn.close()


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ApiVersionsError("the broker closed the connection before answering")
        chunks += chunk
    return bytes(chunks)


def _compact_string(value: bytes) -> bytes:
    return bytes([len(value) + 1]) + value  # (short strings: one varint byte)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str:
        size = self.uvarint() - 1
        text = self.data[self.at : self.at + size].decode()
        self.at += size
        return text

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.at += self.uvarint()


def _parse(r: _Reader) -> ApiVersions:
    r.take(">i")  # correlation id (ApiVersions answers with response header v0 always)
    (error_code,) = r.take(">h")
    if error_code != 0:
        # an older broker answers v0's body (int32 array length) listing what it speaks
        count = r.take(">i")[0]
        apis = {}
        for _ in range(max(0, count)):
            key, low, high = r.take(">hhh")
            apis[key] = (low, high)
        return ApiVersions(error_code, apis)
    apis = {}
    for _ in range(r.uvarint() - 1):
        key, low, high = r.take(">hhh")
        r.skip_tags()
        apis[key] = (low, high)
    r.take(">i")  # throttle time
    supported: dict[str, tuple[int, int]] = {}
    finalized: dict[str, tuple[int, int]] = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        end = r.at + size
        if tag == SUPPORTED_FEATURES_TAG:
            supported = _features(r, max_first=False)
        elif tag == FINALIZED_FEATURES_TAG:
            finalized = _features(r, max_first=True)
        r.at = end
    return ApiVersions(0, apis, supported, finalized)


def _features(r: _Reader, max_first: bool) -> dict[str, tuple[int, int]]:
    """(min, max) per feature; finalized features are sent max level first."""
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.compact_string()
        first, second = r.take(">hh")
        r.skip_tags()
        out[name] = (second, first) if max_first else (first, second)
    return out
