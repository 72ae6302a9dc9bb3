"""The client's policy: polling schedule, retry schedule, attempts and timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from client.backoff import Backoff
from client.validation import FieldError, check_fields

__all__ = ["ClientPolicy"]


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """Settings of a `TranslationClient`; all times are in seconds of the event loop's clock.

    The polling schedule (`poll`) sets the wait between status requests while a job is pending.
    The retry schedule (`retry`) sets the wait after a failed request: a connection error, a
    request timeout, HTTP 408, 429 or 5xx. The two are separate because they answer different
    questions: how soon a job is likely to finish, and how hard to press a struggling server.
    """

    poll: Backoff = field(default_factory=Backoff)
    """Schedule between status polls while the job is pending; try n is the n-th poll."""

    retry: Backoff = field(default_factory=Backoff)
    """Schedule between attempts of one request after a retryable failure."""

    max_attempts: int = field(default=6, metadata={"ge": 1})
    """Maximum attempts for one request, counting the first: 6 means up to 5 retries."""

    total_timeout: float = field(default=600.0, metadata={"gt": 0, "unit": "s"})
    """Deadline for a whole job, from the first request to the final status, in seconds."""

    request_timeout: float = field(default=10.0, metadata={"gt": 0, "unit": "s"})
    """Limit for one HTTP request including reading the body, in seconds."""

    max_retry_after: float = field(default=60.0, metadata={"ge": 0, "unit": "s"})
    """Longest wait a server's Retry-After header can impose, in seconds; longer hints are cut."""

    def __post_init__(self) -> None:
        # Checked here so that a policy that exists is usable: the client never has to guard
        # against a zero deadline or an attempt limit that allows no request at all.
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise FieldError("ClientPolicy", "max_attempts", "an integer >= 1", self.max_attempts)
        check_fields(self)
