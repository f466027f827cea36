"""Encode and decode Avro messages in the Confluent wire format with fastavro."""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from stocksync.codec.avro_writer import Unsupported, Writer, compile_writer
from stocksync.codec.schemas import SchemaRegistry, SchemaVersion, registry

MAGIC = 0
HEADER = struct.Struct(">BI")


class Undecodable(ValueError):
    """The bytes are not a message this project can read."""


def fastavro_encode(record: Mapping[str, Any], schema: SchemaVersion) -> bytes:
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(MAGIC, schema.id))
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


# Writers compiled once per schema version (codec/avro_writer.py: the bytes fastavro writes, a
# few times faster). Keyed by identity, since a SchemaVersion holds dicts and is not hashable;
# each entry holds its schema, so no other object can take its id while it is cached.
_writers: dict[int, tuple[SchemaVersion, Writer]] = {}


def _writer(schema: SchemaVersion) -> Writer:
    def fallback(record: Mapping[str, Any]) -> bytes:
        return fastavro_encode(record, schema)

    try:
        return compile_writer(schema.parsed, fallback, HEADER.pack(MAGIC, schema.id))
    except Unsupported:
        return fallback


def encode(record: Mapping[str, Any], schema: SchemaVersion) -> bytes:
    cached = _writers.get(id(schema))
    if cached is None:
        cached = _writers[id(schema)] = (schema, _writer(schema))
    return cached[1](record)


def encode_latest(record: Mapping[str, Any], subject: str) -> bytes:
    return encode(record, registry().latest[subject])


def decode(payload: bytes | None, reg: SchemaRegistry | None = None) -> tuple[str, dict[str, Any]]:
    """Return (subject, record) read with the newest version of the writer's subject."""
    if not payload or len(payload) < HEADER.size:
        raise Undecodable(f"message of {len(payload or b'')} bytes is shorter than the header")
    magic, schema_id = HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise Undecodable(
            f"first byte is {magic:#04x}, expected 0x00 (Confluent wire format header)"
        )
    reg = reg or registry()
    writer = reg.get(schema_id)
    reader = reg.latest[writer.subject]
    body = io.BytesIO(payload)
    body.seek(HEADER.size)
    try:
        record = schemaless_reader(body, writer.parsed, None if reader is writer else reader.parsed)
    except Exception as exc:  # fastavro raises several types for truncated or corrupt bodies
        raise Undecodable(
            f"Avro body does not match schema id {schema_id} ({writer.file}): {exc!r}"
        ) from exc
    if body.tell() != len(payload):
        raise Undecodable(
            f"{len(payload) - body.tell()} trailing bytes after a {writer.file} record"
        )
    if not isinstance(record, dict):
        raise Undecodable(f"schema id {schema_id} does not describe a record")
    return writer.subject, record


def decode_as(payload: bytes, subject: str) -> dict[str, Any]:
    """The record of a message that must be of `subject` (ValueError naming both otherwise)."""
    found, record = decode(payload)
    if found != subject:
        raise ValueError(f"expected a {subject} message, got {found}")
    return record
