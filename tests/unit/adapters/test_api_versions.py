"""The ApiVersions request and response bytes (the probe's socket is exercised against the real
broker by tests/integration/test_doctor.py)."""

from __future__ import annotations

import struct

import pytest

from stocksync.adapters.kafka.api_versions import (
    ApiVersionsError,
    encode_request,
    parse_response,
)


def compact_string(text: str) -> bytes:
    return bytes([len(text) + 1]) + text.encode()


def features(entries: dict[str, tuple[int, int]]) -> bytes:
    out = bytes([len(entries) + 1])
    for name, (a, b) in entries.items():
        out += compact_string(name) + struct.pack(">hh", a, b) + b"\x00"
    return out


def response_v3(
    apis: dict[int, tuple[int, int]],
    supported: dict[str, tuple[int, int]],
    finalized_max_min: dict[str, tuple[int, int]],
) -> bytes:
    body = struct.pack(">ih", 1, 0) + bytes([len(apis) + 1])
    for key, (low, high) in apis.items():
        body += struct.pack(">hhh", key, low, high) + b"\x00"
    body += struct.pack(">i", 0)  # throttle
    tags = [(0, features(supported)), (1, struct.pack(">q", 7)), (2, features(finalized_max_min))]
    body += bytes([len(tags)])
    for tag, data in tags:
        body += bytes([tag, len(data)]) + data
    return body


def test_a_request_is_api_versions_v3_size_prefixed() -> None:
    request = encode_request(correlation_id=9)
    (size,) = struct.unpack_from(">i", request)
    assert size == len(request) - 4
    assert struct.unpack_from(">hhi", request, 4) == (18, 3, 9)


def test_a_v3_response_gives_api_ranges_and_feature_levels() -> None:
    payload = response_v3(
        {0: (3, 13), 1: (4, 18), 18: (0, 4)},
        {"metadata.version": (7, 30)},
        {"metadata.version": (30, 30), "group.version": (1, 0)},  # sent max first
    )
    parsed = parse_response(payload)
    assert parsed.error_code == 0
    assert parsed.apis == {0: (3, 13), 1: (4, 18), 18: (0, 4)}
    assert parsed.supported_features == {"metadata.version": (7, 30)}
    assert parsed.finalized_features == {"metadata.version": (30, 30), "group.version": (0, 1)}


def test_an_old_broker_answers_unsupported_version_with_what_it_speaks() -> None:
    payload = struct.pack(">ihi", 1, 35, 2) + struct.pack(">hhhhhh", 0, 0, 8, 18, 0, 2)
    parsed = parse_response(payload)
    assert parsed.error_code == 35
    assert parsed.apis == {0: (0, 8), 18: (0, 2)}
    assert not parsed.supported_features


def test_bytes_that_are_not_a_response_are_refused() -> None:
    with pytest.raises(ApiVersionsError):
        parse_response(b"\x00\x01")
