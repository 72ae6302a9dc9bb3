"""Behaviour of `TranslationClient` under injected server faults, on the real and modelled server.

Every fault comes from the server's `faults` rules, never from a mocked client. Most tests run
on both backends (the `backend` fixture): the aiohttp job server on 127.0.0.1 and the modelled
server on a virtual-time loop. The harness here is a variant of `backends.py` that also hands
the scenario a client factory (for hooks, seeds and `connection_limit`) and reports the
server's job table and, on the simulator, the requests the session resent by itself.

Timing: fault responses are sent at once and the modelled server has no latency or service time,
so the simulator's times are exact. The real server adds a few milliseconds per request, which
`Bench.slack` allows for in upper bounds only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import logging
import math
import random
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import BACKENDS, LOCALHOST, SHUTDOWN_TIMEOUT
from client import (
    Attempt,
    Backoff,
    ClientPolicy,
    Hooks,
    Jitter,
    RetryEvent,
    TranslationClient,
    TranslationError,
    TranslationResult,
    TranslationStatus,
)
from sim import loop as virtual_time
from sim.app import SERVER_KEY, create_app
from sim.config import ServerConfig, config_from_dict
from sim.recorder import Recorder
from sim.server import ServerModel
from sim.session import SIM_BASE_URL, SimSession
from sim.streams import Streams

DEADLINE_SLACK = 0.05
"""Seconds a real client may end after a bound, for the round trip and closing a connection."""

EARLY_WAKEUP = 1e-6
"""Seconds an asyncio timer may fire before its due time (the loop's clock resolution is 1 ns)."""


# ----------------------------------------------------------------------------- harness


class ClientFactory(Protocol):
    """Builds a client wired to the run's server; `seed` defaults to the run's seed."""

    def __call__(self, policy: ClientPolicy, *, hooks: Hooks | None = None, seed: int | None = None,
                 connection_limit: int = 100) -> TranslationClient: ...


Scenario = Callable[[ClientFactory], Awaitable[Any]]
"""`async def scenario(make_client) -> value`: builds its clients with `make_client`."""


@dataclass(frozen=True)
class Trial:
    """What a scenario returned and what the server counted while it ran."""

    value: Any
    received: int
    """Requests that reached the server, resends by the HTTP library included."""
    jobs: int
    """Jobs the server created."""
    replayed: int
    """Create requests that returned an existing job because their Idempotency-Key was known."""
    resends: int | None
    """Requests the simulator's session resent after a disconnect; None on the real backend,
    where aiohttp resends without counting."""


async def serve_real(config: ServerConfig, body: Callable[[str, Any], Awaitable[Any]], *, seed: int = 0) -> Any:
    """Run `body(base_url, job_server)` against a fresh aiohttp job server on 127.0.0.1."""
    app = create_app(config, seed=seed)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOCALHOST, 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return await body(f"http://{host}:{port}", app[SERVER_KEY])
    finally:
        await runner.cleanup()


class RealBench:
    """The aiohttp job server on 127.0.0.1; each client owns a real `ClientSession`."""

    name = "real"
    slack = DEADLINE_SLACK

    def run(self, config: ServerConfig, scenario: Scenario, *, seed: int = 0) -> Trial:
        return asyncio.run(serve_real(config, lambda url, server: self._drive(url, server, scenario, seed),
                                      seed=seed))

    async def _drive(self, base_url: str, server: Any, scenario: Scenario, run_seed: int) -> Trial:
        async with contextlib.AsyncExitStack() as clients:

            def make_client(policy: ClientPolicy, *, hooks: Hooks | None = None, seed: int | None = None,
                            connection_limit: int = 100) -> TranslationClient:
                client = TranslationClient(base_url, policy, seed=run_seed if seed is None else seed,
                                           hooks=hooks, connection_limit=connection_limit)
                clients.push_async_callback(client.close)
                return client

            value = await scenario(make_client)
        return Trial(value, server.received, len(server.jobs), server.jobs.replayed, None)


class SimBench:
    """The modelled server on a virtual-time loop; each client gets its own `SimSession`."""

    name = "sim"
    slack = 0.0

    def run(self, config: ServerConfig, scenario: Scenario, *, seed: int = 0) -> Trial:
        return virtual_time.run(self._simulate(config, scenario, seed))

    async def _simulate(self, config: ServerConfig, scenario: Scenario, run_seed: int) -> Trial:
        recorder = Recorder()
        server = ServerModel(asyncio.get_running_loop(), config, Streams(run_seed).server(), recorder)
        sessions: list[SimSession] = []

        def make_client(policy: ClientPolicy, *, hooks: Hooks | None = None, seed: int | None = None,
                        connection_limit: int = 100) -> TranslationClient:
            session = SimSession(server, len(sessions))
            sessions.append(session)
            rng = random.Random(run_seed if seed is None else seed)
            return TranslationClient(SIM_BASE_URL, policy, session=session, rng=rng,
                                     hooks=hooks, connection_limit=connection_limit)

        try:
            value = await scenario(make_client)
        finally:
            for session in sessions:
                await session.close()
        return Trial(value, server.received, len(server.jobs), server.jobs.replayed, recorder.resends)


Bench = RealBench | SimBench
BENCHES: dict[str, Bench] = {bench.name: bench for bench in (RealBench(), SimBench())}
REAL = BENCHES["real"]
SIM = BENCHES["sim"]
assert sorted(BENCHES) == sorted(BACKENDS), "the harness must cover the same backends as backends.py"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Bench:
    return BENCHES[request.param]


@dataclass
class HookLog:
    """Everything the client's hooks reported, in order."""

    attempts: list[Attempt] = field(default_factory=list)
    retries: list[RetryEvent] = field(default_factory=list)
    give_ups: list[TranslationResult] = field(default_factory=list)
    successes: list[TranslationResult] = field(default_factory=list)

    @property
    def hooks(self) -> Hooks:
        return Hooks(before_attempt=self.attempts.append, on_retry=self.retries.append,
                     on_give_up=self.give_ups.append, on_success=self.successes.append)

    def attempts_to(self, endpoint: str) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.endpoint == endpoint]

    def times_since_first(self, endpoint: str) -> list[float]:
        """Send times of the requests to `endpoint`, in seconds after the job's first request."""
        start = self.attempts[0].at
        return [attempt.at - start for attempt in self.attempts_to(endpoint)]


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:])]


def assert_about(measured: float, expected: float, backend: Bench) -> None:
    """Check a measured wait: never shorter than `expected`, longer only by the backend's slack."""
    assert measured >= expected - EARLY_WAKEUP, f"waited {measured:.6f} s, expected {expected} s"
    assert measured <= expected + backend.slack + EARLY_WAKEUP, f"waited {measured:.6f} s, expected {expected} s"


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


def exponential_backoff(initial: float, multiplier: float, maximum: float) -> Backoff:
    return Backoff(initial=initial, multiplier=multiplier, maximum=maximum, jitter="none")


POLICY = ClientPolicy(
    poll=constant_backoff(0.05),
    retry=constant_backoff(0.02),
    max_attempts=6,
    total_timeout=1.5,
    request_timeout=0.5,
)
"""Base policy: poll every 0.05 s, retry after 0.02 s, give up on a job after 1.5 s."""


def make_policy(**changes: Any) -> ClientPolicy:
    return dataclasses.replace(POLICY, **changes)


def fault(**rule: Any) -> list[dict[str, Any]]:
    """Return a fault list with one rule; `first: 1` unless `rule` sets `first` or `probability`."""
    if "first" not in rule and "probability" not in rule:
        rule = {"first": 1, **rule}
    return [rule]


ALWAYS_503_ON_CREATE = fault(endpoint="create", status=503, probability=1)

CLIENT_ENDPOINTS = {"create": "create_job", "status": "status"}
"""The client's name (`Attempt.endpoint`) for each endpoint name of a fault rule."""


# ----------------------------------------------------------------------------- scenarios


def translating(policy: ClientPolicy, log: HookLog | None = None) -> Scenario:
    async def scenario(make_client: ClientFactory) -> TranslationResult:
        client = make_client(policy, hooks=None if log is None else log.hooks)
        return await client.translate()

    return scenario


def run_translate(backend: Bench, server: ServerConfig, policy: ClientPolicy) -> tuple[Trial, HookLog]:
    """Run one `translate()` with every hook recorded."""
    log = HookLog()
    return backend.run(server, translating(policy, log)), log


# ============================================================================= 1. Retry-After


@pytest.mark.parametrize("endpoint", ["create", "status"])
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_honoured(backend: Bench, status: int, endpoint: str) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint=endpoint, status=status, retry_after=0.2))
    trial, log = run_translate(backend, server, POLICY)
    event = log.retries[0]
    retried = [attempt.at for attempt in log.attempts_to(CLIENT_ENDPOINTS[endpoint])]

    assert trial.value.status is TranslationStatus.COMPLETED
    assert len(log.retries) == 1
    assert event.retry_after == 0.2
    assert event.wait == 0.2
    assert_about(retried[1] - retried[0], 0.2, backend)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_http_date_honoured(backend: Bench, status: int) -> None:
    # An HTTP-date has whole seconds, so the shortest hint the server can send is 1 s.
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=status, retry_after=1,
                                                      retry_after_format="http_date"))
    trial, log = run_translate(backend, server, POLICY)
    event = log.retries[0]
    creates = log.times_since_first("create_job")

    assert trial.value.status is TranslationStatus.COMPLETED
    assert event.retry_after == 1.0
    assert event.wait == 1.0
    assert_about(creates[1] - creates[0], 1.0, backend)


def test_retry_after_below_backoff(backend: Bench) -> None:
    # The hint is a lower bound: a longer backoff delay stays.
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=503, retry_after=0.05))
    trial, log = run_translate(backend, server, make_policy(retry=constant_backoff(0.15)))
    creates = log.times_since_first("create_job")

    assert trial.value.status is TranslationStatus.COMPLETED
    assert log.retries[0].retry_after == 0.05
    assert log.retries[0].wait == 0.15
    assert_about(creates[1] - creates[0], 0.15, backend)


@pytest.mark.parametrize("retry_after_format", ["seconds", "http_date"])
def test_retry_after_cut_to_maximum(backend: Bench, retry_after_format: str) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=503, retry_after=1,
                                                      retry_after_format=retry_after_format))
    trial, log = run_translate(backend, server, make_policy(max_retry_after=0.1, total_timeout=3.0))
    creates = log.times_since_first("create_job")

    assert trial.value.status is TranslationStatus.COMPLETED
    assert log.retries[0].retry_after == 1.0
    assert log.retries[0].wait == 0.1
    assert_about(creates[1] - creates[0], 0.1, backend)


@pytest.mark.parametrize("raw", ["-5", "soon"])
def test_bad_retry_after_ignored(backend: Bench, raw: str, caplog: pytest.LogCaptureFixture) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=503, retry_after_raw=raw))
    with caplog.at_level(logging.WARNING, logger="client"):
        trial, log = run_translate(backend, server, POLICY)
    ignored = [record.getMessage() for record in caplog.records
               if record.name == "client" and "ignoring the Retry-After header" in record.getMessage()]
    creates = log.times_since_first("create_job")

    assert trial.value.status is TranslationStatus.COMPLETED
    assert log.retries[0].retry_after is None
    assert log.retries[0].wait == POLICY.retry.initial
    assert_about(creates[1] - creates[0], POLICY.retry.initial, backend)
    assert len(ignored) == 1
    assert repr(raw) in ignored[0]


@pytest.mark.parametrize("retry_after_format", ["seconds", "http_date"])
def test_retry_after_past_deadline(backend: Bench, retry_after_format: str) -> None:
    server = make_server(faults=fault(endpoint="create", status=503, retry_after=5,
                                      retry_after_format=retry_after_format))
    trial, log = run_translate(backend, server, make_policy(total_timeout=1.0))
    result = trial.value

    assert result.status is TranslationStatus.TIMEOUT
    assert "Retry-After" in result.error
    assert result.requests == 1
    assert log.retries == []
    assert result.elapsed <= 0.1 + backend.slack  # at once, not at the 1 s deadline


# ============================================================================= 2. Deadline


DEADLINE_CASES = {
    # The create request is held 0.5 s by the server; the deadline comes at 0.2 s.
    "create_in_flight": (
        make_server(faults=fault(endpoint="create", action="delay", delay=0.5)),
        make_policy(total_timeout=0.2),
    ),
    # The first poll is held 0.5 s; the deadline comes at 0.2 s.
    "status_in_flight": (
        make_server(job_duration=10, faults=fault(endpoint="status", action="delay", delay=0.5)),
        make_policy(total_timeout=0.2),
    ),
    # Polls at 0, 0.15 and 0.3 s; the next one at 0.45 s would pass 0.4 s.
    "poll_sleep": (make_server(job_duration=10), make_policy(poll=constant_backoff(0.15), total_timeout=0.4)),
    # Creates at 0, 0.15 and 0.3 s; the next retry at 0.45 s would pass 0.4 s.
    "retry_sleep": (
        make_server(faults=ALWAYS_503_ON_CREATE),
        make_policy(retry=constant_backoff(0.15), total_timeout=0.4, max_attempts=10),
    ),
    # The status request gets 503 and is retried until the deadline.
    "status_retry_sleep": (
        make_server(job_duration=10, faults=fault(endpoint="status", status=503, probability=1)),
        make_policy(retry=constant_backoff(0.15), total_timeout=0.4, max_attempts=10),
    ),
}


@pytest.mark.parametrize("step", sorted(DEADLINE_CASES))
def test_deadline_holds_every_step(backend: Bench, step: str) -> None:
    server, policy = DEADLINE_CASES[step]
    trial, log = run_translate(backend, server, policy)
    result = trial.value
    last_sent = log.attempts[-1].at - log.attempts[0].at

    assert result.status is TranslationStatus.TIMEOUT
    assert result.elapsed <= policy.total_timeout + backend.slack
    assert last_sent < policy.total_timeout
    assert sum(event.wait for event in log.retries) <= policy.total_timeout


@pytest.mark.parametrize("step", ["create_in_flight", "status_in_flight"])
def test_delayed_request_cut_at_deadline(backend: Bench, step: str) -> None:
    server, policy = DEADLINE_CASES[step]
    trial, _ = run_translate(backend, server, policy)
    result = trial.value

    assert result.status is TranslationStatus.TIMEOUT
    assert "request timed out" in result.error
    assert result.elapsed >= policy.total_timeout - EARLY_WAKEUP
    assert result.elapsed <= policy.total_timeout + backend.slack


# ============================================================================= 3. Errors


async def wait_for_unknown_job(make_client: ClientFactory, log: HookLog) -> TranslationResult:
    return await make_client(POLICY, hooks=log.hooks).wait_for_job("12345")


def test_unknown_job_not_retried(backend: Bench) -> None:
    log = HookLog()
    trial = backend.run(make_server(), lambda make_client: wait_for_unknown_job(make_client, log))
    result = trial.value

    assert result.status is TranslationStatus.JOB_NOT_FOUND
    assert "404" in result.error
    assert result.requests == 1
    assert log.retries == []
    assert trial.received == 1


def test_status_404_not_retried(backend: Bench) -> None:
    server = make_server(faults=fault(endpoint="status", status=404))
    trial, log = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.JOB_NOT_FOUND
    assert result.job_id == "0"
    assert result.requests == 2
    assert log.retries == []
    assert trial.received == 2


@pytest.mark.parametrize("endpoint", ["create", "status"])
@pytest.mark.parametrize(("status", "body"), [(500, "empty"), (502, "html"), (503, "empty"), (503, "html")])
def test_5xx_odd_body_retried(backend: Bench, status: int, body: str, endpoint: str) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint=endpoint, status=status, body=body))
    trial, log = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.requests == 3
    assert result.retries == 1
    assert log.retries[0].cause == f"HTTP {status}"
    assert log.retries[0].exception is None


BAD_BODIES = {
    # body: text the error must quote, or None where the body decodes to None
    "missing_field": "{'status': 'ok'}",
    "unknown_state": "'paused'",
    "empty": None,
    "invalid_json": None,
    "html": None,
}


@pytest.mark.parametrize("endpoint", ["create", "status"])
@pytest.mark.parametrize("body", sorted(BAD_BODIES))
def test_bad_body_ends_job(backend: Bench, body: str, endpoint: str) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint=endpoint, action="bad_body", body=body))
    trial, log = run_translate(backend, server, POLICY)
    result = trial.value
    expected_requests = 1 if endpoint == "create" else 2
    quoted = BAD_BODIES[body]

    assert result.status is TranslationStatus.UNEXPECTED_RESPONSE
    assert result.requests == expected_requests
    assert log.retries == []
    assert trial.received == expected_requests
    if quoted is not None:
        assert quoted in result.error


@pytest.mark.parametrize(("body", "quoted"), [("invalid_json", '{"result": "pend'), ("html", "<html>")])
def test_non_json_error_quotes_body(backend: Bench, body: str, quoted: str) -> None:
    # An operator reading the error must see what came back, for example a proxy's HTML page.
    server = make_server(faults=fault(endpoint="status", action="bad_body", body=body))
    trial, _ = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.UNEXPECTED_RESPONSE
    assert quoted in result.error


def test_create_disconnect_retried(backend: Bench) -> None:
    # aiohttp never resends a POST by itself, so the client's own retry does.
    server = make_server(job_duration=0, faults=fault(endpoint="create", action="disconnect"))
    trial, log = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.requests == 3
    assert result.retries == 1
    assert isinstance(log.retries[0].exception, aiohttp.ClientConnectionError)
    assert log.retries[0].status is None
    assert trial.received == result.requests


# action, first, client requests, client retries, requests aiohttp resent by itself
STATUS_DROPS = {
    # The GET is resent once by the session and the resend is served.
    "disconnect_once": ("disconnect", 1, 2, 0, 1),
    # The resend is dropped too, so the client sees the error and retries.
    "disconnect_twice": ("disconnect", 2, 3, 1, 1),
    # The server serves the GET, then drops the response; the resend is served.
    "lost_response_once": ("lost_response", 1, 2, 0, 1),
}


@pytest.mark.parametrize("case", sorted(STATUS_DROPS))
def test_status_drop_resent_once(backend: Bench, case: str) -> None:
    action, first, requests, retries, resends = STATUS_DROPS[case]
    server = make_server(job_duration=0, faults=fault(endpoint="status", action=action, first=first))
    trial, _ = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.requests == requests
    assert result.retries == retries
    assert trial.received == result.requests + resends
    if trial.resends is not None:
        assert trial.resends == resends


# ============================================================================= 4. Idempotency


def test_lost_create_same_job(backend: Bench) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint="create", action="lost_response"))
    trial, log = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.job_id == "0"
    assert result.retries == 1
    assert isinstance(log.retries[0].exception, aiohttp.ClientConnectionError)
    assert trial.jobs == 1
    assert trial.replayed == 1


def test_lost_create_without_keys(backend: Bench) -> None:
    # The server ignores the key here, which shows what the key prevents: a second job.
    server = make_server(job_duration=0, idempotency_keys=False,
                         faults=fault(endpoint="create", action="lost_response"))
    trial, _ = run_translate(backend, server, POLICY)
    result = trial.value

    assert result.status is TranslationStatus.COMPLETED
    assert result.job_id == "1"
    assert trial.jobs == 2
    assert trial.replayed == 0


def test_create_job_lost_response(backend: Bench) -> None:
    async def scenario(make_client: ClientFactory) -> str:
        return await make_client(POLICY).create_job()

    trial = backend.run(make_server(faults=fault(endpoint="create", action="lost_response")), scenario)

    assert trial.value == "0"
    assert trial.jobs == 1
    assert trial.received == 2


def test_translate_twice_two_jobs(backend: Bench) -> None:
    # Each job gets its own key, so a client's second job is not mistaken for a retried first.
    async def scenario(make_client: ClientFactory) -> list[TranslationResult]:
        client = make_client(POLICY)
        return [await client.translate(), await client.translate()]

    trial = backend.run(make_server(job_duration=0), scenario)

    assert [result.job_id for result in trial.value] == ["0", "1"]
    assert trial.jobs == 2
    assert trial.replayed == 0


def test_same_seed_clients_two_jobs(backend: Bench) -> None:
    # Two processes that run the same seeded program against one server are two clients with
    # equal seeds. Their jobs are different jobs, so the server must create two.
    async def scenario(make_client: ClientFactory) -> list[TranslationResult]:
        first = make_client(POLICY, seed=7)
        second = make_client(POLICY, seed=7)
        return [await first.translate(), await second.translate()]

    trial = backend.run(make_server(job_duration=0), scenario)

    assert [result.job_id for result in trial.value] == ["0", "1"]
    assert trial.jobs == 2
    assert trial.replayed == 0


# ============================================================================= 5. Polling and retry schedules


def test_poll_and_retry_separate(backend: Bench) -> None:
    # The first two polls get 503 and are retried after 0.01 s and 0.02 s. After that the job,
    # which ends 0.3 s after its creation, is polled every 0.05 s.
    server = make_server(job_duration=0.3, faults=fault(endpoint="status", status=503, first=2))
    policy = make_policy(poll=constant_backoff(0.05), retry=exponential_backoff(0.01, 2.0, 1.0))
    trial, log = run_translate(backend, server, policy)
    statuses = log.attempts_to("status")
    poll_gaps = [later.at - earlier.at for earlier, later in zip(statuses, statuses[1:]) if later.attempt == 1]
    retry_gaps = [later.at - earlier.at for earlier, later in zip(statuses, statuses[1:]) if later.attempt > 1]

    assert trial.value.status is TranslationStatus.COMPLETED
    assert [event.wait for event in log.retries] == [0.01, 0.02]
    assert [event.endpoint for event in log.retries] == ["status", "status"]
    assert len(retry_gaps) == 2
    assert_about(retry_gaps[0], 0.01, backend)
    assert_about(retry_gaps[1], 0.02, backend)
    assert len(poll_gaps) >= 4
    for gap in poll_gaps:
        assert_about(gap, 0.05, backend)


def test_pending_retry_after_cut(backend: Bench) -> None:
    # The server sends Retry-After: 1 (0.25 s left, rounded up), so the client waits max_retry_after.
    server = make_server(job_duration=0.25, pending_retry_after=True)
    trial, log = run_translate(backend, server, make_policy(max_retry_after=0.15))
    poll_gaps = gaps(log.times_since_first("status"))

    assert trial.value.status is TranslationStatus.COMPLETED
    assert trial.value.polls == 2
    assert len(poll_gaps) == 2
    assert_about(poll_gaps[0], 0.15, backend)
    assert_about(poll_gaps[1], 0.15, backend)


def test_pending_retry_after_honoured(backend: Bench) -> None:
    # The job ends 0.5 s after creation and the server sends Retry-After: 1, so there are two status requests.
    server = make_server(job_duration=0.5, pending_retry_after=True)
    trial, log = run_translate(backend, server, make_policy(total_timeout=3.0))
    poll_gaps = gaps(log.times_since_first("status"))

    assert trial.value.status is TranslationStatus.COMPLETED
    assert trial.value.polls == 1
    assert len(poll_gaps) == 1
    assert_about(poll_gaps[0], 1.0, backend)


# ============================================================================= 6. Hooks


def test_before_attempt_numbers(backend: Bench) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=503, first=2))
    trial, log = run_translate(backend, server, POLICY)

    assert trial.value.status is TranslationStatus.COMPLETED
    assert [attempt.attempt for attempt in log.attempts_to("create_job")] == [1, 2, 3]
    assert [attempt.job_id for attempt in log.attempts_to("create_job")] == [None, None, None]
    assert [attempt.attempt for attempt in log.attempts_to("status")] == [1]
    assert [attempt.job_id for attempt in log.attempts_to("status")] == ["0"]


def test_on_retry_fields(backend: Bench) -> None:
    server = make_server(job_duration=0, faults=fault(endpoint="create", status=503, first=2))
    trial, log = run_translate(backend, server, make_policy(retry=exponential_backoff(0.01, 2.0, 1.0)))

    assert trial.value.status is TranslationStatus.COMPLETED
    assert [event.attempt for event in log.retries] == [1, 2]
    assert [event.wait for event in log.retries] == [0.01, 0.02]
    assert [event.waited for event in log.retries] == [0.0, 0.01]
    assert [event.cause for event in log.retries] == ["HTTP 503", "HTTP 503"]
    assert [event.status for event in log.retries] == [503, 503]
    assert [event.exception for event in log.retries] == [None, None]
    assert [event.retry_after for event in log.retries] == [None, None]
    assert [event.endpoint for event in log.retries] == ["create_job", "create_job"]


GIVE_UP_CASES = {
    TranslationStatus.GAVE_UP: (make_server(faults=ALWAYS_503_ON_CREATE), make_policy(max_attempts=3)),
    TranslationStatus.TIMEOUT: (make_server(job_duration=60), make_policy(total_timeout=0.2)),
    TranslationStatus.ERROR: (make_server(job_error_probability=1), POLICY),
    TranslationStatus.UNEXPECTED_RESPONSE: (
        make_server(faults=fault(endpoint="status", action="bad_body", body="unknown_state")),
        POLICY,
    ),
}


@pytest.mark.parametrize("status", list(GIVE_UP_CASES), ids=lambda status: status.value)
def test_give_up_hook_once(backend: Bench, status: TranslationStatus) -> None:
    server, policy = GIVE_UP_CASES[status]
    trial, log = run_translate(backend, server, policy)

    assert trial.value.status is status
    assert log.give_ups == [trial.value]
    assert log.successes == []


def test_success_hook_once(backend: Bench) -> None:
    trial, log = run_translate(backend, make_server(), POLICY)

    assert trial.value.status is TranslationStatus.COMPLETED
    assert log.successes == [trial.value]
    assert log.give_ups == []


def test_hooks_once_per_job(backend: Bench) -> None:
    log = HookLog()

    async def scenario(make_client: ClientFactory) -> list[TranslationResult]:
        client = make_client(POLICY, hooks=log.hooks)
        return list(await asyncio.gather(client.translate(), client.translate()))

    trial = backend.run(make_server(), scenario)

    assert sorted(result.job_id for result in log.successes) == ["0", "1"]
    assert sorted(map(id, log.successes)) == sorted(map(id, trial.value))
    assert log.give_ups == []


def test_failed_create_job_hook(backend: Bench) -> None:
    log = HookLog()

    async def scenario(make_client: ClientFactory) -> TranslationResult | str:
        try:
            return await make_client(make_policy(max_attempts=2), hooks=log.hooks).create_job()
        except TranslationError as exc:
            return exc.result

    trial = backend.run(make_server(faults=ALWAYS_503_ON_CREATE), scenario)

    assert trial.value.status is TranslationStatus.GAVE_UP
    assert log.give_ups == [trial.value]
    assert log.successes == []


# ============================================================================= 7. Session hygiene (real only)


@dataclass
class SessionCensus:
    """Every `aiohttp.ClientSession` built during a test, and how often each was closed."""

    created: list[aiohttp.ClientSession] = field(default_factory=list)
    closes: collections.Counter[int] = field(default_factory=collections.Counter)
    """Calls of `close()` by `id()` of the session."""


@pytest.fixture
def census(monkeypatch: pytest.MonkeyPatch) -> SessionCensus:
    """Record sessions the client builds, by wrapping aiohttp's class (the client is untouched)."""
    census = SessionCensus()
    session_class = aiohttp.ClientSession
    close = session_class.close

    def build_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = session_class(*args, **kwargs)
        census.created.append(session)
        return session

    async def counted_close(self: aiohttp.ClientSession) -> None:
        census.closes[id(self)] += 1
        await close(self)

    monkeypatch.setattr(session_class, "close", counted_close)
    monkeypatch.setattr(aiohttp, "ClientSession", build_session)
    return census


def run_real_client(config: ServerConfig, body: Callable[[TranslationClient], Awaitable[Any]],
                    policy: ClientPolicy = POLICY) -> Any:
    """Run `body(client)` against a fresh real server; `body` decides when the client is closed."""

    async def drive(base_url: str, server: Any) -> Any:
        return await body(TranslationClient(base_url, policy, seed=0))

    return asyncio.run(serve_real(config, drive))


def test_one_session_per_client(census: SessionCensus) -> None:
    async def body(client: TranslationClient) -> None:
        async with client:
            # Two jobs start at once before any session exists, then more run one by one.
            await asyncio.gather(client.translate(), client.translate())
            await client.translate()
            await client.wait_for_job("0")

    run_real_client(make_server(job_duration=0), body)

    assert len(census.created) == 1
    assert census.created[0].closed
    assert census.closes[id(census.created[0])] == 1


def test_close_twice_safe(census: SessionCensus) -> None:
    async def body(client: TranslationClient) -> None:
        await client.translate()
        await client.close()
        await client.close()
        async with client:
            pass

    run_real_client(make_server(job_duration=0), body)

    assert len(census.created) == 1
    assert census.closes[id(census.created[0])] == 1


def test_unused_client_no_session(census: SessionCensus) -> None:
    async def body(client: TranslationClient) -> None:
        async with client:
            pass

    run_real_client(make_server(), body)

    assert census.created == []


def test_translate_after_close_raises() -> None:
    async def body(client: TranslationClient) -> None:
        async with client:
            await client.translate()
        await client.translate()

    with pytest.raises(RuntimeError):
        run_real_client(make_server(job_duration=0), body)


def record_unclosed(action: Callable[[], Any], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run `action` and return every "Unclosed ..." warning or asyncio log message it caused.

    Garbage is collected before returning, so that a session or connector that was never
    closed is finalized, and warns, inside the recording.
    """
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        caplog.clear()
        action()
        gc.collect()
        messages = [str(warning.message) for warning in caught]
        # A recorded warning keeps its source, the session, alive. Dropping the records lets the
        # session's connector be finalized, and warn, inside the recording too.
        caught.clear()
        gc.collect()
        messages += [str(warning.message) for warning in caught]
    messages += [record.getMessage() for record in caplog.records]
    return [message for message in messages if "Unclosed" in message]


async def translate_and_close(client: TranslationClient) -> TranslationResult:
    async with client:
        return await client.translate()


HYGIENE_SERVERS = {
    "create_disconnect": make_server(faults=fault(endpoint="create", action="disconnect")),
    "status_lost_response": make_server(faults=fault(endpoint="status", action="lost_response")),
    "status_html_body": make_server(faults=fault(endpoint="status", action="bad_body", body="html")),
    "status_html_502": make_server(faults=fault(endpoint="status", status=502, body="html", first=3)),
    "create_cut_at_deadline": make_server(faults=fault(endpoint="create", action="delay", delay=0.3)),
    "always_503": make_server(faults=ALWAYS_503_ON_CREATE),
}


@pytest.mark.parametrize("name", sorted(HYGIENE_SERVERS))
def test_no_unclosed_warnings(name: str, caplog: pytest.LogCaptureFixture) -> None:
    policy = make_policy(total_timeout=0.2)
    unclosed = record_unclosed(lambda: run_real_client(HYGIENE_SERVERS[name], translate_and_close, policy), caplog)

    assert unclosed == []


def test_unclosed_check_can_fail(caplog: pytest.LogCaptureFixture) -> None:
    # A client that is never closed leaks its session, and the check above has to notice.
    async def translate_without_close(client: TranslationClient) -> TranslationResult:
        return await client.translate()

    unclosed = record_unclosed(lambda: run_real_client(make_server(), translate_without_close), caplog)

    assert any("Unclosed client session" in message for message in unclosed)
    assert any("Unclosed connector" in message for message in unclosed)


# ============================================================================= 8. Connection pool wait


async def translate_twice_at_once(make_client: ClientFactory) -> list[TranslationResult]:
    client = make_client(POLICY, connection_limit=1)
    return list(await asyncio.gather(client.translate(), client.translate()))


async def translate_alone(make_client: ClientFactory) -> list[TranslationResult]:
    client = make_client(POLICY, connection_limit=1)
    return [await client.translate()]


# The server delays the first create by 0.1 s, so with one pooled connection the other job's
# create waits about 0.1 s for it.
POOL_SERVER = make_server(job_duration=0, faults=fault(endpoint="create", action="delay", delay=0.1))


def test_real_pool_wait_measured() -> None:
    trial = REAL.run(POOL_SERVER, translate_twice_at_once)
    waits = sorted(result.connection_wait for result in trial.value)

    assert [result.status for result in trial.value] == [TranslationStatus.COMPLETED] * 2
    assert waits[-1] > 0.05


def test_real_single_call_no_wait() -> None:
    trial = REAL.run(POOL_SERVER, translate_alone)

    assert trial.value[0].status is TranslationStatus.COMPLETED
    assert trial.value[0].connection_wait == 0.0


def test_real_pool_wait_until_timeout() -> None:
    # The first create keeps the only connection busy for 0.5 s. The other job's create waits for
    # it until its 0.2 s request timeout ends the wait, and that wait is still time in the pool.
    server = make_server(job_duration=0, faults=fault(endpoint="create", action="delay", delay=0.5))
    policy = make_policy(request_timeout=0.2, max_attempts=1)

    async def scenario(make_client: ClientFactory) -> list[TranslationResult]:
        client = make_client(policy, connection_limit=1)
        return list(await asyncio.gather(client.translate(), client.translate()))

    trial = REAL.run(server, scenario)
    waits = sorted(result.connection_wait for result in trial.value)

    assert [result.status for result in trial.value] == [TranslationStatus.GAVE_UP] * 2
    assert waits[-1] >= 0.15


def test_sim_pool_wait_zero() -> None:
    # SimSession has no connection pool, so the simulator never reports a wait.
    trial = SIM.run(POOL_SERVER, translate_twice_at_once)

    assert [result.status for result in trial.value] == [TranslationStatus.COMPLETED] * 2
    assert [result.connection_wait for result in trial.value] == [0.0, 0.0]


# ============================================================================= 9. Property (sim only)


backoffs = st.builds(
    lambda initial, extra, multiplier, jitter, fraction: Backoff(
        initial=initial, multiplier=multiplier, maximum=initial + extra, jitter=jitter, jitter_fraction=fraction
    ),
    initial=st.floats(0.001, 2.0),
    extra=st.floats(0.0, 5.0),
    multiplier=st.floats(1.0, 4.0),
    jitter=st.sampled_from(list(Jitter)),
    fraction=st.floats(0.0, 1.0),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    retry=backoffs,
    total_timeout=st.floats(0.01, 30.0),
    max_attempts=st.integers(1, 40),
    retry_after=st.none() | st.floats(0.0, 5.0, allow_subnormal=False),
    max_retry_after=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_retry_waits_within_bounds(retry: Backoff, total_timeout: float, max_attempts: int,
                                   retry_after: float | None, max_retry_after: float, seed: int) -> None:
    policy = ClientPolicy(retry=retry, total_timeout=total_timeout, max_attempts=max_attempts,
                          request_timeout=1.0, max_retry_after=max_retry_after)
    rule = {"endpoint": "create", "status": 503, "probability": 1}
    if retry_after is not None:
        rule["retry_after"] = retry_after
    log = HookLog()
    trial = SIM.run(make_server(faults=[rule]), translating(policy, log), seed=seed)
    result = trial.value
    hint = None if retry_after is None else min(retry_after, max_retry_after)
    upper = retry.maximum if hint is None else max(retry.maximum, hint)

    assert result.status in (TranslationStatus.GAVE_UP, TranslationStatus.TIMEOUT)
    assert result.elapsed <= total_timeout
    assert sum(event.wait for event in log.retries) <= total_timeout
    assert len(log.retries) == result.retries
    assert result.requests <= max_attempts
    for event in log.retries:
        assert 0.0 <= event.wait <= upper
        if hint is not None:
            assert event.wait >= hint


# ============================================================================= 10. Exact schedules


def test_capped_backoff_exact_waits(backend: Bench) -> None:
    # b=0.1 s, m=2, cap 0.5 s: e(n) is 0.1, 0.2, 0.4, 0.5, 0.5 after the 1st to 5th attempt.
    policy = make_policy(retry=exponential_backoff(0.1, 2.0, 0.5), max_attempts=6, total_timeout=10.0)
    trial, log = run_translate(backend, make_server(faults=ALWAYS_503_ON_CREATE), policy)
    result = trial.value
    expected = [0.1, 0.2, 0.4, 0.5, 0.5]
    measured = gaps(log.times_since_first("create_job"))

    assert result.status is TranslationStatus.GAVE_UP
    assert trial.received == 6
    assert [attempt.attempt for attempt in log.attempts_to("create_job")] == [1, 2, 3, 4, 5, 6]
    assert [event.wait for event in log.retries] == pytest.approx(expected, rel=1e-12)
    assert len(measured) == len(expected)
    for gap, wait in zip(measured, expected):
        assert_about(gap, wait, backend)


def test_deadline_stops_exponential_retries(backend: Bench) -> None:
    # Attempts at 0, 1 and 3 s; the next wait of 4 s would end at 7 s, past the 5 s deadline.
    policy = make_policy(retry=exponential_backoff(1.0, 2.0, 30.0), total_timeout=5.0, request_timeout=1.0)
    trial, log = run_translate(backend, make_server(faults=ALWAYS_503_ON_CREATE), policy)
    result = trial.value
    sent = log.times_since_first("create_job")

    assert result.status is TranslationStatus.TIMEOUT
    assert len(sent) == 3
    for measured, expected in zip(sent, [0.0, 1.0, 3.0]):
        assert_about(measured, expected, backend)
    assert result.elapsed <= policy.total_timeout
    assert math.isclose(result.elapsed, 3.0, abs_tol=backend.slack + EARLY_WAKEUP)
    assert trial.received == 3
