"""Workloads: when virtual clients start.

The arrival kinds are:

- `at_once`: every client starts at time 0, a synchronized herd;
- `uniform`: start times drawn uniformly over a window;
- `poisson`: a Poisson process of a given rate;
- `stages`: a rate that ramps and holds through a list of stages, as k6's ramping arrival
  rate does, with arrivals drawn as a Poisson process of that rate or spaced evenly.

All four are open workloads: a slow server does not slow the arrivals. Each client then runs
`jobs_per_client` jobs one after another, which is a closed loop within the client.
"""

from __future__ import annotations

import numpy as np

from sim.config import AtOnce, Poisson, Stages, UniformWindow, WorkloadConfig

__all__ = ["start_times"]


def start_times(workload: WorkloadConfig, rng: np.random.Generator) -> np.ndarray:
    """Return the clients' start times in simulated seconds, sorted.

    One per client, except for `stages`, which returns every arrival its schedule brings, more
    or fewer than `workload.clients`; the engine drops those past the ceiling.
    """
    count = workload.clients
    arrival = workload.arrival
    if isinstance(arrival, AtOnce):
        return np.zeros(count)
    if isinstance(arrival, UniformWindow):
        return np.sort(rng.uniform(0.0, arrival.window, count))
    if isinstance(arrival, Poisson):
        return np.cumsum(rng.exponential(1.0 / arrival.rate, count))
    if isinstance(arrival, Stages):
        return staged_times(arrival, rng)
    raise TypeError(f"unknown arrival kind: {arrival!r}")


def staged_times(arrival: Stages, rng: np.random.Generator) -> np.ndarray:
    """Arrival times, in seconds, of a process whose rate is piecewise linear in time.

    Time change: if the cumulative rate is L(t) (expected arrivals by time t), then arrivals of
    a unit-rate process at u1 < u2 < ... mapped through the inverse of L arrive at the wanted
    rate. A unit-rate Poisson process gives Poisson arrivals; u = 1, 2, 3, ... gives evenly
    spaced ones.
    """
    starts = [0.0]
    rates = [arrival.start_rate]
    for stage in arrival.stages:
        starts.append(starts[-1] + stage.duration)
        rates.append(stage.target)
    starts_array = np.asarray(starts)
    rates_array = np.asarray(rates)
    durations = np.diff(starts_array)
    area = 0.5 * (rates_array[:-1] + rates_array[1:]) * durations
    cumulative = np.concatenate(([0.0], np.cumsum(area)))
    total = cumulative[-1]

    # Unit-rate arrivals up to the total area. Poisson: draw in blocks until past the end.
    if arrival.spacing == "even":
        units = np.arange(1.0, np.floor(total) + 1.0)
    else:
        pieces, reached = [], 0.0
        block = max(1024, int(total * 1.1) + 64)
        while reached <= total:
            piece = reached + np.cumsum(rng.exponential(1.0, block))
            pieces.append(piece)
            reached = piece[-1]
        units = np.concatenate(pieces)
        units = units[units <= total]

    # Find each arrival's stage, then solve r0*tau + slope*tau**2/2 = u for tau within it,
    # in the form 2u / (r0 + sqrt(r0**2 + 2*slope*u)) that stays exact when slope is 0.
    segment = np.clip(np.searchsorted(cumulative, units, side="right") - 1, 0, len(durations) - 1)
    within = units - cumulative[segment]
    r0 = rates_array[segment]
    slope = (rates_array[segment + 1] - r0) / durations[segment]
    root = np.sqrt(np.maximum(r0 * r0 + 2.0 * slope * within, 0.0))
    denominator = r0 + root
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(denominator > 0, 2.0 * within / denominator, 0.0)
    return np.minimum(starts_array[segment] + np.minimum(tau, durations[segment]), starts_array[-1])
