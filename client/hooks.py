"""Hooks: observe a client's attempts, retries and outcomes without changing them.

Pass a `Hooks` to `TranslationClient`. Each hook is called synchronously in the client's task,
so it must be quick and must not block; an exception it raises propagates out of the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from client.result import TranslationResult

__all__ = ["Attempt", "Hooks", "RetryEvent"]


class Attempt(NamedTuple):
    """One HTTP request about to be sent.

    A named tuple rather than a frozen dataclass: the client builds one before every request,
    and a frozen dataclass's `__init__` sets each field through `object.__setattr__`. On this
    project's benchmark machine that took 770 ns a call against 350 ns for the tuple.
    """

    job_id: str | None
    """Job id, or None for a create request."""
    endpoint: str
    """"create_job" or "status"."""
    attempt: int
    """1 for the first try of this request, 2 for its first retry, and so on."""
    at: float
    """Loop time when the request is sent, in seconds."""


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """A failed attempt that will be retried after `wait` seconds."""

    job_id: str | None
    endpoint: str
    attempt: int
    """Number of the attempt that failed (1 is the first try)."""
    wait: float
    """Planned wait before the next attempt, in seconds."""
    waited: float
    """Seconds this job has already spent waiting before retries, not counting `wait`."""
    cause: str
    """Why the attempt failed, for example "HTTP 503" or "request timed out"."""
    status: int | None
    """HTTP status of the failed attempt, or None if there was no response."""
    exception: BaseException | None
    """The exception the attempt raised, or None if there was a response."""
    retry_after: float | None
    """Delay the server asked for with Retry-After, in seconds, or None."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks of a `TranslationClient`; any of them may be None.

    `on_success` is called when the job completed; `on_give_up` for every other outcome,
    including a job that ended in error on the server.
    """

    before_attempt: Callable[[Attempt], None] | None = None
    on_retry: Callable[[RetryEvent], None] | None = None
    on_give_up: Callable[[TranslationResult], None] | None = None
    on_success: Callable[[TranslationResult], None] | None = None
