"""Parsing the `Retry-After` response header (RFC 9110, section 10.2.3).

The header carries either a number of seconds (`Retry-After: 120`) or an HTTP-date
(`Retry-After: Fri, 04 Dec 2026 20:15:00 GMT`). A date is turned into a delay against the
response's own `Date` header, so the client needs no wall clock; only when the server sent no
`Date` does it fall back to the machine's clock.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import math

__all__ = ["RetryAfterError", "parse_retry_after"]


class RetryAfterError(ValueError):
    """A `Retry-After` value that cannot be used; the message gives the reason."""


def parse_retry_after(value: str, date: str | None = None) -> float:
    """Return the delay in seconds that a `Retry-After` value requests, at least 0.

    `date` is the response's `Date` header, the reference for an HTTP-date. A date in the past
    gives 0. Raises `RetryAfterError` for a negative, non-finite or malformed value.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds):
            raise RetryAfterError(f"Retry-After must be a finite number of seconds; got {value!r}")
        if seconds < 0:
            raise RetryAfterError(f"Retry-After must not be negative; got {value!r}")
        return seconds

    when = _parse_date(text)
    if when is None:
        raise RetryAfterError(f"Retry-After is neither seconds nor an HTTP-date; got {value!r}")
    reference = _parse_date(date) if date else None
    if reference is None:
        # NOTE: without a Date header the delay depends on this machine's clock being right.
        reference = _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (when - reference).total_seconds())


def _parse_date(text: str) -> _dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when
