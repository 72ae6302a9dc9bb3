"""Workloads: when virtual clients start.

Each client runs one job from its start time. The arrival kinds are:

- `at_once`: every client starts at time 0, a synchronized herd;
- `uniform`: start times drawn uniformly over a window;
- `poisson`: a Poisson process of a given rate, an open workload whose arrivals do not wait for
  the server.

All three are open workloads: a slow server does not slow the arrivals.
"""

from __future__ import annotations

import numpy as np

from sim.config import AtOnce, Poisson, UniformWindow, WorkloadConfig

__all__ = ["start_times"]


def start_times(workload: WorkloadConfig, rng: np.random.Generator) -> np.ndarray:
    """Return the clients' start times in simulated seconds, sorted, one per client."""
    count = workload.clients
    arrival = workload.arrival
    if isinstance(arrival, AtOnce):
        return np.zeros(count)
    if isinstance(arrival, UniformWindow):
        return np.sort(rng.uniform(0.0, arrival.window, count))
    if isinstance(arrival, Poisson):
        return np.cumsum(rng.exponential(1.0 / arrival.rate, count))
    raise TypeError(f"unknown arrival kind: {arrival!r}")
