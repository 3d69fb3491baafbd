"""Build typed, frozen config dataclasses from TOML tables, naming the key on every error.

A small validator over dataclass fields (str, int, float, bool, tuple[str, ...], optional of
those): unknown keys, wrong types and failed checks all become a `ConfigError` that names the
file, the key and what is allowed. Each dataclass may define `validate(self) -> None`; a
`ValueError` it raises (`sources.base.check` raises one) becomes a `ConfigError` for that table.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from monitor.errors import ConfigError

T = TypeVar("T")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return "a list of strings"
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, *, path: Path | None, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, options[0], path=path, key=key)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"expected a list of strings, got {value!r}", path=path, key=key)
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"expected an integer, got {value!r}", path=path, key=key)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"expected {_describe(tp)}, got {value!r}", path=path, key=key)
    return value


def field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def build(
    cls: type[T],
    table: Any,
    *,
    path: Path | None,
    prefix: str,
    extra_allowed: frozenset[str] = frozenset(),
) -> T:
    """Instantiate dataclass `cls` from TOML table `table` (keys under `prefix` in messages)."""
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {table!r}", path=path, key=prefix)
    allowed = set(field_names(cls))
    unknown = sorted(set(table) - allowed - extra_allowed)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}",
            path=path,
            key=f"{prefix}.{unknown[0]}",
            allowed=allowed | extra_allowed,
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name in allowed & set(table):
        kwargs[name] = _coerce(table[name], hints[name], path=path, key=f"{prefix}.{name}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError("this key is required", path=path, key=f"{prefix}.{missing[0]}")
    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(str(exc), path=path, key=prefix) from exc
    return instance
