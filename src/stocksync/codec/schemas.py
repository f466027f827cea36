"""The schema registry kept in the repository's schemas/ folder.

Every message starts with the Confluent wire-format header (0x00, 4-byte big-endian schema id),
then the Avro binary body. The id says which kept version wrote it; the reader resolves it to
the newest version of the same subject, so a log mixing old and new versions still decodes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema

SCHEMAS_DIR_ENV = "STOCKSYNC_SCHEMAS_DIR"


class UnknownSchema(LookupError):
    """A message names a schema id this build does not know."""


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    id: int
    subject: str
    version: int
    file: str
    definition: dict[str, Any]  # the .avsc as published (with logical types)
    parsed: Any  # fastavro-parsed, logical types stripped: timestamps stay epoch-ms integers


def schemas_dir() -> Path:
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        return Path(configured)
    # src/stocksync/codec/schemas.py -> repository root
    return Path(__file__).resolve().parents[3] / "schemas"


def _strip_logical_types(node: Any) -> Any:
    # The wire encoding of timestamp-millis is a plain long; decoding it to datetime would cost
    # microseconds per event on the hot path and put time zones into the pure fold.
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


class SchemaRegistry:
    def __init__(self, directory: Path) -> None:
        index_file = directory / "registry.json"
        try:
            index = json.loads(index_file.read_text())
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{index_file} not found: set {SCHEMAS_DIR_ENV} to the schemas/ folder"
            ) from exc
        self.by_id: dict[int, SchemaVersion] = {}
        self.latest: dict[str, SchemaVersion] = {}
        for entry in index["schemas"]:
            definition = json.loads((directory / entry["file"]).read_text())
            version = SchemaVersion(
                id=int(entry["id"]),
                subject=entry["subject"],
                version=int(entry["version"]),
                file=entry["file"],
                definition=definition,
                parsed=parse_schema(_strip_logical_types(definition), named_schemas={}),
            )
            if version.id in self.by_id:
                raise ValueError(f"{index_file}: schema id {version.id} is used twice")
            self.by_id[version.id] = version
            current = self.latest.get(version.subject)
            if current is None or version.version > current.version:
                self.latest[version.subject] = version

    def get(self, schema_id: int) -> SchemaVersion:
        try:
            return self.by_id[schema_id]
        except KeyError:
            raise UnknownSchema(
                f"schema id {schema_id} is not in schemas/registry.json "
                f"(known: {sorted(self.by_id)})"
            ) from None

    def versions(self, subject: str) -> list[SchemaVersion]:
        return sorted(
            (v for v in self.by_id.values() if v.subject == subject), key=lambda v: v.version
        )


@cache
def registry() -> SchemaRegistry:
    return SchemaRegistry(schemas_dir())
