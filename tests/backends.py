"""Backends for the contract tests: run one client scenario against the real or the modelled server.

A scenario is `async def scenario(client) -> T`. It gets a `TranslationClient` that is already
wired to a fresh server and returns whatever the test wants to check. Both backends build the
server from the same `ServerConfig` and seed, and seed the client's jitter the same way:

- `RealBackend` starts the aiohttp job server (`sim.app.create_app`) on 127.0.0.1 with a free
  port inside `asyncio.run`. The client creates and owns its own `aiohttp.ClientSession`.
- `SimBackend` runs a `ServerModel` on a `VirtualTimeLoop`, and the client talks to it through
  a `SimSession`, as `sim.engine` wires it. Simulated waits take no wall time.

So a scenario written once must give the same outcome on both.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from client import ClientPolicy, TranslationClient
from sim import loop as virtual_time
from sim.app import SERVER_KEY, create_app
from sim.config import ServerConfig
from sim.recorder import Recorder
from sim.server import ServerModel
from sim.session import SIM_BASE_URL, SimSession
from sim.streams import Streams

__all__ = ["BACKENDS", "Outcome", "RealBackend", "Scenario", "SimBackend"]

T = TypeVar("T")

Scenario = Callable[[TranslationClient], Awaitable[T]]
"""A client scenario: `async def scenario(client) -> T`."""

LOCALHOST = "127.0.0.1"

SHUTDOWN_TIMEOUT = 5.0
"""Seconds the real server waits for handlers still running at shutdown before it cancels them."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one scenario returned and what the server counted while it ran."""

    value: T
    """The scenario's return value."""

    received: int
    """Requests that reached the server, by the server's own counter.

    The real server counts only requests that match one of its two routes.
    """

    wall_seconds: float
    """Wall-clock time of the whole run, server start and shutdown included."""


class RealBackend:
    """The aiohttp job server on 127.0.0.1, and a client that owns a real `ClientSession`."""

    name = "real"

    def run(self, server_config: ServerConfig, policy: ClientPolicy, scenario: Scenario[T],
            *, seed: int = 0) -> Outcome[T]:
        """Start a fresh server, run `scenario` with a new client, stop the server."""
        wall_start = time.perf_counter()
        value, received = asyncio.run(self._serve(server_config, policy, scenario, seed))
        return Outcome(value, received, time.perf_counter() - wall_start)

    async def _serve(self, server_config: ServerConfig, policy: ClientPolicy,
                     scenario: Scenario[T], seed: int) -> tuple[T, int]:
        app = create_app(server_config, seed=seed)
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, LOCALHOST, 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            async with TranslationClient(f"http://{host}:{port}", policy, seed=seed) as client:
                value = await scenario(client)
        finally:
            await runner.cleanup()
        return value, app[SERVER_KEY].received


class SimBackend:
    """The modelled server on a virtual-time loop, reached through a `SimSession`."""

    name = "sim"

    def run(self, server_config: ServerConfig, policy: ClientPolicy, scenario: Scenario[T],
            *, seed: int = 0) -> Outcome[T]:
        """Build a fresh model server, run `scenario` with a new client in virtual time."""
        wall_start = time.perf_counter()
        value, received = virtual_time.run(self._simulate(server_config, policy, scenario, seed))
        return Outcome(value, received, time.perf_counter() - wall_start)

    async def _simulate(self, server_config: ServerConfig, policy: ClientPolicy,
                        scenario: Scenario[T], seed: int) -> tuple[T, int]:
        loop = asyncio.get_running_loop()
        server = ServerModel(loop, server_config, Streams(seed).server(), Recorder())
        session = SimSession(server, 0)
        try:
            async with TranslationClient(SIM_BASE_URL, policy, session=session,
                                         rng=random.Random(seed)) as client:
                value = await scenario(client)
        finally:
            await session.close()
        return value, server.received


BACKENDS = {backend.name: backend for backend in (RealBackend(), SimBackend())}
"""Each backend by name: "real" and "sim"."""
