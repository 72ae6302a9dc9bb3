"""Job outcomes as the client sees them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TranslationResult", "TranslationStatus"]


class TranslationStatus(str, enum.Enum):
    """The one outcome of a job as the client saw it; compares equal to its string value."""

    COMPLETED = "completed"
    """The server reported the job completed."""

    ERROR = "error"
    """The server reported the job failed."""

    TIMEOUT = "timeout"
    """The total timeout was reached, or the next step would have ended past it."""

    JOB_NOT_FOUND = "job_not_found"
    """The server returned 404 for the job id; not retried."""

    HTTP_ERROR = "http_error"
    """The server returned a status that is not retried (a 4xx other than 408 and 429)."""

    GAVE_UP = "gave_up"
    """One request failed `max_attempts` times in a row."""

    UNEXPECTED_RESPONSE = "unexpected_response"
    """A 2xx response whose body was not the JSON the API documents."""


@dataclass(frozen=True, slots=True)
class TranslationResult:
    """Outcome and cost of one job; times are read from the event loop's monotonic clock."""

    status: TranslationStatus
    job_id: str | None
    """Job id returned by `POST /create_job`, or None if no create request succeeded."""

    error: str | None
    """Human-readable reason for any status other than COMPLETED, else None."""

    requests: int
    """HTTP requests sent for this job, retries included."""

    retries: int
    """Requests that were retries of a failed request."""

    started_at: float
    """Loop time when the job started, in seconds."""

    finished_at: float
    """Loop time when the outcome was known, in seconds."""

    polls: int = 0
    """Status responses that said the job was still pending."""

    connection_wait: float = 0.0
    """Seconds spent waiting for a pooled connection, apart from server latency. Measured only
    on a session the client created itself; 0 for a session passed in."""

    @property
    def elapsed(self) -> float:
        """Time taken from start to outcome, in seconds."""
        return self.finished_at - self.started_at
