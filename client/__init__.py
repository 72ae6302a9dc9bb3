"""herdsim's polling client for the job API: the code that ships.

`TranslationClient` creates a job with `POST /create_job` and polls `GET /status/{job_id}` with
exponential backoff and jitter until the job ends or the total timeout is reached.
"""

from client.backoff import Backoff, Jitter
from client.policy import ClientPolicy
from client.result import TranslationResult, TranslationStatus
from client.translation import RETRYABLE_STATUSES, TranslationClient, TranslationError

__all__ = [
    "Backoff",
    "ClientPolicy",
    "Jitter",
    "RETRYABLE_STATUSES",
    "TranslationClient",
    "TranslationError",
    "TranslationResult",
    "TranslationStatus",
]
