"""Codecs derived from the schemas: one record type bound to one subject, field by name.

The subject's newest schema (the version the project writes, and the reader every kept version
is resolved to) is matched by field name to the fields of a record type, a msgspec Struct or a
dataclass. A record is written straight from the object's attributes (a compiled writer,
codec/avro_writer.py) and read back by calling the type with the decoded fields, enum symbols
turned into the type's enum members. So a field added to a schema and to its record type is
encoded and decoded everywhere the subject is, with no mapping to edit.

The binding is checked when first used (and for every subject by tests/unit/test_records.py):
a schema field with no field on the type, or a required field of the type with none in the
schema, is a BindingError rather than a value silently dropped or invented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

import msgspec.inspect as mi

from stocksync.codec.avro import HEADER, MAGIC, decode, fastavro_encode
from stocksync.codec.avro_writer import Unsupported, compile_object_writer
from stocksync.codec.schemas import SchemaRegistry, SchemaVersion, registry

T = TypeVar("T")
Reader = Callable[[Mapping[str, Any]], T]

_NO_DEFAULT: Any = object()


class BindingError(TypeError):
    """A schema and its record type do not have the same fields."""


@dataclass(frozen=True, slots=True)
class BoundField:
    name: str  # in the schema
    attribute: str  # on the record type
    default: Any  # the schema's default, _NO_DEFAULT when it has none
    enum: type[Enum] | None  # the type's enum for this field, if it is one


def _enum_of(t: mi.Type) -> type[Enum] | None:
    if isinstance(t, mi.EnumType):
        enum: type[Enum] = t.cls
        return enum
    if isinstance(t, mi.UnionType):  # Enum | None
        for member in t.types:
            if isinstance(member, mi.EnumType):
                found: type[Enum] = member.cls
                return found
    return None


def type_fields(cls: type[Any]) -> dict[str, mi.Field]:
    """The fields of a record type by name, in declaration order."""
    info = mi.type_info(cls)
    if not isinstance(info, mi.StructType | mi.DataclassType):
        raise BindingError(f"{cls.__name__} is neither a msgspec Struct nor a dataclass")
    return {f.name: f for f in info.fields}


def bind_fields(
    schema: SchemaVersion, cls: type[Any], rename: Mapping[str, str] | None = None
) -> tuple[BoundField, ...]:
    """The schema's fields, in schema order, each with the attribute of `cls` holding it.
    `rename` maps a schema field name to another attribute name (a name the domain spells
    otherwise, such as an event's `type`, its `kind`)."""
    rename = rename or {}
    available = type_fields(cls)
    bound: list[BoundField] = []
    for field in schema.parsed["fields"]:
        name = field["name"]
        attribute = rename.get(name, name)
        own = available.get(attribute)
        if own is None:
            raise BindingError(
                f"{schema.file} has a field {name!r} that {cls.__name__} lacks: add "
                f"{attribute!r} to {cls.__name__}"
            )
        bound.append(
            BoundField(name, attribute, field.get("default", _NO_DEFAULT), _enum_of(own.type))
        )
    covered = {b.attribute for b in bound}
    unfilled = [f.name for f in available.values() if f.required and f.name not in covered]
    if unfilled:
        raise BindingError(
            f"{cls.__name__} requires {unfilled} that {schema.file} does not carry: give them "
            f"defaults or add them to the schema"
        )
    return tuple(bound)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def to_record(obj: Any, fields: tuple[BoundField, ...]) -> dict[str, Any]:
    """The Avro record (a dict by schema field name) of a record object."""
    return {f.name: _plain(getattr(obj, f.attribute)) for f in fields}


class _Symbols(dict[Any, Any]):
    """Enum symbol -> member. A dict lookup costs a tenth of the enum's constructor; an unknown
    symbol still gets the constructor's ValueError."""

    def __init__(self, enum: type[Enum]) -> None:
        super().__init__({member.value: member for member in enum})
        self[None] = None  # an optional enum field
        self.enum = enum

    def __missing__(self, key: Any) -> Any:
        return self.enum(key)


def compile_reader(cls: type[T], fields: tuple[BoundField, ...]) -> Reader[T]:
    """A function building a `cls` from a decoded record: one keyword per schema field, the
    type's defaults for its fields the schema does not carry."""
    consts: dict[str, Any] = {"CLS": cls}
    arguments: list[str] = []
    for i, f in enumerate(fields):
        if f.default is _NO_DEFAULT:
            value = f"record[{f.name!r}]"
        else:  # the newest reader always fills it; a record built by hand may leave it out
            consts[f"DEFAULT{i}"] = f.default
            value = f"record.get({f.name!r}, DEFAULT{i})"
        if f.enum is not None:
            consts[f"SYMBOLS{i}"] = _Symbols(f.enum)
            value = f"SYMBOLS{i}[{value}]"
        arguments.append(f"{f.attribute}={value}")
    source = f"def read(record):\n    return CLS({', '.join(arguments)})"
    exec(compile(source, f"<record reader of {cls.__name__}>", "exec"), consts)
    reader: Reader[T] = consts["read"]
    return reader


class RecordCodec(Generic[T]):
    """The codec of one subject's records as `cls` objects, always written with the subject's
    newest schema version. Compiled on first use (the registry is read lazily, so importing a
    codec reads no file)."""

    # `encode` and `from_record` are attributes, not methods: the first call compiles and puts
    # the compiled function in their place, so every later call is that function alone (they
    # run several times for each event folded).
    __slots__ = ("_schemas", "cls", "encode", "from_record", "rename", "subject")

    encode: Callable[[T], bytes]
    """The message (header and body) of a record."""
    from_record: Reader[T]
    """A record decoded with the newest version of the subject, as a `cls`."""

    def __init__(
        self,
        subject: str,
        cls: type[T],
        *,
        rename: Mapping[str, str] | None = None,
        schemas: SchemaRegistry | None = None,
    ) -> None:
        self.subject = subject
        self.cls = cls
        self.rename: Mapping[str, str] = dict(rename or {})
        self._schemas = schemas  # None: the project's registry (schemas/)
        self.encode = self._compile_then_encode
        self.from_record = self._compile_then_read

    @property
    def schemas(self) -> SchemaRegistry:
        return self._schemas or registry()

    @property
    def schema(self) -> SchemaVersion:
        return self.schemas.latest[self.subject]

    @property
    def fields(self) -> tuple[BoundField, ...]:
        return bind_fields(self.schema, self.cls, self.rename)

    def to_record(self, obj: T) -> dict[str, Any]:
        """The Avro record (a dict by schema field name) of a record object."""
        return to_record(obj, self.fields)

    def decode(self, payload: bytes) -> T:
        """A message that must be of this subject (ValueError naming both otherwise)."""
        found, record = decode(payload, self.schemas)
        if found != self.subject:
            raise ValueError(f"expected a {self.subject} message, got {found}")
        return self.from_record(record)

    def _compile_then_encode(self, obj: T) -> bytes:
        self.encode = self._compile_writer()
        return self.encode(obj)

    def _compile_then_read(self, record: Mapping[str, Any]) -> T:
        self.from_record = compile_reader(self.cls, self.fields)
        return self.from_record(record)

    def _compile_writer(self) -> Callable[[T], bytes]:
        schema = self.schema
        fields = bind_fields(schema, self.cls, self.rename)

        def fallback(obj: T) -> bytes:
            return fastavro_encode(to_record(obj, fields), schema)

        try:
            return compile_object_writer(
                schema.parsed,
                [f.attribute for f in fields],
                fallback,
                HEADER.pack(MAGIC, schema.id),
            )
        except Unsupported:
            return fallback
