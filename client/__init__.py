"""herdsim's polling client for the job API: the code that ships.

`TranslationClient` creates a job with `POST /create_job` and polls `GET /status/{job_id}` with
exponential backoff and jitter until the job ends or the total timeout is reached.
"""

from client.backoff import Backoff, Jitter
from client.hooks import Attempt, Hooks, RetryEvent
from client.policy import ClientPolicy
from client.result import TranslationResult, TranslationStatus
from client.retry_after import RetryAfterError, parse_retry_after
from client.translation import RETRY_AFTER_STATUSES, RETRYABLE_STATUSES, TranslationClient, TranslationError

__all__ = [
    "Attempt",
    "Backoff",
    "ClientPolicy",
    "Hooks",
    "Jitter",
    "RETRY_AFTER_STATUSES",
    "RETRYABLE_STATUSES",
    "RetryAfterError",
    "RetryEvent",
    "TranslationClient",
    "TranslationError",
    "TranslationResult",
    "TranslationStatus",
    "parse_retry_after",
]
