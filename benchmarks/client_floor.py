"""Benchmark: the real client on herdsim's loop with a session that costs nothing, against SimPy.

    python benchmarks/client_floor.py --repeat 3

This is an upper bound for herdsim's speed on the polling herd of `scenario.py`. 5,000 real
`TranslationClient`s run `translate()` on a `VirtualTimeLoop` with real `asyncio.sleep`, as in
herdsim. Their session is the least any simulated session can be, though: a request returns a
future that the loop resolves 5 ms later with a response built before the run. There is no
server model (no workers, no queue), no recording, no timeout and no attempt hook. The SimPy
model of `simpy_compare.py` runs beside it, alternating, and the script prints requests per
wall second of each and their ratio.

herdsim runs the same client and loop and adds the server model and the recording, so it
cannot be faster than this floor. If the floor is below SimPy, then no server model or recorder,
however fast, brings herdsim to SimPy's rate: the client code and asyncio's tasks and futures
alone take longer than SimPy's whole model.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import sys
from typing import Any

import side_by_side
from scenario import Scenario, herdsim_config
from client import TranslationClient
from sim.loop import VirtualTimeLoop, _wake_sleep

BASE_URL = "http://floor.invalid"
_CREATE_URL = BASE_URL + "/create_job"
_STATUS_PREFIX = BASE_URL + "/status/"


class _Response:
    """A prebuilt response: the part of `aiohttp.ClientResponse` the client reads."""

    __slots__ = ("status", "headers", "_data")

    def __init__(self, data: dict[str, str]) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self._data = data

    async def json(self, **_: Any) -> dict[str, str]:
        return self._data


class _Done:
    """An awaitable that finishes at once, for `__aexit__`."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()
_CREATED = _Response({"job_id": "0"})
_PENDING = _Response({"result": "pending"})
_COMPLETED = _Response({"result": "completed"})


class _Call:
    """A request in flight, as `request()` returns it: `async with` gives its response future."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[_Response]) -> None:
        self.future = future

    def __aenter__(self) -> asyncio.Future[_Response]:
        return self.future

    def __aexit__(self, *_: object) -> _Done:
        return _DONE


class FloorSession:
    """The cheapest session for the job API: every response arrives `service_time` seconds later.

    Each session serves one client and its one job, which ends `job_duration` seconds after the
    create request's response, as in the scenario. No request waits for a worker, because
    there are none.
    """

    def __init__(self, loop: VirtualTimeLoop, service_time: float, job_duration: float) -> None:
        self._loop = loop
        self._service_time = service_time
        self._job_duration = job_duration
        self._finishes_at = float("inf")
        self.requests = 0

    def request(self, method: str, url: str, **_: Any) -> _Call:
        loop = self._loop
        responds_at = loop._now + self._service_time
        if url == _CREATE_URL:
            self._finishes_at = responds_at + self._job_duration
            response = _CREATED
        else:
            response = _PENDING if responds_at < self._finishes_at else _COMPLETED
        future = loop.create_future()
        # The loop's own sleep wake-up: it sets the future's result without a Python call.
        heapq.heappush(loop._timers, (responds_at, next(loop._sequence), _wake_sleep, (future, response)))
        self.requests += 1
        return _Call(future)

    async def close(self) -> None:
        return None


def run_client_floor(scenario: Scenario) -> tuple[int, float]:
    """Run the real clients against `FloorSession`s; return the requests sent and the wall seconds."""
    policy = herdsim_config(scenario).client
    sessions: list[FloorSession] = []

    async def herd(loop: VirtualTimeLoop) -> None:
        tasks = []
        for index in range(scenario.clients):
            session = FloorSession(loop, scenario.service_time, scenario.job_duration)
            sessions.append(session)
            client = TranslationClient(BASE_URL, policy, session=session, rng=random.Random(index))
            tasks.append(loop.create_task(client.translate()))
        results = await asyncio.gather(*tasks)
        failed = [result for result in results if result.status.value != "completed"]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(results)} floor clients did not complete: {failed[0]}")

    wall = side_by_side.time_on_loop(herd)
    return sum(session.requests for session in sessions), wall


def main() -> int:
    return side_by_side.main(__doc__, {"client floor": run_client_floor})


if __name__ == "__main__":
    sys.exit(main())
