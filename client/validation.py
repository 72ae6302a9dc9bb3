"""Range rules declared on dataclass fields, checked in one place.

A field declares its rule in its metadata, for example
`field(default=1.0, metadata={"gt": 0, "unit": "s"})`. `check_fields` enforces the rules when
an object is built from Python; the simulator's config loader reads the same metadata, so a
rule is written once and both paths report it the same way.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

__all__ = ["FieldError", "check_fields", "describe_rule", "violated_rule"]

_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


class FieldError(ValueError):
    """A field's value breaks its rule; `field`, `rule` and `value` give the field, the rule and the value."""

    def __init__(self, owner: str, field: str, rule: str, value: Any) -> None:
        super().__init__(f"{owner}.{field} must be {rule}; got {value!r}")
        self.owner = owner
        self.field = field
        self.rule = rule
        self.value = value


def describe_rule(metadata: Any) -> str:
    """Describe the bounds in `metadata` as words, such as 'a finite number > 0 and <= 1'."""
    bounds = [f"{symbol} {metadata[key]}" for key, symbol in _BOUNDS if key in metadata]
    text = "a finite number"
    if bounds:
        text += " " + " and ".join(bounds)
    return text


def violated_rule(value: Any, metadata: Any) -> str | None:
    """Return the rule that numeric `value` breaks, or None if it meets every bound."""
    if not any(key in metadata for key, _ in _BOUNDS):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return describe_rule(metadata)
    if ("gt" in metadata and not value > metadata["gt"]) or (
        "ge" in metadata and not value >= metadata["ge"]
    ) or ("lt" in metadata and not value < metadata["lt"]) or (
        "le" in metadata and not value <= metadata["le"]
    ):
        return describe_rule(metadata)
    return None


def check_fields(obj: Any) -> None:
    """Raise `FieldError` for the first numeric field of dataclass `obj` that breaks its bounds."""
    owner = type(obj).__name__
    for spec in fields(obj):
        value = getattr(obj, spec.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        rule = violated_rule(value, spec.metadata)
        if rule is not None:
            raise FieldError(owner, spec.name, rule, value)
