"""EventBridge event-pattern matching, pure and dependency-free (the webhook imports it on cold start).

Written here rather than taken from PyPI: the only candidate packages were ``event-ruler`` (a 2023 gopy
build of a Go port, one CPython ABI, ``chdir`` on import, unmaintained) and moto's internal matcher (a
test library; flattens events so arrays of objects and leaf-only ``exists`` are wrong). The semantics
follow AWS's Event Ruler and the EventBridge User Guide ("Event patterns", "Content filtering"):

- A pattern is an object; every field named must match (AND); a field's array of values is an OR.
- Leaves: exact strings / numbers / booleans / ``null``; ``prefix``, ``suffix`` (both optionally
  ``{"equals-ignore-case": ...}``), ``equals-ignore-case``, ``wildcard``, ``anything-but`` (a value, a
  list of strings or of numbers, or ``prefix`` / ``suffix`` / ``wildcard`` / ``equals-ignore-case``),
  ``numeric`` ranges, ``exists``, ``cidr`` (IPv4 and IPv6).
- ``$or``: a list of two or more sub-patterns, any of which may match.
- Arrays in the event match if any element matches; arrays of objects are matched element by element,
  so two fields must match within the same element (Ruler's array consistency).
- ``exists`` only considers leaf values: ``{"exists": false}`` also matches an object-valued field.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["InvalidPattern", "matches", "validate"]


class InvalidPattern(ValueError):
    """The pattern is not one EventBridge would accept; the message says where and why."""


_MISSING: Any = object()
_OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric",
                        "exists", "cidr"})
_NUMERIC_LIMIT = 5.0e9  # Event Ruler's range for numeric matching
_LOWER = {">": float.__gt__, ">=": float.__ge__}
_UPPER = {"<": float.__lt__, "<=": float.__le__}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- validation --------------------------------------------------------------------------------------

def validate(pattern: Any) -> None:
    """Raise ``InvalidPattern`` unless ``pattern`` is a valid EventBridge event pattern."""
    if not isinstance(pattern, dict):
        raise InvalidPattern("an event pattern must be a JSON object")
    _validate_object(pattern, "")


def _validate_object(node: dict, path: str) -> None:
    if not node:
        raise InvalidPattern(f"{path or 'the pattern'}: empty objects are not allowed")
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if not isinstance(key, str):
            raise InvalidPattern(f"{where}: field names must be strings")
        if key == "$or" and isinstance(value, list):
            if len(value) < 2 or not all(isinstance(alt, dict) for alt in value):
                raise InvalidPattern(f"{where}: $or needs a list of at least two objects")
            for i, alt in enumerate(value):
                _validate_object(alt, f"{where}[{i}]")
        elif isinstance(value, dict):
            _validate_object(value, where)
        elif isinstance(value, list):
            if not value:
                raise InvalidPattern(f"{where}: empty arrays are not allowed")
            for item in value:
                _validate_leaf(item, where)
        else:
            raise InvalidPattern(f"{where}: must be an object or an array, got {value!r}")


def _validate_leaf(item: Any, where: str) -> None:
    if item is None or isinstance(item, str | bool) or _is_number(item):
        return
    if not isinstance(item, dict):
        raise InvalidPattern(f"{where}: {item!r} is neither a value nor a matcher object")
    if len(item) != 1:
        raise InvalidPattern(f"{where}: a matcher object has exactly one key, got {sorted(item)}")
    (op, arg), = item.items()
    if op not in _OPERATORS:
        raise InvalidPattern(f"{where}: unknown operator {op!r} (known: {', '.join(sorted(_OPERATORS))})")
    check = {
        "prefix": _check_affix, "suffix": _check_affix, "equals-ignore-case": _check_string,
        "wildcard": _check_wildcard, "anything-but": _check_anything_but, "numeric": _check_numeric,
        "exists": _check_exists, "cidr": _check_cidr,
    }[op]
    check(arg, f"{where}: {op}")


def _check_string(arg: Any, where: str) -> None:
    if not isinstance(arg, str):
        raise InvalidPattern(f"{where} needs a string, got {arg!r}")


def _check_affix(arg: Any, where: str) -> None:
    if isinstance(arg, dict):
        if list(arg) != ["equals-ignore-case"]:
            raise InvalidPattern(f"{where} accepts only a string or {{\"equals-ignore-case\": string}}")
        _check_string(arg["equals-ignore-case"], where)
    else:
        _check_string(arg, where)


def _check_wildcard(arg: Any, where: str) -> None:
    _check_string(arg, where)
    _wildcard_regex(arg, where)


def _check_strings(arg: Any, where: str, *, allow_list: bool) -> None:
    if allow_list and isinstance(arg, list):
        if not arg:
            raise InvalidPattern(f"{where} needs a non-empty list")
        for a in arg:
            _check_string(a, where)
    else:
        _check_string(arg, where)


def _check_anything_but(arg: Any, where: str) -> None:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise InvalidPattern(f"{where} takes one of prefix, suffix, wildcard, equals-ignore-case")
        (op, inner), = arg.items()
        if op in ("prefix", "suffix"):
            _check_string(inner, f"{where} {op}")
            if not inner:  # Event Ruler refuses it: "anything but everything" could never match
                raise InvalidPattern(f"{where} {op} needs a non-empty string")
        elif op == "equals-ignore-case":
            _check_strings(inner, f"{where} {op}", allow_list=True)
        elif op == "wildcard":
            _check_strings(inner, f"{where} {op}", allow_list=True)
            for w in inner if isinstance(inner, list) else [inner]:
                _wildcard_regex(w, f"{where} {op}")
        else:
            raise InvalidPattern(f"{where}: unsupported nested operator {op!r}")
    elif isinstance(arg, list):
        if not arg:
            raise InvalidPattern(f"{where} needs a non-empty list")
        if not (all(isinstance(a, str) for a in arg) or all(_is_number(a) for a in arg)):
            raise InvalidPattern(f"{where}: a list must contain only strings or only numbers")
    elif not (isinstance(arg, str) or _is_number(arg)):
        raise InvalidPattern(f"{where} needs a string, a number, a list or a nested matcher, got {arg!r}")


def _check_numeric(arg: Any, where: str) -> None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidPattern(f"{where} needs [op, number] or [op, number, op, number], got {arg!r}")
    ops = arg[0::2]
    values = arg[1::2]
    for op, value in zip(ops, values, strict=True):
        if op not in ("=", "<", "<=", ">", ">="):
            raise InvalidPattern(f"{where}: unknown comparison {op!r}")
        if not _is_number(value) or not math.isfinite(value):
            raise InvalidPattern(f"{where}: {value!r} is not a number")
        if abs(value) > _NUMERIC_LIMIT:
            raise InvalidPattern(f"{where}: {value!r} is outside ±{_NUMERIC_LIMIT:g}")
    if len(ops) == 2:
        if "=" in ops:
            raise InvalidPattern(f"{where}: '=' cannot be combined with another comparison")
        # Event Ruler reads a range in one order only: the lower bound first, then the upper.
        if ops[0] not in _LOWER or ops[1] not in _UPPER:
            raise InvalidPattern(f"{where}: a range needs a lower bound (>, >=) followed by an upper (<, <=)")
        if values[0] >= values[1]:
            raise InvalidPattern(f"{where}: the lower bound must be below the upper bound")


def _check_exists(arg: Any, where: str) -> None:
    if not isinstance(arg, bool):
        raise InvalidPattern(f"{where} needs true or false, got {arg!r}")


def _check_cidr(arg: Any, where: str) -> None:
    _check_string(arg, where)
    try:
        ipaddress.ip_network(arg, strict=False)
    except ValueError as exc:
        raise InvalidPattern(f"{where}: {arg!r} is not an IP address range ({exc})") from None


@functools.lru_cache(maxsize=512)
def _wildcard_regex(wildcard: str, where: str = "wildcard") -> re.Pattern[str]:
    """``*`` is any run of characters; ``\\*`` a literal star, ``\\\\`` a backslash; ``**`` is invalid."""
    out: list[str] = []
    i = 0
    while i < len(wildcard):
        c = wildcard[i]
        if c == "\\":
            nxt = wildcard[i + 1] if i + 1 < len(wildcard) else ""
            if nxt not in ("*", "\\"):
                raise InvalidPattern(f"{where}: {wildcard!r}: a backslash may only escape '*' or '\\'")
            out.append(re.escape(nxt))
            i += 2
            continue
        if c == "*":
            if i + 1 < len(wildcard) and wildcard[i + 1] == "*":
                raise InvalidPattern(f"{where}: {wildcard!r}: consecutive wildcards are not allowed")
            out.append(".*")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# -- matching ----------------------------------------------------------------------------------------

def matches(pattern: dict, event: Any) -> bool:
    """Whether ``event`` matches ``pattern`` (validate the pattern once, at load, with ``validate``)."""
    return _match_object(pattern, event)


def _match_object(pattern: dict, node: Any) -> bool:
    for key, sub in pattern.items():
        if key == "$or" and isinstance(sub, list):
            if not any(_match_object(alt, node) for alt in sub):
                return False
            continue
        value = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
        if isinstance(sub, dict):
            if not _match_nested(sub, value):
                return False
        elif not _match_field(sub, value):
            return False
    return True


def _match_nested(pattern: dict, value: Any) -> bool:
    """An object pattern against an object, or against each object of an array (any may match)."""
    objects = [v for v in _flatten(value) if isinstance(v, dict)] if isinstance(value, list) else (
        [value] if isinstance(value, dict) else [])
    if not objects:
        return _match_object(pattern, _MISSING)  # only ``exists: false`` leaves can still match
    return any(_match_object(pattern, obj) for obj in objects)


def _flatten(value: list) -> Iterator[Any]:
    for v in value:
        if isinstance(v, list):
            yield from _flatten(v)
        else:
            yield v


def _leaves(value: Any) -> list[Any]:
    """The leaf values a field holds: none if missing or an object, each scalar of a (nested) array."""
    if value is _MISSING or isinstance(value, dict):
        return []
    if isinstance(value, list):
        return [v for v in _flatten(value) if not isinstance(v, dict)]
    return [value]


def _match_field(alternatives: list, value: Any) -> bool:
    leaves = _leaves(value)
    for alt in alternatives:
        if isinstance(alt, dict):
            (op, arg), = alt.items()
            if op == "exists":
                if bool(leaves) == arg:
                    return True
            elif any(_match_operator(op, arg, leaf) for leaf in leaves):
                return True
        elif any(_equal(alt, leaf) for leaf in leaves):
            return True
    return False


def _equal(expected: Any, actual: Any) -> bool:
    """JSON equality: numbers by value (300 == 3.0e2), never a boolean for a number."""
    if _is_number(expected):
        return _is_number(actual) and float(expected) == float(actual)
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    return isinstance(actual, str) and actual == expected


def _match_operator(op: str, arg: Any, leaf: Any) -> bool:
    if op == "numeric":
        return _is_number(leaf) and _in_range(arg, float(leaf))
    if op == "cidr":
        return _in_network(arg, leaf)
    if op == "anything-but":
        return _anything_but(arg, leaf)
    if not isinstance(leaf, str):
        return False
    if op == "equals-ignore-case":
        return leaf.casefold() == arg.casefold()
    if op == "wildcard":
        return _wildcard_regex(arg).fullmatch(leaf) is not None
    if isinstance(arg, dict):  # prefix / suffix with equals-ignore-case
        arg, leaf = arg["equals-ignore-case"].casefold(), leaf.casefold()
    return leaf.startswith(arg) if op == "prefix" else leaf.endswith(arg)


def _in_range(arg: list, value: float) -> bool:
    for op, bound in zip(arg[0::2], arg[1::2], strict=True):
        bound = float(bound)
        ok = value == bound if op == "=" else (_LOWER.get(op) or _UPPER[op])(value, bound)
        if not ok:
            return False
    return True


def _in_network(cidr: str, leaf: Any) -> bool:
    if not isinstance(leaf, str):
        return False
    try:
        return ipaddress.ip_address(leaf) in _network(cidr)
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _anything_but(arg: Any, leaf: Any) -> bool:
    """True when ``leaf`` is present and is none of the excluded values (missing fields never match)."""
    if isinstance(arg, dict):
        (op, inner), = arg.items()
        if not isinstance(leaf, str):
            return False
        if op == "prefix":
            return not leaf.startswith(inner)
        if op == "suffix":
            return not leaf.endswith(inner)
        values = inner if isinstance(inner, list) else [inner]
        if op == "equals-ignore-case":
            return all(leaf.casefold() != v.casefold() for v in values)
        return all(_wildcard_regex(v).fullmatch(leaf) is None for v in values)  # wildcard
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_equal(x, leaf) for x in excluded)
