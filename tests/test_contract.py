"""Contract tests: the client must see the same outcomes from the real server and the model.

Every scenario runs on both backends of `backends.py` (the `backend` fixture) and asserts the
same expected `TranslationResult`, so a difference between `sim.app` and `sim.server`, or
between aiohttp and `SimSession`, fails on one backend only.

Timing: backoffs are constant and without jitter, and each job ends at least 0.05 s away from
the nearest poll. The real server adds a few milliseconds per request, which is too little to
change how many requests a scenario takes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from backends import BACKENDS, Scenario
from client import Backoff, ClientPolicy, TranslationClient, TranslationResult, TranslationStatus
from sim.config import ServerConfig, config_from_dict

REAL = BACKENDS["real"]
SIM = BACKENDS["sim"]

DEADLINE_SLACK = 0.05
"""Seconds a real client may end after its deadline when a request is in flight at that moment.

aiohttp ends the request at the deadline, and closing the connection and returning the result
take a little longer on a real loop.
"""


# ----------------------------------------------------------------------------- configs


def make_server(**settings: Any) -> ServerConfig:
    """Build a server config from config-file keys.

    Service time and latency are 0, and jobs last 0.05 s and never fail, unless `settings` sets
    another value.
    """
    defaults = {"service_time": 0, "latency": 0, "job_duration": 0.05, "job_error_probability": 0}
    return config_from_dict({"server": {**defaults, **settings}}).server


def constant_backoff(seconds: float) -> Backoff:
    return Backoff(initial=seconds, multiplier=1.0, maximum=seconds, jitter="none")


POLICY = ClientPolicy(
    poll=constant_backoff(0.1),
    retry=constant_backoff(0.02),
    max_attempts=6,
    total_timeout=1.5,
    request_timeout=0.5,
)
"""Base policy: poll every 0.1 s, retry after 0.02 s, and give up on a job after 1.5 s."""


def make_policy(**changes: Any) -> ClientPolicy:
    return dataclasses.replace(POLICY, **changes)


ALWAYS_503_ON_CREATE = [{"endpoint": "create", "status": 503, "probability": 1}]


# ----------------------------------------------------------------------------- scenarios


async def translate(client: TranslationClient) -> TranslationResult:
    return await client.translate()


async def create_job(client: TranslationClient) -> str:
    return await client.create_job()


async def wait_for_unknown_job(client: TranslationClient) -> TranslationResult:
    return await client.wait_for_job("12345")


async def translate_twice_at_once(client: TranslationClient) -> list[TranslationResult]:
    return list(await asyncio.gather(client.translate(), client.translate()))


@dataclass(frozen=True)
class Case:
    """A server, a client policy and the scenario that runs against them."""

    server: ServerConfig
    policy: ClientPolicy
    scenario: Scenario[Any] = translate

    def run(self, backend: Any) -> Any:
        return backend.run(self.server, self.policy, self.scenario)


# Polls at 0 s (pending) and 0.1 s (ended): create, status, status.
COMPLETES = Case(make_server(), POLICY)
FAILS = Case(make_server(job_error_probability=1), POLICY)

# Polls at 0, 0.1, 0.2 and 0.3 s. After the fourth, the next poll at 0.4 s would pass 0.35 s.
TIMES_OUT = Case(make_server(job_duration=60), make_policy(total_timeout=0.35))

# Jobs that last 0 s are completed at the first status request.
CREATE_503_TWICE = Case(
    make_server(job_duration=0, faults=[{"endpoint": "create", "status": 503, "first": 2}]), POLICY
)
STATUS_500_ONCE = Case(
    make_server(job_duration=0, faults=[{"endpoint": "status", "status": 500, "first": 1}]), POLICY
)
CREATE_400 = Case(make_server(faults=[{"endpoint": "create", "status": 400, "first": 1}]), POLICY)
ALWAYS_503 = Case(make_server(faults=ALWAYS_503_ON_CREATE), make_policy(max_attempts=3))
UNKNOWN_JOB = Case(make_server(), POLICY, wait_for_unknown_job)

# Each create request takes 0.2 s to serve but the client waits only 0.05 s for it.
# The request timeout leaves the server enough time to receive each request even on a busy
# machine, but far less than the service time, so both attempts time out.
REQUEST_TIMES_OUT = Case(make_server(service_time=0.6), make_policy(request_timeout=0.15, max_attempts=2))

# The create request is still being served when the total timeout of 0.3 s runs out.
DEADLINE_IN_REQUEST = Case(make_server(service_time=0.6), make_policy(total_timeout=0.3))

# One worker and no queue: the second create request gets 503 while the first is served.
# Each request takes 0.1 s. The retry at 0.25 s comes after the first job's status request
# has ended at 0.2 s, so the worker is free again.
FULL_QUEUE = Case(
    make_server(workers=1, queue_limit=0, service_time=0.1, job_duration=0),
    make_policy(retry=constant_backoff(0.25)),
    translate_twice_at_once,
)

AGREEMENT_CASES = {
    "completes": COMPLETES,
    "fails": FAILS,
    "times_out": TIMES_OUT,
    "create_503_twice": CREATE_503_TWICE,
    "status_500_once": STATUS_500_ONCE,
    "create_400": CREATE_400,
    "always_503": ALWAYS_503,
    "unknown_job": UNKNOWN_JOB,
    "request_times_out": REQUEST_TIMES_OUT,
    "deadline_in_request": DEADLINE_IN_REQUEST,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Any:
    return BACKENDS[request.param]


# ----------------------------------------------------------------------------- outcomes


def test_job_completes(backend: Any) -> None:
    outcome = COMPLETES.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.job_id == "0"
    assert result.error is None
    assert result.requests == 3
    assert result.retries == 0
    assert outcome.received == result.requests


def test_job_ends_in_error(backend: Any) -> None:
    outcome = FAILS.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.ERROR
    assert result.job_id == "0"
    assert result.error == "job 0 failed on the server"
    assert result.requests == 3
    assert result.retries == 0
    assert outcome.received == result.requests


def test_total_timeout_while_pending(backend: Any) -> None:
    outcome = TIMES_OUT.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.TIMEOUT
    assert result.job_id == "0"
    assert "after 4 polls" in result.error
    assert result.requests == 5
    assert result.retries == 0
    assert result.elapsed <= TIMES_OUT.policy.total_timeout
    assert outcome.received == result.requests


def test_total_timeout_during_request(backend: Any) -> None:
    outcome = DEADLINE_IN_REQUEST.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.TIMEOUT
    assert result.job_id is None
    assert "request timed out" in result.error
    assert result.requests == 1
    assert result.retries == 0
    assert result.elapsed <= DEADLINE_IN_REQUEST.policy.total_timeout + DEADLINE_SLACK
    assert outcome.received == result.requests


def test_create_503_retried(backend: Any) -> None:
    outcome = CREATE_503_TWICE.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.job_id == "0"
    assert result.requests == 4  # 3 create attempts and 1 status request
    assert result.retries == 2
    assert outcome.received == result.requests


def test_create_job_after_two_503(backend: Any) -> None:
    outcome = backend.run(CREATE_503_TWICE.server, CREATE_503_TWICE.policy, create_job)

    assert outcome.value == "0"
    assert outcome.received == 3


def test_status_500_retried(backend: Any) -> None:
    outcome = STATUS_500_ONCE.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.job_id == "0"
    assert result.requests == 3  # 1 create request and 2 status attempts
    assert result.retries == 1
    assert outcome.received == result.requests


def test_unknown_job_not_found(backend: Any) -> None:
    outcome = UNKNOWN_JOB.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.JOB_NOT_FOUND
    assert result.job_id == "12345"
    assert "404" in result.error
    assert result.requests == 1
    assert result.retries == 0
    assert outcome.received == result.requests


def test_create_400_not_retried(backend: Any) -> None:
    outcome = CREATE_400.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.HTTP_ERROR
    assert result.job_id is None
    assert "HTTP 400" in result.error
    assert "injected fault" in result.error
    assert result.requests == 1
    assert result.retries == 0
    assert outcome.received == result.requests


def test_always_503_gives_up(backend: Any) -> None:
    outcome = ALWAYS_503.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.GAVE_UP
    assert result.job_id is None
    assert "HTTP 503" in result.error
    assert result.requests == 3
    assert result.retries == 2
    assert outcome.received == result.requests


def test_request_timeout_retried(backend: Any) -> None:
    outcome = REQUEST_TIMES_OUT.run(backend)
    result = outcome.value

    assert result.status is TranslationStatus.GAVE_UP
    assert result.job_id is None
    assert "request timed out" in result.error
    assert result.requests == 2
    assert result.retries == 1
    assert outcome.received == result.requests


def test_full_queue_503_retried(backend: Any) -> None:
    outcome = FULL_QUEUE.run(backend)
    # Which of the two jobs is rejected depends on which create request reaches the real
    # server first, so the results are compared in order of cost.
    results = sorted(outcome.value, key=lambda result: result.requests)

    assert [result.status for result in results] == [TranslationStatus.COMPLETED] * 2
    assert sorted(result.job_id for result in results) == ["0", "1"]
    assert [result.requests for result in results] == [2, 3]
    assert [result.retries for result in results] == [0, 1]
    assert outcome.received == sum(result.requests for result in results)


async def wait_for_job_counting_requests(client: TranslationClient, job_id: str) -> int:
    """Return the requests `wait_for_job` sent, or 0 if it rejected `job_id` without sending."""
    try:
        result = await client.wait_for_job(job_id)
    except ValueError:
        return 0
    return result.requests


@pytest.mark.parametrize("job_id", ["", ".", ".."])
def test_dot_or_empty_job_id_reaches_server(backend: Any, job_id: str) -> None:
    # URL normalization removes "." and ".." path segments, and an empty id leaves no segment,
    # so these ids can turn /status/{job_id} into another path. Every request the client counts
    # must still reach the job API. Rejecting the id with ValueError before sending also passes.
    async def scenario(client: TranslationClient) -> int:
        return await wait_for_job_counting_requests(client, job_id)

    outcome = backend.run(UNKNOWN_JOB.server, UNKNOWN_JOB.policy, scenario)

    assert outcome.received == outcome.value


def summarize(result: TranslationResult) -> tuple[Any, ...]:
    """Return the fields of a result that must not depend on the backend."""
    return (result.status, result.job_id, result.error, result.requests, result.retries)


@pytest.mark.parametrize("name", sorted(AGREEMENT_CASES))
def test_backends_agree(name: str) -> None:
    case = AGREEMENT_CASES[name]
    real = case.run(REAL)
    sim = case.run(SIM)

    assert summarize(real.value) == summarize(sim.value)
    assert real.received == sim.received


# ----------------------------------------------------------------------------- cancellation


@dataclass(frozen=True)
class CancelProbe:
    """How a cancelled `translate()` task ended."""

    raised_cancelled: bool
    """Awaiting the task raised `asyncio.CancelledError`."""

    task_cancelled: bool
    """`Task.cancelled()` was true afterwards."""

    returned: Any = None
    """What the task returned if it swallowed the cancellation."""


def cancel_translate_after(seconds: float) -> Callable[[TranslationClient], Any]:
    """Build a scenario that starts `translate()` in a task and cancels it after `seconds`."""

    async def scenario(client: TranslationClient) -> CancelProbe:
        task = asyncio.create_task(client.translate())
        await asyncio.sleep(seconds)
        task.cancel()
        try:
            returned = await task
        except asyncio.CancelledError:
            return CancelProbe(raised_cancelled=True, task_cancelled=task.cancelled())
        return CancelProbe(raised_cancelled=False, task_cancelled=task.cancelled(), returned=returned)

    return scenario


def outer_timeout_after(seconds: float) -> Callable[[TranslationClient], Any]:
    """Build a scenario that wraps `translate()` in `asyncio.timeout(seconds)`.

    It returns "timed out" when the timeout cancels the call, or the result if the call
    swallowed the cancellation or ended in time.
    """

    async def scenario(client: TranslationClient) -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await client.translate()
        except TimeoutError:
            return "timed out"

    return scenario


# Each phase: the case, and the requests the server has received when the cancel comes at 0.05 s.
CANCEL_PHASES = {
    # The job lasts 10 s, so the client is sleeping between the polls at 0 and 0.1 s.
    "poll_sleep": (Case(make_server(job_duration=10), POLICY), 2),
    # The create request takes 0.2 s to serve.
    "request_in_flight": (Case(make_server(service_time=0.2), POLICY), 1),
    # The create request got 503 at 0 s and the retry is due at 0.2 s.
    "retry_sleep": (
        Case(make_server(faults=ALWAYS_503_ON_CREATE), make_policy(retry=constant_backoff(0.2))),
        1,
    ),
}
CANCEL_AFTER = 0.05


@pytest.mark.parametrize("phase", sorted(CANCEL_PHASES))
def test_cancel_propagates_from_translate(backend: Any, phase: str) -> None:
    case, received_before_cancel = CANCEL_PHASES[phase]
    outcome = backend.run(case.server, case.policy, cancel_translate_after(CANCEL_AFTER))
    probe = outcome.value

    assert probe.raised_cancelled, f"translate() returned {probe.returned!r} instead of raising"
    assert probe.task_cancelled
    assert outcome.received == received_before_cancel


@pytest.mark.parametrize("phase", sorted(CANCEL_PHASES))
def test_outer_timeout_cancels_translate(backend: Any, phase: str) -> None:
    case, received_before_cancel = CANCEL_PHASES[phase]
    outcome = backend.run(case.server, case.policy, outer_timeout_after(CANCEL_AFTER))

    assert outcome.value == "timed out"
    assert outcome.received == received_before_cancel


# ----------------------------------------------------------------------------- one backend


def test_sim_hour_takes_no_wall_time() -> None:
    # One simulated hour of polling once a minute: a create request and 61 status requests.
    case = Case(
        make_server(job_duration=3600),
        make_policy(poll=constant_backoff(60), total_timeout=7200, request_timeout=10),
    )
    outcome = case.run(SIM)
    result = outcome.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.requests == 62
    assert result.elapsed >= 3600
    assert outcome.wall_seconds < 1.0


def record_unclosed_resources(action: Callable[[], Any], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run `action` and return every "Unclosed ..." warning or asyncio log message it caused.

    Garbage is collected before returning, so that a session or connector that was never
    closed gets finalized, and warns, inside the recording.
    """
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        caplog.clear()
        action()
        gc.collect()
    messages = [str(warning.message) for warning in caught]
    messages += [record.getMessage() for record in caplog.records]
    return [message for message in messages if "Unclosed" in message]


LEAK_CASES = {
    "completes": (COMPLETES, translate),
    "gives_up": (ALWAYS_503, translate),
    "request_times_out": (REQUEST_TIMES_OUT, translate),
    "cancelled_in_flight": (CANCEL_PHASES["request_in_flight"][0], cancel_translate_after(CANCEL_AFTER)),
}


@pytest.mark.parametrize("name", sorted(LEAK_CASES))
def test_real_client_closes_session(name: str, caplog: pytest.LogCaptureFixture) -> None:
    case, scenario = LEAK_CASES[name]

    unclosed = record_unclosed_resources(lambda: REAL.run(case.server, case.policy, scenario), caplog)

    assert unclosed == []


def test_leak_check_sees_unclosed_session(caplog: pytest.LogCaptureFixture) -> None:
    # The check above must be able to fail: a session that is never closed has to show up.
    async def open_session_and_forget_it() -> None:
        aiohttp.ClientSession()

    unclosed = record_unclosed_resources(lambda: asyncio.run(open_session_and_forget_it()), caplog)

    assert any("Unclosed client session" in message for message in unclosed)
