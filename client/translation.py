"""`TranslationClient`: create a job, then poll its status with backoff until it ends.

The client talks to the job API:

- `POST /create_job` returns `{"job_id": "..."}`; the client sends an `Idempotency-Key` header
  so that a retried create returns the job the first attempt created;
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
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp

from client.hooks import Attempt, Hooks, RetryEvent
from client.policy import ClientPolicy
from client.result import TranslationResult, TranslationStatus
from client.retry_after import RetryAfterError, parse_retry_after

__all__ = ["TranslationClient", "TranslationError", "RETRYABLE_STATUSES", "RETRY_AFTER_STATUSES"]

logger = logging.getLogger("client")

RETRYABLE_STATUSES = frozenset({408, 429, *range(500, 600)})
"""HTTP statuses that are retried with backoff; any other 4xx ends the job."""

RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Error statuses whose Retry-After header the client honours."""

_MESSAGE_LIMIT = 200  # characters of a response body quoted in an error message
_NO_HOOKS = Hooks()


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

    __slots__ = ("loop", "started_at", "deadline", "job_id", "requests", "retries", "polls",
                 "waited", "connection_wait", "queued_at", "queued")

    def __init__(self, loop: asyncio.AbstractEventLoop, total_timeout: float) -> None:
        self.loop = loop
        self.started_at = loop.time()
        self.deadline = self.started_at + total_timeout
        self.job_id: str | None = None
        self.requests = 0
        self.retries = 0
        self.polls = 0
        self.waited = 0.0
        self.connection_wait = 0.0
        self.queued_at = 0.0
        self.queued = False

    def result(self, status: TranslationStatus, error: str | None) -> TranslationResult:
        return TranslationResult(
            status=status,
            job_id=self.job_id,
            error=error,
            requests=self.requests,
            retries=self.retries,
            started_at=self.started_at,
            finished_at=self.loop.time(),
            polls=self.polls,
            connection_wait=self.connection_wait,
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
    aiohttp's own default. `hooks` observe attempts, retries and outcomes.
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
        hooks: Hooks | None = None,
    ) -> None:
        if rng is not None and seed is not None:
            raise TypeError("pass either rng or seed to TranslationClient, not both")
        if isinstance(connection_limit, bool) or not isinstance(connection_limit, int) or connection_limit < 1:
            raise ValueError(f"connection_limit must be an integer >= 1; got {connection_limit!r}")

        self._base_url = base_url.rstrip("/")
        self._create_url = self._base_url + "/create_job"
        self._status_prefix = self._base_url + "/status/"
        self._policy = policy if policy is not None else ClientPolicy()
        self._rng = rng if rng is not None else random.Random(seed)
        self._hooks = hooks if hooks is not None else _NO_HOOKS
        self._session = session
        self._owns_session = session is None
        self._connection_limit = connection_limit
        self._closed = False

        # aiohttp rounds a timeout of `ceil_threshold` seconds or more up to a whole second of
        # loop time. An infinite threshold keeps every request inside the total timeout.
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

    # ------------------------------------------------------------------ public operations

    async def translate(self) -> TranslationResult:
        """Create a job and poll it until it completes, fails or the total timeout is reached.

        Server and network failures end in the result's `status` instead of an exception.
        `asyncio.CancelledError` propagates.
        """
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        try:
            run.job_id = await self._create(run)
            result = await self._wait(run)
        except _Stop as stop:
            result = run.result(stop.status, stop.message)
        return self._finish(result)

    async def create_job(self) -> str:
        """Create a job and return its id, retrying failures within the total timeout.

        Raises `TranslationError` with the result if no job could be created.
        """
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        try:
            return await self._create(run)
        except _Stop as stop:
            raise TranslationError(self._finish(run.result(stop.status, stop.message))) from None

    async def wait_for_job(self, job_id: str) -> TranslationResult:
        """Poll an existing job until it ends; the total timeout starts now.

        Raises `ValueError` for an id that cannot be a URL path segment ("", "." or "..").
        """
        if not _usable_job_id(job_id):
            raise ValueError(f"job_id must be a non-empty string other than '.' and '..'; got {job_id!r}")
        run = _Run(asyncio.get_running_loop(), self._policy.total_timeout)
        run.job_id = job_id
        try:
            result = await self._wait(run)
        except _Stop as stop:
            result = run.result(stop.status, stop.message)
        return self._finish(result)

    # ------------------------------------------------------------------ steps of a job

    def _finish(self, result: TranslationResult) -> TranslationResult:
        hook = self._hooks.on_success if result.status is TranslationStatus.COMPLETED else self._hooks.on_give_up
        if hook is not None:
            hook(result)
        return result

    async def _create(self, run: _Run) -> str:
        # The key must be unique across clients, even ones a user built with the same seed, so
        # it comes from the OS rather than the seeded generator. Its value never changes what
        # the server does (only whether two keys are equal), so seeded runs stay reproducible.
        key = str(uuid.uuid4())
        data, _ = await self._send(run, "POST", self._create_url, "create_job",
                                   headers={"Idempotency-Key": key})
        job_id = data.get("job_id") if isinstance(data, dict) else None
        if isinstance(job_id, int) and not isinstance(job_id, bool):
            job_id = str(job_id)
        if not isinstance(job_id, str) or not _usable_job_id(job_id):
            raise _Stop(
                TranslationStatus.UNEXPECTED_RESPONSE,
                f"POST /create_job returned no usable job_id; body was {_quote(data)}",
            )
        return job_id

    async def _wait(self, run: _Run) -> TranslationResult:
        """Poll until the job ends.

        While the job is pending the next poll waits the polling schedule's delay. If a pending
        response carries a Retry-After header, that hint (bounded by `max_retry_after`)
        replaces the schedule's delay for that poll, because the server has the best estimate of
        the job's remaining time.
        """
        url = self._status_prefix + quote(run.job_id, safe="")
        policy = self._policy
        rng = self._rng
        loop = run.loop
        delay = None

        while True:
            data, hint = await self._send(run, "GET", url, "status")
            state = data.get("result") if isinstance(data, dict) else None

            if state == "pending":
                run.polls += 1
                delay = policy.poll.delay(run.polls, rng, delay)
                if hint is not None:
                    delay = min(hint, policy.max_retry_after)
                if loop.time() + delay >= run.deadline:
                    raise _Stop(
                        TranslationStatus.TIMEOUT,
                        f"job still pending after {run.polls} polls; the next poll in {delay:.3f} s "
                        f"would pass the total timeout of {policy.total_timeout} s",
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

    async def _send(self, run: _Run, method: str, url: str, endpoint: str,
                    headers: dict[str, str] | None = None) -> tuple[Any, float | None]:
        """Send one request, retrying retryable failures.

        Returns the decoded JSON of the 2xx response and the delay its Retry-After header requests
        (None without one). Raises `_Stop` when the job must end.
        """
        session = self._session if self._session is not None else self._open_session()
        policy = self._policy
        hooks = self._hooks
        loop = run.loop
        attempt = 0
        delay = None

        while True:
            attempt += 1
            now = loop.time()
            remaining = run.deadline - now
            if remaining <= 0:
                raise _Stop(TranslationStatus.TIMEOUT, f"total timeout of {policy.total_timeout} s exceeded")
            timeout = self._request_timeout
            if remaining < policy.request_timeout:
                timeout = aiohttp.ClientTimeout(total=remaining, ceil_threshold=math.inf)

            if hooks.before_attempt is not None:
                hooks.before_attempt(Attempt(run.job_id, endpoint, attempt, now))
            run.requests += 1
            status = None
            error = None
            retry_after = None
            try:
                async with session.request(method, url, timeout=timeout, headers=headers,
                                           trace_request_ctx=run) as response:
                    status = response.status
                    if 200 <= status < 300:
                        return await self._decode(response, run, method, endpoint)
                    if status == 404 and endpoint == "status":
                        raise _Stop(TranslationStatus.JOB_NOT_FOUND, f"job {run.job_id} not found (HTTP 404)")
                    if status not in RETRYABLE_STATUSES:
                        body = await response.text(errors="replace")
                        raise _Stop(
                            TranslationStatus.HTTP_ERROR,
                            f"{method} {endpoint} returned HTTP {status}, which is not retried: {_quote(body)}",
                        )
                    if status in RETRY_AFTER_STATUSES:
                        retry_after = self._retry_after(response, run, endpoint)
                    cause = f"HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = exc
                cause = _describe(exc)
                if run.queued:
                    # The request timed out while waiting for a pooled connection.
                    run.queued = False
                    run.connection_wait += loop.time() - run.queued_at

            delay = self._plan_retry(run, method, endpoint, attempt, cause, delay, retry_after)
            if hooks.on_retry is not None:
                hooks.on_retry(RetryEvent(run.job_id, endpoint, attempt, delay, run.waited, cause,
                                          status, error, retry_after))
            run.retries += 1
            run.waited += delay
            await asyncio.sleep(delay)

    def _plan_retry(self, run: _Run, method: str, endpoint: str, attempt: int, cause: str,
                    previous: float | None, retry_after: float | None) -> float:
        """Return the wait before the next attempt, or raise `_Stop` if there must be none.

        The wait is the retry schedule's delay, raised to the server's Retry-After hint (cut to
        `max_retry_after`) when there is one, so the client never returns sooner than asked.
        """
        policy = self._policy
        job = run.job_id or "(not created)"
        if attempt >= policy.max_attempts:
            logger.warning("%s attempt %d of %d for job %s failed (%s); giving up",
                           endpoint, attempt, policy.max_attempts, job, cause)
            raise _Stop(
                TranslationStatus.GAVE_UP,
                f"{method} {endpoint} failed {attempt} times in a row; last cause: {cause}",
            )

        now = run.loop.time()
        if retry_after is not None and now + retry_after >= run.deadline:
            logger.warning("%s attempt %d for job %s failed (%s); the server asked for %.3f s, "
                           "past the total timeout, giving up", endpoint, attempt, job, cause, retry_after)
            raise _Stop(
                TranslationStatus.TIMEOUT,
                f"{method} {endpoint} attempt {attempt} failed ({cause}) and the server's Retry-After "
                f"of {retry_after:.3f} s would pass the total timeout of {policy.total_timeout} s",
            )

        delay = policy.retry.delay(attempt, self._rng, previous)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max_retry_after))
        if now + delay >= run.deadline:
            logger.warning("%s attempt %d of %d for job %s failed (%s); the retry in %.3f s would pass "
                           "the total timeout, giving up",
                           endpoint, attempt, policy.max_attempts, job, cause, delay)
            raise _Stop(
                TranslationStatus.TIMEOUT,
                f"{method} {endpoint} attempt {attempt} failed ({cause}) and the retry in "
                f"{delay:.3f} s would pass the total timeout of {policy.total_timeout} s",
            )

        logger.warning("%s attempt %d of %d for job %s failed (%s); retrying in %.3f s",
                       endpoint, attempt, policy.max_attempts, job, cause, delay)
        return delay

    async def _decode(self, response: Any, run: _Run, method: str, endpoint: str) -> tuple[Any, float | None]:
        try:
            data = await response.json(content_type=None)
        except ValueError as exc:
            body = await response.text(errors="replace")
            raise _Stop(
                TranslationStatus.UNEXPECTED_RESPONSE,
                f"{method} {endpoint} returned HTTP {response.status} with a body that is not JSON "
                f"({exc}): {_quote(body)}",
            ) from None
        hint = None
        if "Retry-After" in response.headers:
            hint = self._retry_after(response, run, endpoint)
        return data, hint

    def _retry_after(self, response: Any, run: _Run, endpoint: str) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return parse_retry_after(value, response.headers.get("Date"))
        except RetryAfterError as exc:
            logger.warning("%s for job %s: ignoring the Retry-After header: %s",
                           endpoint, run.job_id or "(not created)", exc)
            return None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("TranslationClient is closed; create a new one")
        trace = aiohttp.TraceConfig()
        trace.on_connection_queued_start.append(_on_queued_start)
        trace.on_connection_queued_end.append(_on_queued_end)
        connector = aiohttp.TCPConnector(limit=self._connection_limit)
        self._session = aiohttp.ClientSession(connector=connector, trace_configs=[trace])
        return self._session


async def _on_queued_start(session: Any, context: Any, params: Any) -> None:
    run = context.trace_request_ctx
    if isinstance(run, _Run):
        run.queued_at = run.loop.time()
        run.queued = True


async def _on_queued_end(session: Any, context: Any, params: Any) -> None:
    run = context.trace_request_ctx
    if isinstance(run, _Run) and run.queued:
        run.queued = False
        run.connection_wait += run.loop.time() - run.queued_at


def _usable_job_id(job_id: object) -> bool:
    # URL normalisation removes "." and ".." path segments (yarl does, even percent-encoded),
    # so /status/.. would reach another path.
    return isinstance(job_id, str) and job_id not in ("", ".", "..")


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
