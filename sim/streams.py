"""Random streams: one root seed, an independent stream per component and per client.

Each stream is derived from the root seed and a fixed key with numpy's `SeedSequence`, so
streams do not overlap and adding a client or a component leaves every other stream's draws
unchanged. That makes runs that differ in one setting comparable draw for draw (common random
numbers).
"""

from __future__ import annotations

import random

import numpy as np

__all__ = ["Streams", "SERVER_STREAMS"]

SERVER_STREAMS = ("service", "latency", "duration", "outcome", "faults", "stuck", "network")
"""Names of the server model's streams."""

# Keys are part of the reproducibility contract: changing one changes every result of a seed.
_KEYS = {
    "arrivals": 1,
    "service": 2,
    "latency": 3,
    "duration": 4,
    "outcome": 5,
    "faults": 6,
    "stuck": 7,
    "network": 8,
}
_CLIENT_KEY = 100


class Streams:
    """Derives named numpy generators and per-client `random.Random` from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generator(self, name: str) -> np.random.Generator:
        """Return a new numpy generator for component `name`."""
        key = _KEYS[name]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(key,))))

    def server(self) -> dict[str, np.random.Generator]:
        """Return the server model's generators by name."""
        return {name: self.generator(name) for name in SERVER_STREAMS}

    def client(self, index: int) -> random.Random:
        """Return the `random.Random` of client number `index`."""
        state = np.random.SeedSequence(self.seed, spawn_key=(_CLIENT_KEY, index)).generate_state(4, np.uint64)
        return random.Random(int.from_bytes(state.tobytes(), "little"))
