"""Unit tests of `client.parse_retry_after`, the parser of the Retry-After header (RFC 9110)."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from client import RetryAfterError, parse_retry_after

DATE = "Sun, 06 Nov 1994 08:49:00 GMT"
"""A `Date` header: the reference time for an HTTP-date Retry-After."""


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


# ----------------------------------------------------------------------------- seconds


@pytest.mark.parametrize(("value", "expected"), [("120", 120.0), ("1.5", 1.5), ("0", 0.0), (" 7 ", 7.0)])
def test_seconds_parsed(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_seconds_ignore_date_header() -> None:
    assert parse_retry_after("30", DATE) == 30.0


@pytest.mark.parametrize("value", ["-5", "-0.5"])
def test_negative_seconds_raise(value: str) -> None:
    with pytest.raises(RetryAfterError, match="negative"):
        parse_retry_after(value)


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", "1e999"])
def test_non_finite_seconds_raise(value: str) -> None:
    with pytest.raises(RetryAfterError, match="finite"):
        parse_retry_after(value)


# ----------------------------------------------------------------------------- HTTP-date


def test_date_against_date_header() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", DATE) == 30.0


@pytest.mark.parametrize(
    "value",
    [
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850 form
        "Sun Nov  6 08:49:37 1994",  # asctime form
    ],
)
def test_obsolete_date_forms(value: str) -> None:
    # HTTP/1.1 (RFC 2068, section 3.3.1) requires parsers of dates to accept both obsolete forms.
    assert parse_retry_after(value, DATE) == 37.0


def test_date_equal_to_date_header() -> None:
    assert parse_retry_after(DATE, DATE) == 0.0


def test_date_in_past_gives_zero() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:48:00 GMT", DATE) == 0.0


def test_missing_date_uses_clock() -> None:
    in_an_hour = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)

    delay = parse_retry_after(http_date(in_an_hour))

    # The header drops the fraction of a second, and the parser reads the clock a moment later.
    assert 3590.0 <= delay <= 3600.0


def test_missing_date_past_gives_zero() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0


def test_unparsable_date_header_uses_clock() -> None:
    in_an_hour = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)

    delay = parse_retry_after(http_date(in_an_hour), "not a date")

    assert 3590.0 <= delay <= 3600.0


# ----------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "value",
    ["soon", "", "   ", "12 s", "0x10", "Sun, 06 Nov 1994 25:49:37 GMT", "06 Nov"],
)
def test_garbage_raises(value: str) -> None:
    with pytest.raises(RetryAfterError) as caught:
        parse_retry_after(value, DATE)

    assert repr(value) in str(caught.value)


def test_error_is_value_error() -> None:
    assert issubclass(RetryAfterError, ValueError)
