"""Recording: every request, every job and every change of server state, as columns.

A run of thousands of clients sends millions of requests, so nothing here keeps a Python object
per request. A request is two rows of doubles in two `array.array`s: what is known when it is
sent (`SENT_FIELDS`), appended with one call, and how it ended (`END_FIELDS`), filled in by
index as the server and the session learn it. Server state changes are rows of three doubles.
Row-wise storage costs one call per row instead of one per field, on the simulator's hottest
path. Every value stored as a double (client numbers, codes, statuses) is an integer far below
2**53, so it is exact. The `request_*` and `state_*` properties return typed numpy columns, and
`sim.tables` turns them into DataFrames after the run.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

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

SENT_FIELDS = ("client", "endpoint", "sent_at", "attempt")
"""Fields of a request's sent row, fixed when the request is sent."""
END_FIELDS = ("job", "finished_at", "status", "error", "admission", "arrived_at",
              "service_started_at", "service_ended_at")
"""Fields of a request's end row, filled in as the request goes."""
SENT_WIDTH = len(SENT_FIELDS)
END_WIDTH = len(END_FIELDS)
# Offsets into a request's end row, for `ends[index * END_WIDTH + offset] = value`.
JOB, FINISHED_AT, STATUS, ERROR, ADMISSION, ARRIVED_AT, SERVICE_STARTED_AT, SERVICE_ENDED_AT = range(END_WIDTH)

_NAN = math.nan


class Recorder:
    """Columns of requests, jobs and server state, appended to while the simulation runs."""

    def __init__(self) -> None:
        # Requests: one sent row and one end row per HTTP request a client sent. Times are
        # simulated seconds. `status` is the HTTP status of the response, or 0 where there was
        # none. `arrived_at` and the service times are NaN where the request never got there.
        # `attempt` is 1 for the first try of a request, 2 for its first retry, and so on.
        self.sends = array("d")
        self.ends = array("d")

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

        # Server state: one row (time, queue length, busy workers) per change.
        self.states = array("d")

    @property
    def request_count(self) -> int:
        """Requests recorded so far."""
        return len(self.sends) // SENT_WIDTH

    def request_sent(self, client: int, endpoint: int, job: int, now: float, attempt: int) -> int:
        """Add a request sent at `now`, and return its index; it counts as unfinished until
        `request_finished`."""
        index = len(self.sends) // SENT_WIDTH
        self.sends.extend((client, endpoint, now, attempt))
        self.ends.extend((job, _NAN, 0.0, UNFINISHED, NOT_RECEIVED, _NAN, _NAN, _NAN))
        return index

    def request_finished(self, index: int, now: float, status: int, error: int, job: int) -> None:
        """Fill in how request `index` ended: a response `status`, or an `error` code."""
        ends = self.ends
        base = index * END_WIDTH
        ends[base + FINISHED_AT] = now
        ends[base + STATUS] = status
        ends[base + ERROR] = error
        if job >= 0:
            ends[base + JOB] = job

    def set_admission(self, index: int, admission: int) -> None:
        """Note what the server did with request `index`: one of the `ADMISSIONS` codes."""
        self.ends[index * END_WIDTH + ADMISSION] = admission

    def admission(self, index: int) -> int:
        """Return the `ADMISSIONS` code of request `index` so far."""
        return int(self.ends[index * END_WIDTH + ADMISSION])

    def arrived_at(self, index: int) -> float:
        """Return when request `index` reached the server, or NaN."""
        return self.ends[index * END_WIDTH + ARRIVED_AT]

    # ------------------------------------------------------------------ typed columns

    def _sent_column(self, name: str, dtype: type) -> np.ndarray:
        rows = np.frombuffer(self.sends, dtype=np.float64).reshape(-1, SENT_WIDTH)
        return rows[:, SENT_FIELDS.index(name)].astype(dtype)

    def _end_column(self, name: str, dtype: type) -> np.ndarray:
        rows = np.frombuffer(self.ends, dtype=np.float64).reshape(-1, END_WIDTH)
        return rows[:, END_FIELDS.index(name)].astype(dtype)

    @property
    def request_client(self) -> np.ndarray:
        return self._sent_column("client", np.int64)

    @property
    def request_endpoint(self) -> np.ndarray:
        return self._sent_column("endpoint", np.uint8)

    @property
    def request_sent_at(self) -> np.ndarray:
        return self._sent_column("sent_at", np.float64)

    @property
    def request_attempt(self) -> np.ndarray:
        return self._sent_column("attempt", np.int16)

    @property
    def request_job(self) -> np.ndarray:
        return self._end_column("job", np.int64)

    @property
    def request_finished_at(self) -> np.ndarray:
        return self._end_column("finished_at", np.float64)

    @property
    def request_status(self) -> np.ndarray:
        return self._end_column("status", np.int16)

    @property
    def request_error(self) -> np.ndarray:
        return self._end_column("error", np.uint8)

    @property
    def request_admission(self) -> np.ndarray:
        return self._end_column("admission", np.uint8)

    @property
    def request_arrived_at(self) -> np.ndarray:
        return self._end_column("arrived_at", np.float64)

    @property
    def request_service_started_at(self) -> np.ndarray:
        return self._end_column("service_started_at", np.float64)

    @property
    def request_service_ended_at(self) -> np.ndarray:
        return self._end_column("service_ended_at", np.float64)

    @property
    def state_time(self) -> np.ndarray:
        return np.frombuffer(self.states, dtype=np.float64)[0::3].copy()

    @property
    def state_queue(self) -> np.ndarray:
        return np.frombuffer(self.states, dtype=np.float64)[1::3].astype(np.int64)

    @property
    def state_busy(self) -> np.ndarray:
        return np.frombuffer(self.states, dtype=np.float64)[2::3].astype(np.int64)

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
        self.states.extend((now, queue, busy))

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
