"""Injected faults: the server misbehaving on purpose, the same way in the real and modelled server.

`FaultPlan.pick` decides, request by request, which `FaultRule` (if any) applies; rules are
checked in config order and the first that fires wins. `fault_response` builds the status,
headers and body of a `respond` or `bad_body` fault, so both servers send identical bytes.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
import math

import numpy as np

from sim.config import FaultRule

__all__ = ["FaultPlan", "FaultResponse", "fault_response", "http_date"]

_JSON = "application/json"
_HTML = "text/html"
_HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class FaultPlan:
    """Picks the fault rule, if any, that applies to each request reaching the server."""

    def __init__(self, rules: tuple[FaultRule, ...], rng: np.random.Generator) -> None:
        self._rules = rules
        self._matched = [0] * len(rules)
        self._rng = rng

    def __bool__(self) -> bool:
        return bool(self._rules)

    def pick(self, endpoint: str) -> FaultRule | None:
        """Return the rule that fires for a request to `endpoint` ("create" or "status").

        Call exactly once per request that reaches the server: `first` rules count calls.
        """
        for index, rule in enumerate(self._rules):
            if rule.endpoint != "any" and rule.endpoint != endpoint:
                continue
            self._matched[index] += 1
            if rule.first is not None:
                if self._matched[index] <= rule.first:
                    return rule
            elif self._rng.random() < rule.probability:
                return rule
        return None


class FaultResponse:
    """Status, headers and body of a faulted response."""

    __slots__ = ("status", "headers", "body", "content_type")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, content_type: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.content_type = content_type


def http_date(posix_seconds: float) -> str:
    """Format a POSIX time (seconds) as an IMF-fixdate, the HTTP-date form of RFC 9110."""
    moment = _dt.datetime.fromtimestamp(math.floor(posix_seconds), _dt.timezone.utc)
    return email.utils.format_datetime(moment, usegmt=True)


def fault_response(rule: FaultRule, endpoint: str, wall_now: float) -> FaultResponse:
    """Build the response of a `respond` or `bad_body` fault.

    `wall_now` is the server's idea of the current POSIX time in seconds, used for the `Date`
    header that accompanies an HTTP-date Retry-After.
    """
    headers: dict[str, str] = {}
    if rule.action == "bad_body":
        status = 200
    else:
        status = rule.status
        if rule.retry_after_raw is not None:
            headers["Retry-After"] = rule.retry_after_raw
        elif rule.retry_after is not None:
            if rule.retry_after_format == "http_date":
                now = math.floor(wall_now)
                headers["Date"] = http_date(now)
                headers["Retry-After"] = http_date(now + math.ceil(rule.retry_after))
            else:
                headers["Retry-After"] = _seconds(rule.retry_after)

    body = rule.body
    if body == "json":
        return FaultResponse(status, headers, json.dumps({"error": f"injected fault: HTTP {status}"}).encode(), _JSON)
    if body == "html":
        return FaultResponse(status, headers, _HTML_PAGE, _HTML)
    if body == "empty":
        return FaultResponse(status, headers, b"", _JSON)
    if body == "invalid_json":
        return FaultResponse(status, headers, b'{"result": "pend', _JSON)
    if body == "missing_field":
        return FaultResponse(status, headers, b'{"status": "ok"}', _JSON)
    return FaultResponse(status, headers, b'{"result": "paused"}', _JSON)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
