"""Benchmark: the fastest any asyncio code can poll on herdsim's loop, against SimPy.

    python benchmarks/asyncio_floor.py --repeat 3

The floor is the polling herd of `scenario.py` stripped to what asyncio itself costs. Each of
5,000 coroutines runs 20 rounds of `await asyncio.sleep(full-jitter delay)`, then awaits a
future that a loop event resolves 5 ms later, as a modelled request would be. There is no
client code, no session, no server model and no recording. The SimPy model of
`simpy_compare.py` runs beside it, alternating, and the script prints rounds (requests) per
wall second of each and their ratio.

If the floor is not far above SimPy, then herdsim, which adds the real client and the model
to the floor, cannot match SimPy by speeding up its own code alone.
"""

from __future__ import annotations

import asyncio
import random
import sys

import side_by_side
from scenario import Scenario
from sim.loop import VirtualTimeLoop

ROUNDS = 20
"""Sleep-and-request rounds per coroutine, as many as the scenario's requests per client."""


def run_floor(scenario: Scenario) -> tuple[int, float]:
    """Run the stripped herd on a `VirtualTimeLoop`; return the rounds run and the wall seconds."""

    def resolve(future: asyncio.Future[None]) -> None:
        future.set_result(None)

    async def poller(loop: VirtualTimeLoop, rng: random.Random) -> None:
        for round_number in range(ROUNDS):
            cap = min(scenario.poll_maximum, scenario.poll_initial * scenario.poll_multiplier ** round_number)
            await asyncio.sleep(cap * rng.random())
            future = loop.create_future()
            loop.schedule_at(loop.time() + scenario.service_time, resolve, future)
            await future

    async def herd(loop: VirtualTimeLoop) -> None:
        await asyncio.gather(*(poller(loop, random.Random(index)) for index in range(scenario.clients)))

    return scenario.clients * ROUNDS, side_by_side.time_on_loop(herd)


def main() -> int:
    return side_by_side.main(__doc__, {"asyncio floor": run_floor})


if __name__ == "__main__":
    sys.exit(main())
