"""`TranslationClient`: create a job, then poll its status with backoff until it ends.

The client talks to the job API:

- `POST /create_job` returns `{"job_id": "..."}`;
- `GET /status/{job_id}` returns `{"result": "pending" | "completed" | "error"}`.

It owns one `aiohttp.ClientSession` (or uses one it was given) and reuses it for every request.
Time is read only from the running loop's monotonic clock and randomness only from the
`random.Random` it was given, so the same code runs unchanged on a real event loop and on the
simulator's virtual-time loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Any
from urllib.parse import quote

import aiohttp

from client.policy import ClientPolicy
from client.result import TranslationResult, TranslationStatus

__all__ = ["TranslationClient", "TranslationError", "RETRYABLE_STATUSES"]

logger = logging.getLogger("client")

RETRYABLE_STATUSES = frozenset({408, 429, *range(500, 600)})
"""HTTP statuses that are retried with backoff; any other 4xx ends the job."""

_MESSAGE_LIMIT = 200  # characters of a response body quoted in an error message


class TranslationError(Exception):
    """Raised by `TranslationClient.create_job` when no job could be created."""

    def __init__(self, result: TranslationResult) -> None:
        super().__init__(result.error)
        self.result = result


class _Stop(Exception):
    """Ends a job early with a final status; never leaves this module."""

    def __init__(self, status: TranslationStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Run:
    """Book-keeping of one job: its deadline and what it has cost so far."""

    __slots__ = ("loop", "started_at", "deadline", "job_id", "requests", "retries")

    def __init__(self, loop: asyncio.AbstractEventLoop, total_timeout: float) -> None:
        self.loop = loop
        self.started_at = loop.time()
        self.deadline = self.started_at + total_timeout
        self.job_id: str | None = None
        self.requests = 0
        self.retries = 0

    def result(self, status: TranslationStatus, error: str | None) -> TranslationResult:
        return TranslationResult(
            status=status,
            job_id=self.job_id,
            error=error,
            requests=self.requests,
            retries=self.retries,
            started_at=self.started_at,
            finished_at=self.loop.time(),
        )


class TranslationClient:
    """Client for the job API with exponential backoff, jitter and a total timeout.

    Use it as an async context manager so that the session it creates is closed exactly once:

        async with TranslationClient("http://127.0.0.1:8080", policy, seed=7) as client:
            result = await client.translate()

    `session` may be any object with the `request()` and `close()` subset of
    `aiohttp.ClientSession` that this class uses; a session passed in is not closed by the client.
    `rng` (or `seed`, which builds one) is the only source of jitter.
    `connection_limit` caps the pooled connections of the session the client creates; 100 is
    aiohttp's own default.
    """

    def __init__(
        self,
        base_url: str,
        policy: ClientPolicy | None = None,
        *,
        session: Any = None,
        rng: random.Random | None = None,
        seed: int | None = None,
        connection_limit: int = 100,
    ) -> None:
        if rng is not None and seed is not None:
            raise TypeError("pass either rng or seed to TranslationClient, not both")
        if connection_limit < 1:
            raise ValueError(f"connection_limit must be >= 1; got {connection_limit!r}")

        self._base_url = base_url.rstrip("/")
        self._create_url = self._base_url + "/create_job"
        self._status_prefix = self._base_url + "/status/"
        self._policy = policy if policy is not None else ClientPolicy()
        self._rng = rng if rng is not None else random.Random(seed)
        self._session = session
        self._owns_session = session is None
        self._connection_limit = connection_limit
        self._closed = False

        # aiohttp rounds a timeout of `ceil_threshold` seconds or more up to a whole second of
        # loop time; an infinite threshold keeps every request inside the total timeout.
        self._request_timeout = aiohttp.ClientTimeout(
            total=self._policy.request_timeout, ceil_threshold=math.inf
        )

    @property
    def policy(self) -> ClientPolicy:
        """The policy this client follows."""
        return self._policy

    @property
    def base_url(self) -> str:
        """Root URL of the job API, without a trailing slash."""
        return self._base_url

    async def __aenter__(self) -> TranslationClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session this client created; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def translate(self) -> TranslationResult:
        """Create a job and poll it until it completes, fails or the total timeout is reached.

        Never raises for a server or network failure: the outcome is in the result's `status`.
        `asyncio.CancelledError` propagates.
        """
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        try:
            run.job_id = await self._create(run)
            return await self._wait(run)
        except _Stop as stop:
            return run.result(stop.status, stop.message)

    async def create_job(self) -> str:
        """Create a job and return its id, retrying failures within the total timeout.

        Raises `TranslationError` with the result if no job could be created.
        """
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        try:
            return await self._create(run)
        except _Stop as stop:
            raise TranslationError(run.result(stop.status, stop.message)) from None

    async def wait_for_job(self, job_id: str) -> TranslationResult:
        """Poll an existing job until it ends; the total timeout starts now."""
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        run.job_id = job_id
        try:
            return await self._wait(run)
        except _Stop as stop:
            return run.result(stop.status, stop.message)

    async def _create(self, run: _Run) -> str:
        data = await self._send(run, "POST", self._create_url, "create_job", not_found_ends_job=False)
        job_id = data.get("job_id") if isinstance(data, dict) else None
        if isinstance(job_id, int) and not isinstance(job_id, bool):
            job_id = str(job_id)
        if not isinstance(job_id, str) or not job_id:
            raise _Stop(
                TranslationStatus.UNEXPECTED_RESPONSE,
                f"POST /create_job returned no job_id string; body was {_quote(data)}",
            )
        return job_id

    async def _wait(self, run: _Run) -> TranslationResult:
        url = self._status_prefix + quote(run.job_id, safe="")
        poll = self._policy.poll
        rng = self._rng
        loop = run.loop
        polls = 0
        delay = None

        while True:
            data = await self._send(run, "GET", url, "status", not_found_ends_job=True)
            state = data.get("result") if isinstance(data, dict) else None

            if state == "pending":
                polls += 1
                delay = poll.delay(polls, rng, delay)
                if loop.time() + delay >= run.deadline:
                    raise _Stop(
                        TranslationStatus.TIMEOUT,
                        f"job still pending after {polls} polls; the next poll in {delay:.3f} s "
                        f"would pass the total timeout of {self._policy.total_timeout} s",
                    )
                await asyncio.sleep(delay)
                continue

            if state == "completed":
                return run.result(TranslationStatus.COMPLETED, None)
            if state == "error":
                detail = data.get("error")
                reason = f": {detail}" if isinstance(detail, str) and detail else ""
                return run.result(TranslationStatus.ERROR, f"job {run.job_id} failed on the server{reason}")
            raise _Stop(
                TranslationStatus.UNEXPECTED_RESPONSE,
                f"GET /status/{run.job_id} returned an unknown result; body was {_quote(data)}",
            )

    async def _send(self, run: _Run, method: str, url: str, endpoint: str, *, not_found_ends_job: bool) -> Any:
        """Send one request, retrying retryable failures; return the decoded JSON of a 2xx."""
        if self._session is None:
            if self._closed:
                raise RuntimeError("TranslationClient is closed; create a new one")
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            self._session = aiohttp.ClientSession(connector=connector)
        session = self._session
        policy = self._policy
        loop = run.loop
        attempt = 0
        delay = None

        while True:
            attempt += 1
            remaining = run.deadline - loop.time()
            if remaining <= 0:
                raise _Stop(TranslationStatus.TIMEOUT, f"total timeout of {policy.total_timeout} s exceeded")
            timeout = self._request_timeout
            if remaining < policy.request_timeout:
                timeout = aiohttp.ClientTimeout(total=remaining, ceil_threshold=math.inf)

            run.requests += 1
            try:
                async with session.request(method, url, timeout=timeout) as response:
                    status = response.status
                    if 200 <= status < 300:
                        try:
                            return await response.json(content_type=None)
                        except ValueError as exc:
                            raise _Stop(
                                TranslationStatus.UNEXPECTED_RESPONSE,
                                f"{method} {endpoint} returned HTTP {status} with a body that is not JSON: {exc}",
                            ) from None
                    if status == 404 and not_found_ends_job:
                        raise _Stop(TranslationStatus.JOB_NOT_FOUND, f"job {run.job_id} not found (HTTP 404)")
                    if status not in RETRYABLE_STATUSES:
                        body = await response.text(errors="replace")
                        raise _Stop(
                            TranslationStatus.HTTP_ERROR,
                            f"{method} {endpoint} returned HTTP {status}, which is not retried: {_quote(body)}",
                        )
                    cause = f"HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                cause = _describe(exc)

            if attempt >= policy.max_attempts:
                logger.warning(
                    "%s attempt %d of %d for job %s failed (%s); giving up",
                    endpoint, attempt, policy.max_attempts, run.job_id or "(not created)", cause,
                )
                raise _Stop(
                    TranslationStatus.GAVE_UP,
                    f"{method} {endpoint} failed {attempt} times in a row; last cause: {cause}",
                )

            delay = policy.retry.delay(attempt, self._rng, delay)
            if loop.time() + delay >= run.deadline:
                logger.warning(
                    "%s attempt %d of %d for job %s failed (%s); the retry in %.3f s would pass "
                    "the total timeout, giving up",
                    endpoint, attempt, policy.max_attempts, run.job_id or "(not created)", cause, delay,
                )
                raise _Stop(
                    TranslationStatus.TIMEOUT,
                    f"{method} {endpoint} attempt {attempt} failed ({cause}) and the retry in "
                    f"{delay:.3f} s would pass the total timeout of {policy.total_timeout} s",
                )

            logger.warning(
                "%s attempt %d of %d for job %s failed (%s); retrying in %.3f s",
                endpoint, attempt, policy.max_attempts, run.job_id or "(not created)", cause, delay,
            )
            run.retries += 1
            await asyncio.sleep(delay)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "request timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _quote(value: object) -> str:
    text = repr(value)
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return text
