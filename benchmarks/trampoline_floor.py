"""Benchmark: the asyncio floor with a bare trampoline in place of asyncio's tasks and futures.

    python benchmarks/trampoline_floor.py --repeat 3

A prototype, not herdsim code. It runs the same stripped herd as `asyncio_floor.py` (5,000
coroutines, each running 20 rounds of a full-jitter sleep and then a future resolved 5 ms
later), but on the lightest scheduler that can drive coroutines in virtual time. Its future
appends the coroutine waiting on it to a ready queue when it gets a result, and the loop calls
the coroutine's `send` itself. There is no `asyncio.Task`, no callback handle, no context and no
`current_task`, so `asyncio.timeout`, cancellation and the rest of asyncio do not work on it.
`asyncio_floor.py`'s floor and the SimPy model run beside it, alternating.

It measures how much a lighter task mechanism could save, before the asyncio features that
user client coroutines may rely on are added back.
"""

from __future__ import annotations

import collections
import gc
import heapq
import itertools
import random
import sys
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from asyncio_floor import ROUNDS, run_floor
import side_by_side
from scenario import Scenario


class _Future:
    """A result that one coroutine waits for; setting it queues that coroutine to resume."""

    __slots__ = ("_ready", "_result", "_done", "_waiter")

    def __init__(self, ready: collections.deque[Callable[[Any], Any]]) -> None:
        self._ready = ready
        self._done = False
        self._waiter: Callable[[Any], Any] | None = None

    def set_result(self, value: Any) -> None:
        self._result = value
        self._done = True
        if self._waiter is not None:
            self._ready.append(self._waiter)

    def __await__(self) -> Generator[_Future, None, Any]:
        if not self._done:
            yield self
        return self._result


class _Trampoline:
    """A virtual-time loop: a heap of timed callbacks and a FIFO of coroutines ready to resume."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._sequence = itertools.count()
        self._ready: collections.deque[Callable[[Any], Any]] = collections.deque()

    def create_future(self) -> _Future:
        return _Future(self._ready)

    def schedule_at(self, when: float, function: Callable[[Any], None], argument: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._sequence), function, argument))

    async def sleep(self, delay: float) -> None:
        future = self.create_future()
        self.schedule_at(self.now + delay, _resolve, future)
        await future

    def run(self, coroutines: list[Coroutine[Any, Any, None]]) -> None:
        """Run every coroutine until it returns."""
        ready = self._ready
        timers = self._timers
        for coroutine in coroutines:
            ready.append(coroutine.send)
        while True:
            while ready:
                send = ready.popleft()
                try:
                    future = send(None)
                except StopIteration:
                    continue
                future._waiter = send
            if not timers:
                return
            when, _, function, argument = heapq.heappop(timers)
            self.now = when
            function(argument)


def _resolve(future: _Future) -> None:
    future.set_result(None)


def run_trampoline(scenario: Scenario) -> tuple[int, float]:
    """Run the stripped herd on `_Trampoline`; return the rounds run and the wall seconds."""
    loop = _Trampoline()

    async def poller(rng: random.Random) -> None:
        for round_number in range(ROUNDS):
            cap = min(scenario.poll_maximum, scenario.poll_initial * scenario.poll_multiplier ** round_number)
            await loop.sleep(cap * rng.random())
            future = loop.create_future()
            loop.schedule_at(loop.now + scenario.service_time, _resolve, future)
            await future

    collecting = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        loop.run([poller(random.Random(index)) for index in range(scenario.clients)])
        wall = time.perf_counter() - started
    finally:
        if collecting:
            gc.enable()
    return scenario.clients * ROUNDS, wall


def main() -> int:
    return side_by_side.main(__doc__, {"trampoline": run_trampoline, "asyncio floor": run_floor})


if __name__ == "__main__":
    sys.exit(main())
