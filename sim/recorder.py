"""Recording: every request, every job and every change of server state, as columns.

A run of thousands of clients sends millions of requests, so nothing here keeps a Python object
per request: each field is an `array.array` (or a `bytearray` for small codes) that grows by
one machine value per row. `sim.tables` turns the columns into DataFrames after the run.
"""

from __future__ import annotations

import math
from array import array

from client import TranslationResult, TranslationStatus

__all__ = [
    "Recorder",
    "ADMISSIONS",
    "ENDPOINTS",
    "ERRORS",
    "JOB_OUTCOMES",
    "NO_ERROR",
    "TIMEOUT",
    "CONNECTION_ERROR",
    "UNFINISHED",
]

ENDPOINTS = ("create", "status", "other")
"""Endpoint names by code."""

NOT_RECEIVED, ADMITTED, REJECTED, FAULTED, REFUSED, RATE_LIMITED, ABANDONED = range(7)
ADMISSIONS = ("not_received", "admitted", "rejected", "faulted", "refused", "rate_limited", "abandoned")
"""What the server did with a request, by code. `rejected`: the queue was full or the request
waited past the queue timeout. `faulted`: an injected fault rule matched. `refused`: the server
was down. `rate_limited`: the token bucket was empty. `abandoned`: dropped from the queue after
its client timed out. `not_received`: it never arrived (dropped by the network, or the run ended)."""

NO_ERROR, TIMEOUT, CONNECTION_ERROR, UNFINISHED = range(4)
ERRORS = ("none", "timeout", "connection_error", "unfinished")
"""Request error kinds by code: `unfinished` means no response before the run ended."""

JOB_OUTCOMES = tuple(status.value for status in TranslationStatus) + ("unfinished",)
"""Job outcomes by code: the client's `TranslationStatus` values, then `unfinished` for jobs
still running when the run's duration ran out."""

_OUTCOME_CODE = {status: code for code, status in enumerate(TranslationStatus)}
_UNFINISHED_JOB = len(JOB_OUTCOMES) - 1


class Recorder:
    """Columns of requests, jobs and server state, appended to while the simulation runs."""

    def __init__(self) -> None:
        # Requests: one row per HTTP request a client sent. Times are simulated seconds.
        self.request_client = array("q")
        self.request_job = array("q")
        self.request_endpoint = bytearray()
        self.request_sent_at = array("d")
        self.request_finished_at = array("d")
        self.request_status = array("h")
        """HTTP status of the response, or 0 where there was none."""
        self.request_error = bytearray()
        self.request_admission = bytearray()
        self.request_arrived_at = array("d")
        """When the request reached the server, or NaN if it never did."""
        self.request_service_started_at = array("d")
        self.request_service_ended_at = array("d")
        """When a worker started and finished serving the request, or NaN."""
        self.request_attempt = array("h")
        """1 for the first try of a request, 2 for its first retry, and so on."""

        # Jobs: one row per job a client ran, whatever its outcome.
        self.job_client = array("q")
        self.job_number = array("q")
        """Server-side job number, or -1 if no create request succeeded."""
        self.job_started_at = array("d")
        self.job_finished_at = array("d")
        """When the client knew the outcome, or NaN for unfinished jobs."""
        self.job_outcome = bytearray()
        self.outcome_names = list(JOB_OUTCOMES)
        """Job outcome names by code; custom client coroutines may add their own."""
        self.job_requests = array("q")
        self.job_retries = array("q")
        self.job_polls = array("q")

        self.resends = 0
        """Requests the session resent by itself after a disconnect, as aiohttp does."""

        # Server state: one row per change of queue length or busy workers.
        self.state_time = array("d")
        self.state_queue = array("q")
        self.state_busy = array("q")

    def request_sent(self, client: int, endpoint: int, job: int, now: float, attempt: int) -> int:
        """Add a request sent at `now`; it counts as unfinished until `request_finished`."""
        index = len(self.request_sent_at)
        self.request_client.append(client)
        self.request_job.append(job)
        self.request_endpoint.append(endpoint)
        self.request_sent_at.append(now)
        self.request_finished_at.append(math.nan)
        self.request_status.append(0)
        self.request_error.append(UNFINISHED)
        self.request_admission.append(NOT_RECEIVED)
        self.request_attempt.append(attempt)
        self.request_arrived_at.append(math.nan)
        self.request_service_started_at.append(math.nan)
        self.request_service_ended_at.append(math.nan)
        return index

    def request_finished(self, index: int, now: float, status: int, error: int, job: int) -> None:
        """Fill in how request `index` ended: a response `status`, or an `error` code."""
        self.request_finished_at[index] = now
        self.request_status[index] = status
        self.request_error[index] = error
        if job >= 0:
            self.request_job[index] = job

    def job_finished(self, client: int, job: int, result: TranslationResult) -> None:
        """Add the job that `client` ran, as its `result` reports it."""
        self._add_job(client, job, result.started_at, result.finished_at,
                      _OUTCOME_CODE[result.status], result.requests, result.retries, result.polls)

    def job_custom(self, client: int, job: int, outcome: str, started_at: float, finished_at: float,
                   requests: int, retries: int = -1) -> None:
        """Add a job of a custom client coroutine, with an outcome name of its choice."""
        try:
            code = self.outcome_names.index(outcome)
        except ValueError:
            code = len(self.outcome_names)
            if code > 255:
                raise ValueError("a run may use at most 256 distinct job outcome names") from None
            self.outcome_names.append(outcome)
        self._add_job(client, job, started_at, finished_at, code, requests, retries, -1)

    def job_unfinished(self, client: int, job: int, started_at: float, requests: int) -> None:
        """Add a job that was still running when the run ended; its retries and polls are -1."""
        self._add_job(client, job, started_at, math.nan, _UNFINISHED_JOB, requests, -1, -1)

    def server_state(self, now: float, queue: int, busy: int) -> None:
        """Note that the queue length or the busy workers changed at `now`."""
        self.state_time.append(now)
        self.state_queue.append(queue)
        self.state_busy.append(busy)

    def _add_job(self, client: int, job: int, started_at: float, finished_at: float,
                 outcome: int, requests: int, retries: int, polls: int) -> None:
        self.job_client.append(client)
        self.job_number.append(job)
        self.job_started_at.append(started_at)
        self.job_finished_at.append(finished_at)
        self.job_outcome.append(outcome)
        self.job_requests.append(requests)
        self.job_retries.append(retries)
        self.job_polls.append(polls)
