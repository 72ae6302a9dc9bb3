"""Client coroutines: what each virtual client runs, and the context it gets.

A client coroutine is `async def client(context: ClientContext) -> None`. It sends requests
through `context.session` (the `SimSession` stand-in for `aiohttp.ClientSession`), draws
randomness only from `context.rng`, and reports each job it runs with `context.job_started()`
and then `context.job_finished(...)` (or `context.record_result(...)` for a
`TranslationResult`). A coroutine that retries sets `context.session.attempt` to the attempt
number before each request, so that the requests table and the retry count are right. A job still running when the run's duration ends is recorded as
`unfinished` by the engine.

Built in:

- `translation`: the real `TranslationClient`, running `jobs_per_client` jobs with think time
  between them;
- `single_request`: one request to `options.path` (default "/work") per job, no retries; the
  open-workload driver of the queueing validation tests.

A config names any other coroutine by a dotted path, "package.module:function" (see
`sim.plugins`).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from client import ClientPolicy, Hooks, TranslationClient, TranslationResult
from sim.distributions import Distribution
from sim.jobs import parse_job_id
from sim.recorder import Recorder
from sim.session import SimSession

__all__ = ["BUILT_IN_CLIENTS", "ClientContext", "ClientCoroutine", "translation", "single_request"]

ClientCoroutine = Callable[["ClientContext"], Awaitable[None]]


@dataclass
class ClientContext:
    """Everything one virtual client may use; times are simulated seconds."""

    index: int
    """The client's number, from 0 in order of start time."""
    session: SimSession
    rng: random.Random
    """The client's own random stream: the only randomness it should use."""
    policy: ClientPolicy
    base_url: str
    jobs: int
    """Jobs the client should run, one after another."""
    think_time: Distribution
    options: dict[str, Any]
    recorder: Recorder = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)
    job_running: bool = False
    job_started_at: float = 0.0
    job_requests_before: int = 0

    def think(self) -> float:
        """Draw the pause before the client's next job, in seconds."""
        return self.think_time.sample(self.rng)

    def job_started(self) -> None:
        """Mark the start of a job, so that the engine can record it if the run ends first."""
        self.job_running = True
        self.job_started_at = self.loop.time()
        self.job_requests_before = self.session.requests
        self.session.job = -1

    def job_finished(self, outcome: str, *, job: int = -1, retries: int = -1) -> None:
        """Record the job started last as ended now with `outcome` (any short name)."""
        self.job_running = False
        self.recorder.job_custom(self.index, job, outcome, self.job_started_at, self.loop.time(),
                                 self.session.requests - self.job_requests_before, retries)

    def record_result(self, result: TranslationResult) -> None:
        """Record the job started last as `TranslationClient` reported it."""
        self.job_running = False
        job = parse_job_id(result.job_id) if result.job_id is not None else -1
        self.recorder.job_finished(self.index, job, result)

    def record_unfinished(self) -> None:
        """Record the running job as unfinished; the engine calls this when the run ends."""
        if self.job_running:
            self.job_running = False
            self.recorder.job_unfinished(self.index, self.session.job, self.job_started_at,
                                         self.session.requests - self.job_requests_before)


async def translation(context: ClientContext) -> None:
    """Run `context.jobs` jobs with the real `TranslationClient`, with think time between them."""
    client = TranslationClient(context.base_url, context.policy, session=context.session,
                               rng=context.rng, hooks=Hooks(before_attempt=context.session.note_attempt))
    async with client:
        for number in range(context.jobs):
            if number:
                await asyncio.sleep(context.think())
            context.job_started()
            context.record_result(await client.translate())


async def single_request(context: ClientContext) -> None:
    """Send one request per job to `options.path` with the policy's request timeout.

    Outcomes are "completed" for a status below 400, "http_error" for any other status and
    "gave_up" when the request failed or timed out.
    """
    path = context.options.get("path", "/work")
    method = context.options.get("method", "GET")
    timeout = aiohttp.ClientTimeout(total=context.policy.request_timeout, ceil_threshold=math.inf)
    for number in range(context.jobs):
        if number:
            await asyncio.sleep(context.think())
        context.job_started()
        try:
            async with context.session.request(method, context.base_url + path, timeout=timeout) as response:
                outcome = "completed" if response.status < 400 else "http_error"
        except (aiohttp.ClientError, asyncio.TimeoutError):
            outcome = "gave_up"
        context.job_finished(outcome)


BUILT_IN_CLIENTS: dict[str, ClientCoroutine] = {
    "translation": translation,
    "single_request": single_request,
}
